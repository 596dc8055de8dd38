"""OpenCV beside Caffe: `import caffe; import cv2` and the reverse, each in its own process.

Why separate processes: the failures this looks for (a protobuf descriptor
registered twice, two OpenCV builds in one process) abort or segfault the
interpreter, sometimes only at exit, and depend on import order. Each child
reports its progress line by line, so whatever it printed before it died says
which import killed it. The children are the `imports` probe's
(`scripts/try_import.py`): the first is also the caffe area's `import caffe`, so
a check imports caffe twice, not three times. Both start before the other
probes: they are the slowest part of `caffedoc check`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from caffedoc.probes import Session, probe
from caffedoc.probes.imports import ImportChild, ImportChildren
from caffedoc.probes.interpreters import Interpreter


@dataclass(frozen=True)
class ImportRun:
    """One child: what it imported, and how it ended."""

    order: tuple[str, ...]
    imported: tuple[str, ...]  # modules that imported
    import_errors: dict[str, str]  # module → "ModuleNotFoundError: No module named 'cv2'"
    died_in: str | None  # the module whose import was under way when the process died
    started: bool  # the child reported anything: the interpreter ran the script
    finished: bool  # every import was attempted and reported
    skipped: bool  # the pair not tried: a module is not installed (a leading caffe still is)
    ended: str  # host.Result.describe(): exit status, signal or timeout
    returncode: int | None
    signal: str | None
    timed_out: bool
    stderr_tail: tuple[str, ...]
    seconds: float
    shared: tuple[str, ...] = ()  # imported before the fork by the parent of both orders
    fallback: str | None = None  # why it ran as a plain child instead

    @property
    def statement(self) -> str:
        return "; ".join(f"import {m}" for m in self.order)

    @property
    def crashed(self) -> bool:
        """It died of a signal: a hang is the interpreter's, named by `unexamined`."""
        return self.signal is not None

    @property
    def crashed_at_exit(self) -> bool:
        return self.finished and self.signal is not None


@dataclass(frozen=True)
class Module:
    name: str
    file: str
    version: str | None
    origin: str  # "pip (opencv-python-headless 4.11.0.86)", "distro package", "elsewhere"


@dataclass(frozen=True)
class OpencvFacts:
    python: Path
    runs: tuple[ImportRun, ...]
    modules: dict[str, Module]  # name → where it came from, for those that imported
    import_errors: dict[str, str]  # name → why it does not import (even alone in a run)
    cv2_protobuf: tuple[str, ...]  # what cv2's build information says about protobuf
    mapped: tuple[str, ...]  # libprotobuf / libopencv_core files loaded with both imported


def _pip_dists(module_file: str) -> list[str]:
    """The opencv-* wheels installed beside a cv2 package, from their .dist-info folders
    (read here: importlib.metadata in the child would cost more than the import)."""
    site = Path(module_file).parent.parent
    try:
        names = sorted(e.name for e in os.scandir(site) if e.name.endswith(".dist-info"))
    except OSError:
        return []
    out = []
    for n in names:
        m = re.match(r"(opencv[\w.]*?)-([^-]+)\.dist-info$", n)
        if m:
            out.append(f"{m.group(1).replace('_', '-')} {m.group(2)}")
    return out


def _origin(name: str, file: str) -> str:
    dists = _pip_dists(file) if name == "cv2" and file else []
    if dists:
        return "pip (" + ", ".join(dists) + ")"
    if "/dist-packages/" in file and file.startswith("/usr/lib/"):
        return "distro package"
    if name == "caffe" and "/site-packages/" not in file and "/dist-packages/" not in file:
        return "a source or install tree on sys.path"
    return "elsewhere on sys.path"


def _run(child: ImportChild) -> ImportRun:
    imported = tuple(d["module"] for d in child.named("module"))
    errors = {d["module"]: d["error"] for d in child.named("absent") + child.named("error")}
    started = [d["module"] for d in child.named("start")]
    finished = child.step("done") is not None
    died_in = None
    if not finished and started and started[-1] not in imported and started[-1] not in errors:
        died_in = started[-1]
    res = child.result
    tail = tuple(line for line in child.stderr.strip().splitlines()[-30:] if line.strip())
    return ImportRun(
        order=child.order,
        imported=imported,
        import_errors=errors,
        died_in=died_in,
        started=bool(child.steps),
        finished=finished,
        skipped=bool(child.named("absent")),
        ended=child.ended,
        returncode=res.returncode,
        signal=res.signal_name,
        timed_out=res.timed_out,
        stderr_tail=tail,
        seconds=round(res.seconds, 2),
        shared=child.shared,
        fallback=child.fallback,
    )


def _summarize(f: OpencvFacts) -> list[str]:
    lines = []
    for name in ("cv2", "caffe"):
        if name in f.modules:
            m = f.modules[name]
            lines.append(f"{name} {m.version or ''} from {m.origin}: {m.file}".replace("  ", " "))
        elif name in f.import_errors:
            lines.append(f"{name} does not import in {f.python}: {f.import_errors[name]}")
    if f.cv2_protobuf:
        lines.append("cv2's protobuf: " + "; ".join(f.cv2_protobuf))
    fallback = next((r.fallback for r in f.runs if r.fallback), None)
    if fallback:
        lines.append(f"each order ran in a fresh interpreter: {fallback}")
    for run in f.runs:
        if run.skipped:
            how = "not tried, " + ", ".join(sorted(run.import_errors)) + " not installed"
        elif not run.started or run.timed_out:
            how = _failed(run)
        elif run.crashed_at_exit:
            how = f"crashed at exit ({run.signal})"
        elif run.crashed:
            how = f"died in import {run.died_in} ({run.signal})"
            said = [ln for ln in run.stderr_tail if "ERROR" in ln or "FATAL" in ln]
            how += f": {said[0].split('] ', 1)[-1].strip()}" if said else ""
        elif not run.finished:
            last = run.stderr_tail[-1].strip() if run.stderr_tail else ""
            how = f"ended early: {run.ended}" + (f": {last}" if last else "")
        elif run.import_errors:
            how = "import error (" + ", ".join(sorted(run.import_errors)) + ")"
        else:
            how = "ok"
        lines.append(f"`{run.statement}`: {how}, {run.seconds:.1f} s")
    return lines


def _failed(run: ImportRun) -> str:
    """How a child that hung, or never ran its script, ended."""
    if not run.started:
        return f"did not run: {run.ended}"
    return f"hung in `import {run.died_in}`: {run.ended}" if run.died_in else run.ended


def _unexamined(f: OpencvFacts) -> str | None:
    """A child that hung or never ran its script tells nothing of OpenCV beside Caffe."""
    said = [
        f"`{r.statement}`: {_failed(r)}"
        for r in f.runs
        if not r.skipped and (not r.started or r.timed_out)
    ]
    return "; ".join(said) or None


@probe("opencv", ("target", "imports"), _summarize, _unexamined)
def gather(_session: Session, target: Interpreter, children: ImportChildren) -> OpencvFacts:
    """Both children's verdicts; they ran the target, so they mean nothing when it could
    not be examined."""
    runs = tuple(_run(child) for child in children)
    modules: dict[str, Module] = {}
    cv2_protobuf: list[str] = []
    mapped: set[str] = set()
    for child in children:
        for d in child.named("cv2-protobuf"):
            if d["line"] not in cv2_protobuf:
                cv2_protobuf.append(d["line"])
        for d in child.named("mapped"):
            mapped.update(d["paths"])
        for d in child.named("module"):
            name, file = d["module"], d.get("file") or ""
            if name not in modules:
                modules[name] = Module(name, file, d.get("version") or None, _origin(name, file))
    import_errors: dict[str, str] = {}
    for run in runs:
        for name, why in run.import_errors.items():
            if name not in modules:
                import_errors.setdefault(name, why)
    return OpencvFacts(
        python=Path(target.path),
        runs=runs,
        modules=modules,
        import_errors=import_errors,
        cv2_protobuf=tuple(cv2_protobuf),
        mapped=tuple(sorted(mapped)),
    )
