"""Probes gather facts about the machine; they never judge.

A probe is a function registered with `@probe(name, needs=(...))`: it receives
this check's `Session` and the facts of each probe it needs, in that order, and
returns a dataclass of facts. `gather` runs the graph those declarations make:
every probe starts as soon as its needs are done, independent ones at once (in
threads), each under its own deadline. A probe that raises or outlives its
deadline is a recorded failure, never an exception; a probe whose need left no
facts is not run. A probe whose facts say it examined nothing (its `unexamined`
hook: a target that is not a Python, an interpreter that hung) fails its area,
and the areas that read those facts are not examined either: a report never
shows them as healthy.

Most probes are report areas (`facts.get("caffe")`); the rest are internal
facts several areas read (the target interpreter, the import children, Caffe's
binaries, the CUDA toolkits…), run once per check, never shown on their own.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

# The subjects, each a module of this package; report areas in report order.
MODULES = (
    "system",
    "interpreters",
    "imports",
    "python",
    "binaries",
    "wheel",
    "protobuf",
    "caffe",
    "toolkits",
    "driver",
    "cudnn",
    "cuda",
    "opencv",
)
T = TypeVar("T")
MIN_LIMIT = 1.0  # seconds a tool command gets even past the check's deadline
# Started before the other probe modules are imported (a fifth of a second of packaging,
# distro…): the import children are the slowest part of a check, and need nothing.
FIRST = ("imports",)


@dataclass(frozen=True)
class Context:
    """What to examine. Tests point these at environments they build."""

    python: Path  # the interpreter that should import caffe
    caffe_dir: Path | None = None  # a Caffe source, build or install tree
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # A tool's answer (`readelf`, `ldconfig -p`, `nvidia-smi`, an interpreter's sys.path)
    # takes well under a second: a hung one costs at most this, and all of them together
    # too, since every command ends by `deadline` (see limit()).
    timeout: float = 10.0
    import_timeout: float = 20.0  # for the import children: real imports of large libraries
    deadline: float | None = None  # time.monotonic() by which tool commands end (gather sets it)
    ld_so_conf: Path = Path("/etc/ld.so.conf")  # the linker configuration to read
    ld_so_cache: Path = Path("/etc/ld.so.cache")  # the linker cache to read
    dpkg_status: Path = Path("/var/lib/dpkg/status")  # dpkg's database of installed packages
    # False where no GPU is meant to be (an image build, a CI runner): the user's word,
    # a fact about the machine's purpose that the GPU rules weigh like any other.
    gpu_expected: bool = True

    def limit(self) -> float:
        """A tool command's timeout: `timeout`, cut to what is left before the deadline, so
        hung tools run one after another (ldconfig, then readelf) delay a check no more
        than one does; never under a second."""
        if self.deadline is None:
            return self.timeout
        return max(MIN_LIMIT, min(self.timeout, self.deadline - time.monotonic()))


class Session:
    """One check's look at the machine: the context, and what its probes computed once
    (a library's closure, an `ldconfig -p`, a child asking libcudnn its version). A
    later check (after `caffedoc fix`, say) gets a new session and looks afresh."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._done: dict[tuple, concurrent.futures.Future] = {}

    def once(self, key: tuple, compute: Callable[[], T]) -> T:
        """`compute()` a single time per session however many threads ask at once."""
        with self._lock:
            fut = self._done.get(key)
            owner = fut is None
            if owner:
                fut = self._done[key] = concurrent.futures.Future()
        if owner:
            try:
                fut.set_result(compute())
            except BaseException as exc:
                fut.set_exception(exc)
        return fut.result()


@dataclass(frozen=True)
class Probe:
    name: str
    gather: Callable[..., Any]  # (session, *the facts of `needs`, in order)
    needs: tuple[str, ...]
    summarize: Callable[[Any], list[str]]
    unexamined: Callable[[Any], str | None]  # why its facts examined nothing, if so
    area: bool  # a report area; else internal facts that areas read
    subject: str  # what the probes that need it are told is missing
    deadline: float  # seconds from its start


@dataclass
class Facts:
    """Every area's facts, and the areas that were not examined (area → why)."""

    areas: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    internal: dict[str, Any] = field(default_factory=dict)  # facts no report shows

    def get(self, area: str) -> Any:
        return self.areas.get(area, self.internal.get(area))

    def to_json(self) -> dict:
        out: dict[str, Any] = {a: _jsonable(v) for a, v in self.areas.items()}
        if self.failures:
            out["probe_failures"] = dict(self.failures)
        return out


REGISTRY: dict[str, Probe] = {}


def probe(
    name: str,
    needs: tuple[str, ...] = (),
    summarize: Callable[[Any], list[str]] | None = None,
    unexamined: Callable[[Any], str | None] | None = None,
    *,
    area: bool = True,
    subject: str | None = None,
    deadline: float = 60.0,
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Register a probe for `name` that reads the facts of `needs`; `unexamined` reads its
    facts and says why they examined nothing (the subject could not be run), or None."""

    def register(fn: Callable[..., T]) -> Callable[..., T]:
        REGISTRY[name] = Probe(
            name,
            fn,
            tuple(needs),
            summarize or (lambda _facts: []),
            unexamined or (lambda _facts: None),
            area,
            subject or f"the {name} facts",
            deadline,
        )
        return fn

    return register


def load_all() -> dict[str, Probe]:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return REGISTRY


def _wanted(probes: Mapping[str, Probe], only: Iterable[str] | None) -> list[str]:
    """The probes to run, in declaration order: `only` and everything they need."""
    todo, seen = list(only if only is not None else probes), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += probes[name].needs
    return [n for n in probes if n in seen]


Running = dict[concurrent.futures.Future, tuple[str, float]]  # a probe's future → (name, end)
# A whole check's FIRST probes started by head_start(), for the gather of the same context.
_head_start: tuple[Context, Session, Running] | None = None


def _start_first(session: Session) -> Running:
    """Start FIRST's probes (those that need no other facts), each in a thread of its own."""
    running: Running = {}
    early = concurrent.futures.ThreadPoolExecutor(max_workers=len(FIRST))
    for module in FIRST:
        mod = importlib.import_module(f"{__name__}.{module}")
        for name, p in REGISTRY.items():
            if p.gather.__module__ == mod.__name__ and not p.needs:
                running[early.submit(p.gather, session)] = (name, time.monotonic() + p.deadline)
    early.shutdown(wait=False)  # no more work for it; what runs runs on
    return running


def head_start(ctx: Context) -> None:
    """Start a whole check's import children now, before the command line's own modules
    load (typer and every command: a tenth of a check's time). The next whole `gather`
    of the same context takes them over; one of another context starts its own, and
    these end as any probe does, by their deadline."""
    global _head_start
    if ctx.deadline is None:
        ctx = dataclasses.replace(ctx, deadline=time.monotonic() + ctx.timeout)
    session = Session(ctx)
    _head_start = (ctx, session, _start_first(session))


def _take_head_start(ctx: Context) -> tuple[Context, Session, Running] | None:
    global _head_start
    head, _head_start = _head_start, None
    if head is None:
        return None
    same = dataclasses.replace(head[0], deadline=None) == dataclasses.replace(ctx, deadline=None)
    return head if same else None


def gather(
    ctx: Context, only: Iterable[str] | None = None, meanwhile: Callable[[], Any] | None = None
) -> Facts:
    """Run the probe graph (all of it, or what `only` needs) for one check, and
    `meanwhile()` beside it once the first probes (the import children) have started."""
    if ctx.deadline is None:
        ctx = dataclasses.replace(ctx, deadline=time.monotonic() + ctx.timeout)
    head = _take_head_start(ctx) if only is None else None
    if head is not None:
        ctx, session, running = head
    else:
        session = Session(ctx)
        # A whole check: FIRST's probes start before the rest is even imported.
        running = _start_first(session) if only is None else {}
    probes = load_all()
    names = _wanted(probes, only)
    results: dict[str, Any] = {}
    failed: dict[str, str] = {}  # probe → why it saw nothing
    waiting = [n for n in names if n not in _names(running)]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(names) + 1)
    beside: concurrent.futures.Future | None = None
    while waiting or running:
        for name in list(waiting):
            p = probes[name]
            missing = [n for n in p.needs if n not in results and n in failed]
            if missing:
                waiting.remove(name)
                failed[name] = _needs_failed(probes[missing[0]], failed[missing[0]])
            elif all(n in results for n in p.needs):
                waiting.remove(name)
                fut = pool.submit(p.gather, session, *(results[n] for n in p.needs))
                running[fut] = (name, time.monotonic() + p.deadline)
        if meanwhile is not None and beside is None:
            beside = pool.submit(meanwhile)
        if not running:
            if waiting:  # a need that nothing provides: a programming error
                raise RuntimeError(f"probes with unmet needs: {', '.join(waiting)}")
            break
        first = min(end for _name, end in running.values())
        done, _ = concurrent.futures.wait(
            running, timeout=max(0.0, first - time.monotonic()), return_when="FIRST_COMPLETED"
        )
        for fut in done:
            name, _end = running.pop(fut)
            exc = fut.exception()
            if exc is not None:
                where = traceback.extract_tb(exc.__traceback__)[-1]
                failed[name] = (
                    f"the {name} probe crashed: {type(exc).__name__}: {exc} "
                    f"({Path(where.filename).name}:{where.lineno})"
                )
                continue
            results[name] = fut.result()
            p = probes[name]
            why = p.unexamined(results[name]) or _need_unexamined(probes, p, failed)
            if why:
                failed[name] = why
        now = time.monotonic()
        for fut, (name, end) in list(running.items()):
            if end <= now and not fut.done():
                del running[fut]
                failed[name] = f"the {name} probe did not finish in {probes[name].deadline:.0f} s"
    if beside is not None:
        beside.result()
    pool.shutdown(wait=False, cancel_futures=True)
    facts = Facts()
    for name in names:
        where = facts.areas if probes[name].area else facts.internal
        if name in results:
            where[name] = results[name]
        if probes[name].area and name in failed:
            facts.failures[name] = failed[name]
    return facts


def _names(running: Mapping[concurrent.futures.Future, tuple[str, float]]) -> set[str]:
    return {name for name, _end in running.values()}


def _needs_failed(need: Probe, why: str) -> str:
    """Why a probe is not examined when `need` failed for `why`: an area's failure is
    shown in its own area, an internal one only here."""
    said = "" if need.area else f": {why}"
    return f"not examined: it needs {need.subject}, which could not be examined{said}"


def _need_unexamined(probes: Mapping[str, Probe], p: Probe, failed: Mapping[str, str]) -> str:
    """An area whose facts rest on a need that examined nothing examined nothing either;
    internal facts are building blocks, partial when their need was."""
    if not p.area:
        return ""
    bad = next((n for n in p.needs if n in failed), None)
    return _needs_failed(probes[bad], failed[bad]) if bad else ""


def summary(area: str, facts: Facts) -> list[str]:
    """A probe's own one-line account of what it saw, for the report."""
    data = facts.areas.get(area)
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
