"""OpenCV beside Caffe: `import caffe; import cv2` and the reverse, each in its own process.

Why separate processes: the failures this looks for (a protobuf descriptor
registered twice, two OpenCV builds in one process) abort or segfault the
interpreter, sometimes only at exit, and depend on import order. Each child
reports its progress line by line, so whatever it printed before it died says
which import killed it. Both orders run at once: they are the slowest part of
`caffedoc check`.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
from dataclasses import dataclass
from pathlib import Path

from caffedoc import host
from caffedoc.probes import Context, probe

ORDERS = (("caffe", "cv2"), ("cv2", "caffe"))

# Runs in the diagnosed interpreter (Python 2.7 too). Progress lines start with a tag
# and are flushed at once, so a crash cannot swallow them.
CHILD = """
import os, sys
def say(*parts):
    sys.stdout.write('\\t'.join(['CAFFEDOC'] + [str(p) for p in parts]) + '\\n')
    sys.stdout.flush()
def findable(name):
    try:
        import importlib.util
        return importlib.util.find_spec(name) is not None
    except ImportError:
        import imp
        try:
            imp.find_module(name)
            return True
        except ImportError:
            return False
    except Exception:
        return True
absent = [n for n in sys.argv[1:] if not findable(n)]
for name in absent:
    say('error', name, "ModuleNotFoundError: No module named '%s'" % name)
if absent:
    say('skipped')
    say('done')
    sys.exit(0)
for name in sys.argv[1:]:
    say('start', name)
    try:
        mod = __import__(name)
    except BaseException as exc:
        say('error', name, (type(exc).__name__ + ': ' + str(exc)).replace('\\n', ' ')[:400])
        continue
    say('module', name, getattr(mod, '__file__', '') or '', getattr(mod, '__version__', '') or '')
    if name == 'cv2':
        try:
            for line in mod.getBuildInformation().splitlines():
                if 'protobuf' in line.lower():
                    say('cv2-protobuf', ' '.join(line.split()))
        except Exception:
            pass
try:
    with open('/proc/self/maps') as fh:
        mapped = set(l.split()[-1] for l in fh if 'libprotobuf' in l or 'libopencv_core' in l)
    for path in sorted(mapped):
        say('mapped', path)
except (IOError, OSError):
    pass
say('done')
"""


@dataclass(frozen=True)
class ImportRun:
    """One child: what it imported, and how it ended."""

    order: tuple[str, ...]
    imported: tuple[str, ...]  # modules that imported
    import_errors: dict[str, str]  # module → "ModuleNotFoundError: No module named 'cv2'"
    died_in: str | None  # the module whose import was under way when the process died
    finished: bool  # every import was attempted and reported
    skipped: bool  # not attempted: one of the modules is not installed at all
    ended: str  # host.Result.describe(): exit status, signal or timeout
    returncode: int | None
    signal: str | None
    timed_out: bool
    stderr_tail: tuple[str, ...]
    seconds: float

    @property
    def statement(self) -> str:
        return "; ".join(f"import {m}" for m in self.order)

    @property
    def crashed(self) -> bool:
        return self.signal is not None or self.timed_out

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


def _run(ctx: Context, order: tuple[str, ...]) -> tuple[ImportRun, list[list[str]]]:
    res = host.run([ctx.python, "-c", CHILD, *order], timeout=ctx.timeout, env=ctx.env)
    tags = [
        line.split("\t")[1:] for line in res.stdout.splitlines() if line.startswith("CAFFEDOC\t")
    ]
    imported = tuple(t[1] for t in tags if t[0] == "module")
    errors = {t[1]: t[2] for t in tags if t[0] == "error" and len(t) > 2}
    started = [t[1] for t in tags if t[0] == "start"]
    finished = any(t[0] == "done" for t in tags)
    died_in = None
    if not finished and started and started[-1] not in imported and started[-1] not in errors:
        died_in = started[-1]
    tail = tuple(line for line in res.stderr.strip().splitlines()[-30:] if line.strip())
    return (
        ImportRun(
            order=order,
            imported=imported,
            import_errors=errors,
            died_in=died_in,
            finished=finished,
            skipped=any(t[0] == "skipped" for t in tags),
            ended=res.describe().replace(CHILD, repr("; ".join(f"import {m}" for m in order))),
            returncode=res.returncode,
            signal=res.signal_name,
            timed_out=res.timed_out,
            stderr_tail=tail,
            seconds=round(res.seconds, 2),
        ),
        tags,
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
    for run in f.runs:
        if run.crashed_at_exit:
            how = f"crashed at exit ({run.signal})"
        elif run.crashed:
            how = f"died in import {run.died_in} ({run.signal or 'timed out'})"
            said = [ln for ln in run.stderr_tail if "ERROR" in ln or "FATAL" in ln]
            how += f": {said[0].split('] ', 1)[-1].strip()}" if said else ""
        elif not run.finished:
            last = run.stderr_tail[-1].strip() if run.stderr_tail else ""
            how = f"ended early: {run.ended}" + (f": {last}" if last else "")
        elif run.skipped:
            how = "not tried, " + ", ".join(sorted(run.import_errors)) + " not installed"
        elif run.import_errors:
            how = "import error (" + ", ".join(sorted(run.import_errors)) + ")"
        else:
            how = "ok"
        lines.append(f"`{run.statement}`: {how}, {run.seconds:.1f} s")
    return lines


@probe("opencv", _summarize)
def gather(ctx: Context) -> OpencvFacts:
    with concurrent.futures.ThreadPoolExecutor(len(ORDERS)) as pool:
        results = list(pool.map(lambda order: _run(ctx, order), ORDERS))
    runs = tuple(run for run, _ in results)
    modules: dict[str, Module] = {}
    cv2_protobuf: list[str] = []
    mapped: set[str] = set()
    for _, tags in results:
        for t in tags:
            if t[0] == "cv2-protobuf" and t[1] not in cv2_protobuf:
                cv2_protobuf.append(t[1])
            elif t[0] == "mapped":
                mapped.add(t[1])
            elif t[0] == "module" and t[1] not in modules:
                file, version = [*t, "", ""][2:4]
                modules[t[1]] = Module(t[1], file, version or None, _origin(t[1], file))
    import_errors: dict[str, str] = {}
    for run in runs:
        for name, why in run.import_errors.items():
            if name not in modules:
                import_errors.setdefault(name, why)
    return OpencvFacts(
        python=ctx.python,
        runs=runs,
        modules=modules,
        import_errors=import_errors,
        cv2_protobuf=tuple(cv2_protobuf),
        mapped=tuple(sorted(mapped)),
    )
