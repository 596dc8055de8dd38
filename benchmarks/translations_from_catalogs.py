"""Write caffedoc/knowledge/translations.py from the tools' own gettext catalogs.

Users paste logs from machines where LANG is zh_CN.UTF-8, ja_JP.UTF-8, ru_RU.UTF-8...:
GNU ld, the compiler driver, make and glibc (the loader's words, strerror) print
their messages translated. explain reads those translations back into English
before matching, from a table generated here from the Debian packages that ship
the catalogs (never typed by hand), so that it says which package and version
each string came from:

    cd "$(mktemp -d)" && apt-get download binutils-common libc-l10n make gcc-12-locales
    python benchmarks/translations_from_catalogs.py . > caffedoc/knowledge/translations.py

Only the messages caffedoc's signatures rely on are kept (`WANTED`), for the
locales Caffe's users paste from (`LOCALES`).
"""

from __future__ import annotations

import gettext
import re
import subprocess
import sys
import tempfile
from pathlib import Path

LOCALES = ("zh_CN", "zh_TW", "ja", "ko", "ru", "de", "es", "fr", "pt_BR", "it")
# text domain -> English messages kept (a msgid is kept when it holds one of these)
WANTED = {
    "ld": (
        "undefined reference to `%",
        "cannot find %s",
        "cannot open output file %s",
        "needed by %",
    ),
    "libc": (
        "cannot open shared object file",
        "error while loading shared libraries",
        "No such file or directory",
        "Permission denied",
        "symbol lookup error",
    ),
    "make": ("No rule to make target", "] Error %d", "Waiting for unfinished jobs"),
}
# text domain -> its messages kept whole (the compiler driver's are too many to sift)
EXACT = {
    "gcc-12": (
        "fatal error: ",
        "error: ",
        "warning: ",
        "compilation terminated.\n",
        "ld returned %d exit status",
    )
}
# printf's directives, and binutils' own (%pB: a file, %pT: a symbol, %P: the program)
DIRECTIVE = re.compile(
    r"%(?:(\d+)\$)?[-#0 +']*\d*(?:\.\*|\.\d+)?(?:p[A-Za-z]|(?:hh|ll|[hlLzjt])?[a-zA-Z])"
)
# a message's own words start after the location binutils' prefix prints (`%X%P: %pB: `,
# its upper-case directives) and end before the strerror text (%E) or the newline; printf's
# arguments (%s, %d) stay, so that one moved before the verb (ja: "%s が見つかりません")
# is put back after it in English
EDGE = r"(?:%(?:p[A-Za-z]|[A-Z])|[\s:\uff1a*])*"
LEAD, TRAIL = re.compile("^" + EDGE), re.compile(EDGE + "$")


def _core(text: str, whole: bool) -> tuple[str, list[tuple[int, int, int]], tuple] | None:
    """The message without its location prefix and tail, where its arguments are, and
    which arguments the prefix and the tail held.

    `whole`: a bare word such as "error: " keeps its colon, so that "error: " in
    Chinese is read back as the compiler's diagnostic, not wherever the word occurs.
    """
    start = LEAD.match(text).end()
    end = len(text.rstrip("\n")) if whole else TRAIL.search(text, start).start()
    core = text[start:end]
    if len(core.strip()) < 2:
        return None
    args, lead, tail = [], [], []
    for n, m in enumerate(DIRECTIVE.finditer(text), 1):
        num = int(m.group(1) or n)
        if m.end() <= start:
            lead.append(num)
        elif m.start() >= end:
            tail.append(num)
        else:
            args.append((m.start() - start, m.end() - start, num))
    return core, args, (sorted(lead), sorted(tail), sorted(a[2] for a in args))


def _first_line(english: tuple, translated: tuple) -> tuple:
    """A message the translator broke over two lines, read from its first line alone.

    Its arguments there must be the English message's first ones, in order; the English
    is cut after the last of them (and its closing quote).
    """
    cut = translated[0].index("\n")
    head = [a for a in translated[1] if a[1] <= cut]
    nums = [a[2] for a in head]
    if not nums or nums != [a[2] for a in english[1][: len(nums)]]:
        return None, None
    end = english[1][len(nums) - 1][1]
    end += english[0][end : end + 1] in ("'", "`")
    return (english[0][:end], english[1][: len(nums)]), (translated[0][:cut].rstrip(), head)


def _pattern(core: str, args: list[tuple[int, int, int]]) -> str:
    """A regular expression for the translated message, each argument a named group.

    An argument that opens the message before a space is one word (ja: "%s が見つか
    りません", the library), so that the program's prefix stays out of it; one glued to
    the words (make's "%sNo rule", its "make: *** ") is all before them; one that
    closes the message runs to the line's end.
    """
    out, at = [], 0
    for s, e, num in args:
        out.append(_words(core[at:s]))
        if s == 0:
            group = r"\S+" if core[e : e + 1].isspace() else ".*?"
        else:
            group = ".*" if e == len(core) else ".*?"
        out.append(f"(?P<a{num}>{group})")
        at = e
    out.append(_words(core[at:]))
    return "".join(out)


def _words(text: str) -> str:
    """Literal text, any run of spaces matching one or more (pastes and prefixes vary)."""
    return re.escape(text).replace("\\ ", " +")


def _replacement(core: str, args: list[tuple[int, int, int]]) -> str:
    """The English message with each argument taken from the translated line."""
    out, at = [], 0
    for s, e, num in args:
        out.append(core[at:s].replace("\\", "\\\\"))
        out.append(f"\\g<a{num}>")
        at = e
    out.append(core[at:].replace("\\", "\\\\"))
    return "".join(out)


def rows(catalogs: Path) -> list[tuple[str, str, str, str]]:
    """(domain, locale, translation's pattern, English replacement) of every kept message."""
    out = []
    for domain in (*WANTED, *EXACT):
        for locale in LOCALES:
            mo = catalogs / "usr/share/locale" / locale / "LC_MESSAGES" / f"{domain}.mo"
            if not mo.is_file():
                continue
            with mo.open("rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog  # the raw msgid -> msgstr pairs
            for msgid, msgstr in catalog.items():
                if not isinstance(msgid, str) or not msgstr or msgid == msgstr:
                    continue
                if domain in EXACT:
                    if msgid not in EXACT[domain]:
                        continue
                elif not any(w in msgid for w in WANTED[domain]):
                    continue
                whole = domain in EXACT
                english, translated = _core(msgid, whole), _core(msgstr, whole)
                if english is None or translated is None or english[0] == translated[0]:
                    continue
                if "\n" in translated[0]:
                    english, translated = _first_line(english, translated)
                    if english is None or translated is None:
                        continue
                elif english[2] != translated[2]:
                    continue  # an argument moved out of the message's words, or dropped
                out.append((domain, locale, _pattern(*translated[:2]), _replacement(*english[:2])))
    return sorted(set(out))


def _version(deb: Path) -> tuple[str, str]:
    fields = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Package", "Version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split("\n")
    return fields[0].split(": ", 1)[1], fields[1].split(": ", 1)[1]


def main(folder: str) -> None:
    debs = sorted(Path(folder).glob("*.deb"))
    with tempfile.TemporaryDirectory() as tmp:
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True, timeout=120)
        table = rows(Path(tmp))
    print('"""The tools\' translated messages and their English originals (generated).')
    print()
    print("Written by benchmarks/translations_from_catalogs.py from the gettext catalogs")
    print("of the Debian packages in SOURCES; explain reads a translated line back into")
    print("English before matching. Do not edit by hand: regenerate.")
    print('"""')
    print()
    print("# ruff: noqa: E501, RUF001 (the catalogs' own wording, long lines and quotes)")
    print()
    print("SOURCES = (")
    for deb in debs:
        package, version = _version(deb)
        print(f"    ({package!r}, {version!r}),")
    print(")")
    print()
    print("# (text domain, locale, the translation as a pattern, the English message with")
    print("# the pattern's groups in place of its arguments)")
    print("MESSAGES: tuple[tuple[str, str, str, str], ...] = (")
    for row in table:
        print(f"    {row!r},")
    print(")")


if __name__ == "__main__":
    main(sys.argv[1])
