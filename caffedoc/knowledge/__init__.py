"""The knowledge base: one TOML file per known problem, in this folder.

Each entry holds what people need to know about a problem (title, summary,
fix, references), how to recognize it in a log (`[[signatures]]`) and the data
its rule reads (`[detect]`, e.g. the targets each CUDA release builds for). How to
detect it from a machine's facts is code, in `caffedoc.detect`, registered under
the same id. `check`, `explain`, `fix` and the build and smoke diagnosis
all read these same entries, so an id means one thing everywhere.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from caffedoc import toml

HERE = Path(__file__).parent
AREAS = ("system", "python", "protobuf", "caffe", "cuda", "opencv", "build", "runtime")


class KnowledgeError(ValueError):
    """A malformed entry: names the file and the field."""


@dataclass(frozen=True)
class Signature:
    """A regular expression that recognizes the problem in a log line."""

    pattern: re.Pattern[str]
    weight: float
    source: str  # where the wording was seen (an issue, a thread)
    # problems whose lines this one explains (a fork's field behind a parse error): its
    # problem takes their weight too, so it is named before them
    outranks: tuple[str, ...] = ()
    # what one line's match must also satisfy, where a regular expression cannot say it
    # (a field no upstream field resembles: a fork's, not a typo)
    accept: Callable[[re.Match[str]], bool] | None = field(default=None, compare=False)
    # what this form of the message calls for beyond the problem's general fix (the C++
    # standard a newer protobuf's headers name), shown with the lines it matched
    hint: str = ""


def any_of(names: Iterable[str]) -> str:
    """A regular-expression alternation of exact names, the longest first (so that
    `caffe` does not win over `caffe.bin` where both would match)."""
    return "|".join(re.escape(n) for n in sorted(set(names), key=lambda n: (-len(n), n)))


@dataclass(frozen=True)
class Problem:
    id: str
    title: str
    area: str
    summary: str
    fix: str
    references: tuple[str, ...]
    signatures: tuple[Signature, ...]
    detect: dict = field(default_factory=dict, compare=False)  # data its rule reads


def _field(data: dict, name: str, kind: type, path: Path):
    value = data.get(name)
    if not isinstance(value, kind):
        raise KnowledgeError(f"{path.name}: field '{name}' must be a {kind.__name__}")
    if isinstance(value, str) and not value.strip():
        raise KnowledgeError(f"{path.name}: field '{name}' is empty")
    return value


def _parse(path: Path) -> Problem:
    try:
        data = toml.loads(path.read_text(encoding="utf-8"))
    except toml.TOMLDecodeError as exc:
        raise KnowledgeError(f"{path.name}: {exc}") from None
    pid = _field(data, "id", str, path)
    if pid != path.stem:
        raise KnowledgeError(f"{path.name}: field 'id' is '{pid}', expected '{path.stem}'")
    area = _field(data, "area", str, path)
    if area not in AREAS:
        raise KnowledgeError(f"{path.name}: field 'area' must be one of {', '.join(AREAS)}")
    sigs = []
    for i, s in enumerate(data.get("signatures", [])):
        try:
            pattern = re.compile(s["pattern"], re.IGNORECASE)
        except (KeyError, re.error) as exc:
            raise KnowledgeError(f"{path.name}: signatures[{i}].pattern: {exc}") from None
        hint = s.get("hint", "")
        if not isinstance(hint, str):
            raise KnowledgeError(f"{path.name}: signatures[{i}].hint must be a str")
        weight, source = float(s.get("weight", 1.0)), str(s.get("source", ""))
        sigs.append(Signature(pattern, weight, source, hint=" ".join(hint.split())))
    return Problem(
        id=pid,
        title=_field(data, "title", str, path),
        area=area,
        summary=_field(data, "summary", str, path).strip(),
        fix=_field(data, "fix", str, path).strip(),
        references=tuple(_field(data, "references", list, path)),
        signatures=tuple(sigs),
        detect=_field(data, "detect", dict, path) if "detect" in data else {},
    )


@functools.cache
def entries() -> dict[str, Problem]:
    """Every known problem, by id."""
    return {p.id: p for p in map(_parse, sorted(HERE.glob("*.toml")))}


def get(problem_id: str) -> Problem:
    return entries()[problem_id]
