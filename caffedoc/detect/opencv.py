"""Rules about importing cv2 and caffe into one process.

The import-order children say how each order ended; a second registration of
caffe.proto has its own unmistakable message and its own fix (static libprotobuf),
every other crash is an OpenCV clash. A module that merely does not import is not
judged here: the caffe and python areas explain why.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from caffedoc import host
from caffedoc.detect import detects
from caffedoc.findings import Hit, Severity
from caffedoc.fix.steps import RunCommand
from caffedoc.probes import Facts
from caffedoc.probes.opencv import ImportRun, OpencvFacts
from caffedoc.remedy import FixContext, Remedy

CLASH = re.compile(r"File already exists in database: (\S+)")


def _opencv(facts: Facts) -> OpencvFacts | None:
    return facts.get("opencv")


def _clash(run: ImportRun) -> str | None:
    for line in run.stderr_tail:
        if m := CLASH.search(line):
            return m.group(1)
    return None


def _how(run: ImportRun) -> str:
    if run.crashed_at_exit:
        return f"`{run.statement}` imported both, then crashed at exit ({run.signal})"
    return f"`{run.statement}` died in `import {run.died_in or '?'}` ({run.signal})"


def _stderr(run: ImportRun, limit: int = 4) -> list[str]:
    lines = list(run.stderr_tail)
    return [f"stderr: {ln.strip()}" for ln in lines[-limit:]]


def _loaded(o: OpencvFacts, needle: str) -> list[str]:
    return [p for p in o.mapped if needle in p]


def rebuild_static(hit: Hit, ctx: FixContext | None) -> Remedy:
    """Rebuild with a private static libprotobuf for the interpreter the check looked at.

    The build's own dry run names the prefix it installs into and the .pth that pins
    the interpreter: both are preserved, so undo brings back the previous Caffe.
    """
    if ctx is None:
        return Remedy(hit.fix)
    build = (
        sys.executable,
        "-m",
        "caffedoc",
        "build",
        "--static-protobuf",
        "--python",
        str(ctx.check.python),
    )
    dry = host.run([*build, "--dry-run", "--json"], timeout=300, env=ctx.env)
    try:
        plan = json.loads(dry.stdout)
        prefix, pin = Path(plan["prefix"]), Path(plan["pin"])
    except (ValueError, KeyError, TypeError):
        why = (dry.stderr.strip().splitlines() or [dry.describe()])[-1]
        return Remedy(
            hit.fix, why_manual=f"`caffedoc build --static-protobuf` cannot plan here: {why}"
        )
    step = RunCommand(
        build,
        preserve=(prefix, pin),
        reverse=f"restore {prefix} and {pin} as they were",
        timeout=3600,
    )
    return Remedy(hit.fix, (step,))


@detects("protobuf-descriptor-clash", remedy=rebuild_static)
def descriptor_clash(facts: Facts) -> Iterator[Hit]:
    o = _opencv(facts)
    if o is None:
        return
    for run in o.runs:
        proto = None if run.skipped else _clash(run)
        if proto is None:
            continue
        second = run.died_in or run.order[-1]
        first = [m for m in run.order if m != second]
        said = [f"stderr: {ln.strip()}" for ln in run.stderr_tail if "libprotobuf" in ln]
        evidence = [_how(run), *(said or _stderr(run, 2))]
        evidence += [f"loaded with both imported (other order): {p}" for p in o.mapped]
        for name in run.order:
            if name in o.modules:
                m = o.modules[name]
                evidence.append(f"{name}: {m.file} ({m.origin})")
        fix = (
            f"{second} registers {proto} a second time in the shared libprotobuf's "
            f"descriptor pool ({', '.join(first)} registered it first). Link libprotobuf "
            "statically into Caffe with its symbols hidden so Caffe keeps a private pool: "
            "`caffedoc build --static-protobuf` (by hand: -Wl,-Bstatic -lprotobuf -Wl,-Bdynamic "
            "with a libprotobuf.a built with -fPIC, plus -Wl,--exclude-libs,ALL). Or drop the "
            f"other module that carries {proto}: for OpenCV, opencv-python-headless (its "
            "protobuf is built in) or a build without the dnn module."
        )
        yield Hit(Severity.ERROR, tuple(evidence), fix, detail=f"`{run.statement}` aborts")


@detects("opencv-runtime-crash")
def runtime_crash(facts: Facts) -> Iterator[Hit]:
    o = _opencv(facts)
    if o is None:
        return
    cores = _loaded(o, "libopencv_core")
    for run in o.runs:
        # A pair not tried (cv2 not installed) leaves caffe's own crash to caffe-import-crash.
        # A child that never ran its script is the interpreter's failure (probe-failed).
        if run.skipped or not run.started or not run.crashed or _clash(run):
            continue
        evidence = [_how(run), *_stderr(run)]
        if len({p.rsplit("/", 1)[0] for p in cores}) > 1:
            evidence.append("two OpenCV builds in one process: " + ", ".join(cores))
        if "cv2" in o.modules:
            evidence.append(f"cv2: {o.modules['cv2'].file} ({o.modules['cv2'].origin})")
        yield Hit(Severity.ERROR, tuple(evidence), detail=f"`{run.statement}`")
    # An import that works alone but fails after the other module: an order-dependent clash.
    failing = {n: r for r in o.runs for n in r.import_errors if n in o.modules}
    for name, run in failing.items():
        yield Hit(
            Severity.WARNING,
            (
                f"`{run.statement}`: {name} fails to import: {run.import_errors[name]}",
                f"in the other order {name} imports ({o.modules[name].file})",
            ),
            detail=f"{name} fails after the other import",
        )
