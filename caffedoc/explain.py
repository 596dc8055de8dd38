"""Name the known problem a Caffe log shows, quoting the lines that show it.

Every knowledge entry carries `[[signatures]]`: regular expressions, each
matched against one line at a time, with a weight. A problem's score is the
sum of the weights of its signatures that match some line (each signature
counts once, however often it repeats); a problem is recognized once its score
reaches `RECOGNIZED_AT`, so one decisive signature ("File already exists in
database: caffe.proto") suffices while generic ones ("Segmentation fault") only
add weight to others. Some signatures are derived rather than written: every
tool's words for a dependency's library (`knowledge.owners`) and the names only
Caffe's forks have (`knowledge.forks`). A signature may name the problems whose
lines it explains (`outranks`: a fork's field behind a parse error); its problem
then takes their weight too, and is named before them.

Logs are big and dirty: a build log can be 100 MB of compiler output with
colours, Windows line endings, binary junk, bytes that are not UTF-8, or UTF-16
from PowerShell. So the log is read in binary chunks and never decoded as a
whole: each signature has anchors, literals of which every line it matches
holds one (derived from the pattern itself); one Aho-Corasick pass over a chunk
finds the lines holding any anchor, and only those are decoded and matched.
Each signature keeps only its first few lines as evidence, and its anchors are
dropped once it has them.

GNU ld, gcc, make and glibc print their messages translated where LANG asks
(ld's "cannot find -lopenblas" in Chinese is `找不到 -lopenblas`). Before
matching, a line holding one of those translations is read back into English,
from the table generated out of the tools' own catalogs
(`caffedoc.knowledge.translations`), so every signature covers every locale.
"""

from __future__ import annotations

import codecs
import functools
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import BinaryIO

import ahocorasick_rs

from caffedoc import knowledge
from caffedoc.findings import Finding, Hit, Severity, finding
from caffedoc.knowledge import forks, owners, translations

try:  # the regular-expression parser: public as sre_parse until Python 3.11
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.9/3.10
    import sre_parse  # type: ignore[no-redef]

RECOGNIZED_AT = 2.0  # a score at or above this names a problem
EVIDENCE_PER_SIGNATURE = 3  # lines kept per signature (the first ones seen)
EVIDENCE_PER_MATCH = 6  # lines quoted per recognized problem
CHUNK_BYTES = 4 << 20
LONGEST_LINE = 16 << 20  # a "line" longer than this is cut into pieces
QUOTE_CHARS = 240  # an evidence line is quoted up to this length
ANCHOR_MIN = 3

_ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_LEFTMOST = ahocorasick_rs.MatchKind.LeftmostFirst
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Evidence:
    line: int  # 1-based, counting newline characters as `grep -n` does
    text: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.text}"


@dataclass(frozen=True)
class Match:
    """A recognized problem: its entry, how sure we are, and the lines that say so."""

    problem: knowledge.Problem
    score: float
    confidence: float
    evidence: tuple[Evidence, ...]
    # what the lines say beyond the problem's general text: the forks defining a missing
    # name, or the matched form's own hint
    detail: str | None = None

    def finding(self) -> Finding:
        return finding(self.problem.id, Hit(Severity.ERROR, tuple(map(str, self.evidence))))

    def to_json(self) -> dict:
        return {
            "id": self.problem.id,
            "title": self.problem.title,
            "confidence": self.confidence,
            "evidence": [{"line": e.line, "text": e.text} for e in self.evidence],
            **({"detail": self.detail} if self.detail else {}),
            "fix": self.problem.fix,
            "references": list(self.problem.references),
        }


@dataclass(frozen=True)
class Explanation:
    matches: tuple[Match, ...]  # likeliest first
    lines: int  # lines read
    # when nothing is recognized: the problem that came closest, so a tool can still show it
    candidate: Match | None = None

    @property
    def recognized(self) -> bool:
        return bool(self.matches)

    def to_json(self) -> dict:
        out = {"recognized": self.recognized, "matches": [m.to_json() for m in self.matches]}
        if self.candidate is not None:
            out["candidate"] = self.candidate.to_json()
        return out

    def on_this_machine(self, findings: Iterable[Finding]) -> list[Finding]:
        """The machine's own findings of the problems this log shows, in the log's order.

        A log says what failed; `check` says what is wrong here and exactly how to fix
        it (which directory, which file). Where both name one problem, the machine's
        finding is that problem's exact form; the candidate counts when nothing else does.
        """
        ids = [m.problem.id for m in self.matches or filter(None, [self.candidate])]
        mine = [f for f in findings if f.id in ids and f.severity is not Severity.INFO]
        return sorted(mine, key=lambda f: ids.index(f.id))


@dataclass(frozen=True)
class _Signature(knowledge.Signature):
    """A knowledge-base signature with its place in the scan and its problem's id."""

    index: int = -1
    problem: str = ""


def anchors(pattern: re.Pattern[str]) -> list[str]:
    """Literals of which every match of `pattern` contains at least one.

    Built from the parsed pattern: a stretch of literal characters, small
    alternations and optional characters (`(?:cannot find|找不到) -l`) spells
    a few exact strings, one of which every match holds; of all such stretches
    the one whose shortest string is longest wins. Empty when nothing of
    `ANCHOR_MIN` characters is certain.
    """
    best = _cover(sre_parse.parse(pattern.pattern, pattern.flags))
    return sorted(best) if best else []


MAX_SPELLINGS = 32


def _quality(cover: frozenset[str] | None) -> tuple[int, int]:
    return (min(map(len, cover)), -len(cover)) if cover else (0, 0)


def _exact(item) -> frozenset[str] | None:
    """Every string a small, fixed part of a pattern can match, or None."""
    op, arg = item
    if op is sre_parse.LITERAL:
        return frozenset([chr(arg)])
    if op is sre_parse.SUBPATTERN:
        return _spell(arg[-1])
    if op is sre_parse.BRANCH:
        parts = [_spell(branch) for branch in arg[1]]
        if all(p is not None for p in parts):
            return frozenset().union(*parts)
    if op is sre_parse.MAX_REPEAT and arg[0] == 0 and arg[1] == 1:
        inner = _spell(arg[2])
        return None if inner is None else inner | {""}
    return None


def _spell(items) -> frozenset[str] | None:
    spelled = frozenset([""])
    for item in items:
        part = _exact(item)
        if part is None or len(spelled) * len(part) > MAX_SPELLINGS:
            return None
        spelled = frozenset(a + b for a in spelled for b in part)
    return spelled


def _cover(items) -> frozenset[str] | None:
    """The best set of literals covering every match of a parsed sequence."""
    options: list[frozenset[str]] = []
    stretch = frozenset([""])
    for item in items:
        part = _exact(item)
        if part is not None and len(stretch) * len(part) <= MAX_SPELLINGS:
            stretch = frozenset(a + b for a in stretch for b in part)
            continue
        options.append(stretch)
        stretch = frozenset([""]) if part is None else part
        op, arg = item
        if op is sre_parse.SUBPATTERN:
            options.append(_cover(arg[-1]) or frozenset())
        elif op is sre_parse.BRANCH:
            branches = [_cover(branch) for branch in arg[1]]
            if all(branches):
                options.append(frozenset().union(*branches))
    options.append(stretch)
    best = max(options, key=_quality)
    return best if _quality(best)[0] >= ANCHOR_MIN else None


def _key(literal: str) -> bytes:
    return literal.lower().encode("utf-8")


@functools.cache
def signatures() -> dict[str, tuple[knowledge.Signature, ...]]:
    """Every problem's signatures by id: its entry's own, then those derived from the
    owner table and from the forks' sources."""
    derived = (owners.signatures(), forks.signatures())
    return {
        pid: (*problem.signatures, *(s for d in derived for s in d.get(pid, ())))
        for pid, problem in knowledge.entries().items()
    }


@functools.cache
def _signatures() -> tuple[tuple[_Signature, tuple[bytes, ...]], ...]:
    """Every signature of the knowledge base with its anchors (lowercase bytes)."""
    out = []
    for pid, sigs in signatures().items():
        for s in sigs:
            keys = tuple(sorted({_key(a) for a in anchors(s.pattern)}))
            if not keys:
                raise knowledge.KnowledgeError(
                    f"{pid}.toml: signature {s.pattern.pattern!r} has no literal of "
                    f"{ANCHOR_MIN}+ characters that every match must contain"
                )
            own = {f.name: getattr(s, f.name) for f in fields(s)}
            sig = _Signature(**own, index=len(out), problem=pid)
            out.append((sig, keys))
    return tuple(out)


class _Anchors:
    """Automata over the anchors of the signatures still collecting evidence."""

    def __init__(self, sigs: Iterable[tuple[_Signature, tuple[bytes, ...]]]) -> None:
        by_key: dict[bytes, list[_Signature]] = {}
        for sig, keys in sigs:
            for key in keys:
                by_key.setdefault(key, []).append(sig)
        keys = list(by_key)
        self.sigs = [tuple(by_key[k]) for k in keys]
        # leftmost-first finds lines with any anchor fastest; a line's full set of
        # anchors needs the overlapping search, which is only run on such lines
        self.first = ahocorasick_rs.BytesAhoCorasick(keys, matchkind=_LEFTMOST) if keys else None
        self.every = ahocorasick_rs.BytesAhoCorasick(keys) if keys else None

    def lines(self, low: bytes) -> Iterator[tuple[int, int, list[_Signature]]]:
        """(start, end, candidate signatures) of each line of `low` holding an anchor."""
        if self.first is None or self.every is None:
            return
        after = -1
        for _, pos, _ in self.first.find_matches_as_indexes(low):
            if pos < after:
                continue
            start = low.rfind(b"\n", 0, pos) + 1
            end = low.find(b"\n", pos)
            after = end = len(low) if end == -1 else end
            found: dict[int, _Signature] = {}
            for key, _, _ in self.every.find_matches_as_indexes(low[start:end], overlapping=True):
                for sig in self.sigs[key]:
                    found[sig.index] = sig
            yield start, end, [found[i] for i in sorted(found)]


class _English:
    """The tools' translated messages in a chunk, read back into English, line by line.

    One Aho-Corasick pass (over the translations' own literals, exact case) finds
    the lines holding any; only those are decoded and rewritten, longest message
    first so that gcc's "fatal error: " is read before its "error: ". Newlines are
    never added or removed, so line numbers hold.
    """

    def __init__(self) -> None:
        rules = sorted({(p, r) for _, _, p, r in translations.MESSAGES}, key=lambda x: -len(x[0]))
        self.rules = [(re.compile(p), r) for p, r in rules]
        by_key: dict[bytes, set[int]] = {}
        for index, (pattern, _) in enumerate(self.rules):
            for literal in anchors(pattern):
                by_key.setdefault(literal.encode("utf-8"), set()).add(index)
        keys = list(by_key)
        self.rules_of = [sorted(by_key[k]) for k in keys]
        self.first = ahocorasick_rs.BytesAhoCorasick(keys, matchkind=_LEFTMOST)
        self.every = ahocorasick_rs.BytesAhoCorasick(keys)

    def __call__(self, text: bytes) -> bytes:
        out, done = [], 0
        for _, pos, _ in self.first.find_matches_as_indexes(text):
            if pos < done:
                continue
            start = text.rfind(b"\n", 0, pos) + 1
            end = text.find(b"\n", pos)
            end = len(text) if end == -1 else end
            found = set()
            for key, _, _ in self.every.find_matches_as_indexes(text[start:end], overlapping=True):
                found.update(self.rules_of[key])
            line = text[start:end].decode("utf-8", "replace")
            for index in sorted(found):
                pattern, english = self.rules[index]
                line = pattern.sub(english, line)
            out += [text[done:start], line.encode("utf-8")]
            done = end
        return b"".join(out) + text[done:] if out else text


@functools.cache
def _english() -> _English:
    return _English()


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    """The stream's bytes as UTF-8 where it is UTF-16 (PowerShell's `>` writes that)."""
    block = stream.read(CHUNK_BYTES)
    if not block.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        while block:
            yield block
            block = stream.read(CHUNK_BYTES)
        return
    decoder = codecs.getincrementaldecoder("utf-16")(errors="replace")
    while block:
        yield decoder.decode(block).encode("utf-8")
        block = stream.read(CHUNK_BYTES)
    yield decoder.decode(b"", final=True).encode("utf-8")


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Whole lines, a few megabytes at a time; an endless line is cut into pieces."""
    carry = b""
    for block in _blocks(stream):
        data = carry + block
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) < LONGEST_LINE:
                carry = data
                continue
            cut = len(data)
        carry = data[cut:]
        yield data[:cut]
    if carry:
        yield carry


def _clean(chunk: bytes) -> bytes:
    """Without colours and carriage returns, with rows a console cut at its width joined;
    newlines (and so line numbers) are kept."""
    text = _ANSI.sub(b"", chunk).replace(b"\r\n", b"\n").replace(b"\r", b" ")
    return _QUOTED.sub(rb"\1\2\3\4", _WRAPPED.sub(_unwrap, text))


# A line quoted whole, as an issue thread shows a one-line error: Markdown inline code
# (`ImportError: No module named pydot`), plain or typographic double quotes. Read
# without the quotes, so that signatures anchored at the line's end still see it end.
_QUOTED = re.compile(
    rb"(?m)^([ \t]*)"
    rb'(?:`([^`\n]+)`|"([^"\n]+)"|\xe2\x80\x9c((?:(?!\xe2\x80\x9d)[^\n])+)\xe2\x80\x9d)'
    rb"[ \t]*$"
)


# Windows' console wraps every line at its width (80 columns by default) and a copy
# keeps the rows: `... Message type "caf` / `fe.LayerParameter" has no field ...`. A
# message spans a few rows; a log whose own lines happen to be 80 wide is not joined
# into one line longer than that.
WRAPPED_ROWS = 16
_WRAPPED = re.compile(rb"(?m)^(?:[^\n]{80}\n){1,%d}[^\n]*" % WRAPPED_ROWS)


def _unwrap(rows: re.Match[bytes]) -> bytes:
    """The rows as one line, then as many empty lines as were joined."""
    return rows[0].replace(b"\n", b"") + b"\n" * rows[0].count(b"\n")


def _quote(line: str, at: int) -> str:
    """The line as printable text, cut around position `at` when it is long."""
    text = _CONTROL.sub(" ", line)
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    if len(text) <= QUOTE_CHARS:
        return text
    start = max(0, at - lead - QUOTE_CHARS // 3)
    tail = "…" if start + QUOTE_CHARS < len(text) else ""
    return ("…" if start else "") + text[start : start + QUOTE_CHARS] + tail


class _Scan:
    """One pass over a log: the evidence found so far and the lines counted."""

    def __init__(self) -> None:
        self.hits: dict[int, list[tuple[int, str]]] = {}  # signature -> [(line, quote)]
        self.sigs: dict[int, _Signature] = {}
        self.lines = 0
        self.partial = False  # the last chunk ended inside a line
        self.anchors = _Anchors(_signatures())

    def _full(self, sig: _Signature) -> bool:
        return len(self.hits.get(sig.index, ())) >= EVIDENCE_PER_SIGNATURE

    def feed(self, raw: bytes) -> None:
        text = _english()(_clean(raw))
        low = text.lower()
        offset, line_no, filled = 0, self.lines, False
        for start, end, candidates in self.anchors.lines(low):
            line: str | None = None
            for sig in candidates:
                if self._full(sig):
                    continue
                if line is None:
                    line = text[start:end].decode("utf-8", "replace")
                m = sig.pattern.search(line)
                if m and (sig.accept is None or sig.accept(m)):
                    line_no += low.count(b"\n", offset, start)
                    offset = start
                    self.sigs[sig.index] = sig
                    self.hits.setdefault(sig.index, []).append(
                        (line_no + 1, _quote(line, m.start()))
                    )
                    filled = filled or self._full(sig)
        if filled:  # stop searching for anchors that can add nothing more
            self.anchors = _Anchors((s, k) for s, k in _signatures() if not self._full(s))
        self.lines += low.count(b"\n")
        self.partial = bool(low) and not low.endswith(b"\n")

    def result(self) -> Explanation:
        by_problem: dict[str, list[tuple[_Signature, list[tuple[int, str]]]]] = {}
        for index, lines in self.hits.items():
            sig = self.sigs[index]
            by_problem.setdefault(sig.problem, []).append((sig, lines))
        own = {pid: sum(sig.weight for sig, _ in hits) for pid, hits in by_problem.items()}
        scored = []
        for pid, hits in by_problem.items():
            # a problem whose lines explain another's takes that one's weight too
            explained = {other for sig, _ in hits for other in sig.outranks if other != pid}
            score = own[pid] + sum(own.get(other, 0.0) for other in explained)
            first = min(line for _, lines in hits for line, _ in lines)
            scored.append((score, first, pid, hits))
        scored.sort(key=lambda s: (-s[0], s[1], s[2]))
        named = [s for s in scored if s[0] >= RECOGNIZED_AT]
        total = sum(s[0] for s in named)
        matches = tuple(_match(pid, score, total, hits) for score, _, pid, hits in named)
        candidate = None
        if not matches and scored:
            score, _, pid, hits = scored[0]
            candidate = _match(pid, score, score, hits)
        return Explanation(matches=matches, lines=self.lines + self.partial, candidate=candidate)


def _match(pid: str, score: float, total: float, hits) -> Match:
    evidence = _evidence(hits)
    return Match(
        problem=knowledge.get(pid),
        score=score,
        confidence=_confidence(score, total),
        evidence=evidence,
        detail=forks.defined_by(e.text for e in evidence) if pid == forks.PROBLEM else _hint(hits),
    )


def _hint(hits: list[tuple[_Signature, list[tuple[int, str]]]]) -> str | None:
    """The hint of the heaviest matched form that has one: its own, more precise fix."""
    hinted = sorted((sig for sig, _ in hits if sig.hint), key=lambda sig: -sig.weight)
    return hinted[0].hint if hinted else None


def _confidence(score: float, total: float) -> float:
    """How strong the evidence is (saturating in the score) times this problem's share of it."""
    strength = 1 - 0.5 ** (score / 1.5)
    return round(strength * score / total, 2)


def _evidence(hits: list[tuple[_Signature, list[tuple[int, str]]]]) -> tuple[Evidence, ...]:
    """The lines of the heaviest signatures first, then shown in log order."""
    weight: dict[int, float] = {}
    text: dict[int, str] = {}
    for sig, lines in hits:
        for line, quote in lines:
            if sig.weight > weight.get(line, -1):
                weight[line], text[line] = sig.weight, quote
    best = sorted(weight, key=lambda line: (-weight[line], line))[:EVIDENCE_PER_MATCH]
    return tuple(Evidence(line, text[line]) for line in sorted(best))


def explain_stream(stream: BinaryIO) -> Explanation:
    """Read a log from a binary stream to its end, in bounded memory."""
    scan = _Scan()
    for chunk in _chunks(stream):
        scan.feed(chunk)
    return scan.result()


def diagnose(text: str) -> list[Finding]:
    """The known problems a log shows, likeliest first; empty when none is recognized."""
    return [
        m.finding() for m in explain_stream(io.BytesIO(text.encode("utf-8", "replace"))).matches
    ]
