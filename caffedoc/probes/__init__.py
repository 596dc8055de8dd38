"""Probes gather facts about the machine; they never judge.

One module per subject registers a probe with `@probe(area)`. A probe takes the
`Context` (what to look at) and returns a dataclass of facts. `gather` runs every
probe concurrently: a probe that raises or outlives its deadline becomes a
recorded failure, never an exception. So does a probe whose facts say it could
not examine its subject (its `unexamined` hook: a target that is not a Python,
an interpreter that hung), and the areas whose subject is the target interpreter
are not examined when it was not: a report never shows them as healthy.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The subjects, in report order; each is a module of this package.
MODULES = ("system", "python", "protobuf", "caffe", "cuda", "opencv")
# The areas that examine what the target interpreter sees and imports.
TARGET_AREAS = ("python", "protobuf", "caffe", "opencv")


@dataclass(frozen=True)
class Context:
    """What to examine. Tests point these at environments they build."""

    python: Path  # the interpreter that should import caffe
    caffe_dir: Path | None = None  # a Caffe source, build or install tree
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    timeout: float = 20.0  # for each command a probe runs
    ld_so_conf: Path = Path("/etc/ld.so.conf")  # the linker configuration to read
    ld_so_cache: Path = Path("/etc/ld.so.cache")  # the linker cache to read


@dataclass(frozen=True)
class Probe:
    area: str
    gather: Callable[[Context], Any]
    summarize: Callable[[Any], list[str]]
    unexamined: Callable[[Any], str | None]  # why its facts examined nothing, if so


@dataclass
class Facts:
    """Every probe's result by area, and the probes that failed (area → why)."""

    areas: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def get(self, area: str) -> Any:
        return self.areas.get(area)

    def to_json(self) -> dict:
        out: dict[str, Any] = {a: _jsonable(v) for a, v in self.areas.items()}
        if self.failures:
            out["probe_failures"] = dict(self.failures)
        return out


REGISTRY: dict[str, Probe] = {}


def probe(
    area: str,
    summarize: Callable[[Any], list[str]] | None = None,
    unexamined: Callable[[Any], str | None] | None = None,
):
    """Register a probe function for `area`; `unexamined` reads its facts and says why
    they examined nothing (the subject could not be run), or None."""

    def register(fn: Callable[[Context], Any]) -> Callable[[Context], Any]:
        REGISTRY[area] = Probe(
            area, fn, summarize or (lambda _facts: []), unexamined or (lambda _facts: None)
        )
        return fn

    return register


def load_all() -> dict[str, Probe]:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return REGISTRY


def gather(ctx: Context, deadline: float = 60.0) -> Facts:
    """Run every probe at once; collect facts and failures."""
    probes = load_all()
    facts = Facts()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(probes))
    futures = {pool.submit(p.gather, ctx): area for area, p in probes.items()}
    done, pending = concurrent.futures.wait(futures, timeout=deadline)
    for fut in done:
        area = futures[fut]
        exc = fut.exception()
        if exc is None:
            facts.areas[area] = fut.result()
        else:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            facts.failures[area] = (
                f"the {area} probe crashed: {type(exc).__name__}: {exc} "
                f"({Path(where.filename).name}:{where.lineno})"
            )
    for fut in pending:
        area = futures[fut]
        facts.failures[area] = f"the {area} probe did not finish in {deadline:.0f} s"
    pool.shutdown(wait=False, cancel_futures=True)
    _not_examined(facts, probes)
    return facts


def _not_examined(facts: Facts, probes: Mapping[str, Probe]) -> None:
    """Record as failures the areas that gathered facts yet examined nothing."""
    for area, data in facts.areas.items():
        why = probes[area].unexamined(data)
        if why and area not in facts.failures:
            facts.failures[area] = why
    if "python" in facts.failures:
        for area in TARGET_AREAS:
            facts.failures.setdefault(
                area, "not examined: it needs the target interpreter, which could not be examined"
            )


def summary(area: str, facts: Facts) -> list[str]:
    """A probe's own one-line account of what it saw, for the report."""
    data = facts.get(area)
    if data is None or area not in REGISTRY:
        return []
    try:
        return REGISTRY[area].summarize(data)
    except Exception as exc:  # a summary is decoration: never fail the report for it
        return [f"(summary unavailable: {exc})"]


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def default_python(env: Mapping[str, str]) -> Path:
    """The interpreter a user would run: `python3` on PATH, else this one."""
    from caffedoc.host import which_all

    found = which_all("python3", env.get("PATH", ""))
    return found[0] if found else Path(sys.executable)
