"""Shell commands printed for a person to paste, quoted so that a path is one word.

A path can hold `$(…)`, `;`, quotes, a newline: pasted unquoted, it runs code.
Every command caffedoc prints goes through `cmd`, which quotes each word with
`shlex.quote` except the operators and placeholders marked `Raw`, and wraps the
line as a code span whose fence no backtick in a path can close early.
"""

from __future__ import annotations

import os
import re
import shlex
import textwrap
from typing import Union

__all__ = ["AND", "ETC", "PIPE", "TO", "Raw", "cmd", "fill", "join", "squash"]


class Raw(str):
    """A word printed as it is: a shell operator or a placeholder for the reader."""


PIPE, AND, TO, ETC = Raw("|"), Raw("&&"), Raw(">"), Raw("…")
Word = Union[str, "os.PathLike[str]"]

# A code span as `cmd` writes it (and as CommonMark reads one): a run of backticks,
# the code, the same run again, neither run touching another backtick.
SPAN = re.compile(r"(?<!`)(`+)(?!`)(.*?)(?<!`)\1(?!`)", re.DOTALL)


def join(*words: Word) -> str:
    """The command line `words` spell, each quoted unless it is Raw."""
    return " ".join(w if isinstance(w, Raw) else shlex.quote(os.fspath(w)) for w in words)


def cmd(*words: Word) -> str:
    """The command as a code span: `fence` longer than any backtick run inside it."""
    line = join(*words)
    fence = "`" * (max(map(len, re.findall("`+", line)), default=0) + 1)
    pad = " " if line.startswith("`") or line.endswith("`") else ""
    return f"{fence}{pad}{line}{pad}{fence}"


def _apart(text: str) -> tuple[str, list[str]]:
    """`text` with its whitespace squashed and each code span held out as a token."""
    spans: list[str] = []

    def keep(m: re.Match[str]) -> str:
        spans.append(m.group(0))
        return f"\0{len(spans) - 1}\0"

    return " ".join(SPAN.sub(keep, text).split()), spans


def _together(text: str, spans: list[str]) -> str:
    return re.sub("\0(\\d+)\0", lambda m: spans[int(m.group(1))], text)


def squash(text: str) -> str:
    """Prose on one line, its code spans untouched (a quoted path keeps its spaces)."""
    return _together(*_apart(text))


def fill(text: str, width: int, initial_indent: str, subsequent_indent: str) -> str:
    """textwrap.fill of prose whose code spans stay whole: a command's quoted path keeps
    its spaces and newlines, so what is pasted is what `cmd` printed."""
    words, spans = _apart(text)
    out = textwrap.fill(
        words,
        width=width,
        initial_indent=initial_indent,
        subsequent_indent=subsequent_indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return _together(out, spans)
