"""The real imports, in two children of `scripts/try_import.py` under the target
interpreter: `import caffe; import cv2` (whose caffe steps are the caffe area's
import attempt) and the reverse (the opencv area reads both). Each child reports
its progress line by line, so whatever it printed before it died says which
import killed it.

Both orders at the cost of one import: one process of the target imports what
both share (numpy, scipy, scikit-image: most of `import caffe`'s time; never
protobuf, OpenCV or caffe) and forks the two children, each still a process of
its own with its own deadline, so an order-dependent abort or a crash at exit
still shows. Its BLAS runs one thread, so no thread is copied by the fork. When
the shared imports themselves fail (a numpy that crashes, hangs or raises, a
thread already running) the two orders run as plain children instead, as before.
"""

from __future__ import annotations

import concurrent.futures
import json
from dataclasses import dataclass
from typing import Any

from caffedoc import host
from caffedoc.probes import Context, Session, probe
from caffedoc.probes.interpreters import SCRIPTS, ended, run_python

MARK = "@@caffedoc "


@dataclass(frozen=True)
class ImportAttempt:
    """`import caffe` in a fresh child of the target interpreter."""

    ok: bool
    ran: str  # how the child ended, in words
    error_type: str | None = None
    error: str | None = None
    frames: tuple[str, ...] = ()
    caffe: str | None = None  # caffe.__file__
    extension: str | None = None  # caffe._caffe.__file__
    pb2: str | None = None  # caffe.proto.caffe_pb2.__file__ once loaded
    pb2_load: dict[str, Any] | None = None  # the separate caffe_pb2 load, when done
    protobuf: dict[str, Any] | None = None  # version, implementation, file
    numpy: str | None = None
    stderr_tail: str = ""
    crashed: str | None = None  # the signal, a timeout


@dataclass(frozen=True)
class ImportChild:
    """One run of `scripts/try_import.py`: its steps in order, and how it ended."""

    order: tuple[str, ...]
    steps: tuple[tuple[str, dict[str, Any]], ...]  # (step, what it reported), in order
    result: host.Result
    ended: str  # how the child ended, its script named rather than quoted
    shared: tuple[str, ...] = ()  # imported by its parent before the fork
    fallback: str | None = None  # why it ran as a plain child, not forked

    def step(self, name: str) -> dict[str, Any] | None:
        return next((data for step, data in self.steps if step == name), None)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [data for step, data in self.steps if step == name]

    @property
    def caffe_stderr(self) -> str:
        """What the child printed on stderr up to the end of its caffe steps."""
        return self.result.stderr.split(MARK + "caffe-done", 1)[0]

    @property
    def stderr(self) -> str:
        return self.result.stderr.replace(MARK + "caffe-done\n", "")


# `import caffe; import cv2` (which is also the caffe probe's `import caffe`) and the
# reverse: each imports caffe, the slowest thing a check does, so they start first.
IMPORT_ORDERS: tuple[tuple[str, ...], ...] = (("caffe", "cv2"), ("cv2", "caffe"))


# Importing numpy starts a BLAS thread per core; the two import children run side by side
# and compute nothing, so one thread each halves their CPU. A user's own setting wins in a
# plain child; the forking parent always runs one (a thread is not copied by a fork).
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Beyond the children's own deadline, how long the forking parent may take to kill a hung
# child and report.
FORK_GRACE = 5.0


def _steps(stdout: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    steps = []
    for line in stdout.splitlines():
        if line.startswith(MARK):
            try:
                data = json.loads(line[len(MARK) :])
            except ValueError:
                continue
            if isinstance(data, dict) and "step" in data:
                steps.append((data.pop("step"), data))
    return tuple(steps)


def _child(order: tuple[str, ...], res: host.Result, script: str, **how: Any) -> ImportChild:
    return ImportChild(order, _steps(res.stdout), res, ended(res, script, "try_import.py"), **how)


def _plain(ctx: Context, order: tuple[str, ...], why: str | None) -> ImportChild:
    script = (SCRIPTS / "try_import.py").read_text(encoding="utf-8")
    args = ["-c", script, *order]
    res = run_python(ctx, str(ctx.python), args, {**ONE_THREAD, **ctx.env}, ctx.import_timeout)
    return _child(order, res, script, fallback=why)


def _forked(ctx: Context) -> tuple[ImportChildren, str | None]:
    """Both orders forked from one parent that did the shared imports: the children, or
    none and why (the parent's own run, when it never ran the script at all)."""
    script = (SCRIPTS / "try_import.py").read_text(encoding="utf-8")
    orders = [",".join(order) for order in IMPORT_ORDERS]
    args = ["-c", script, "--fork", f"{ctx.import_timeout:g}", *orders]
    env = {**ctx.env, **ONE_THREAD}
    res = run_python(ctx, str(ctx.python), args, env, ctx.import_timeout + FORK_GRACE)
    steps = _steps(res.stdout)
    reports = {tuple(d["order"]): d for step, d in steps if step == "child"}
    if all(order in reports for order in IMPORT_ORDERS):
        shared = next((tuple(d["modules"]) for step, d in steps if step == "shared"), ())
        return tuple(
            _child(order, _reported(res, order, reports[order]), script, shared=shared)
            for order in IMPORT_ORDERS
        ), None
    if not steps:  # the interpreter never ran the script: plain children would not either
        return tuple(_child(order, res, script) for order in IMPORT_ORDERS), None
    said = next((d.get("why") for step, d in steps if step == "fallback"), None)
    if said is None:
        started = [d["module"] for step, d in steps if step == "preload"]
        doing = f" in `import {started[-1]}`" if started else ""
        said = f"the shared imports ended{doing}: {res.ending()}"
    return (), said


def _reported(parent: host.Result, order: tuple[str, ...], d: dict[str, Any]) -> host.Result:
    """A forked child's ending as if run alone (`python -c <script> caffe cv2`): what its
    parent printed before the fork (a sitecustomize, a warning from numpy) is its past."""
    before = "".join(
        line for line in parent.stdout.splitlines(keepends=True) if not line.startswith(MARK)
    )
    return host.Result(
        argv=(*parent.argv[:3], *order),
        returncode=d.get("returncode"),
        stdout=before + d.get("stdout", ""),
        stderr=parent.stderr + d.get("stderr", ""),
        seconds=float(d.get("seconds") or 0.0),
        timed_out=bool(d.get("timed_out")),
        stdout_dropped=parent.stdout_dropped + int(d.get("stdout_dropped") or 0),
        stderr_dropped=parent.stderr_dropped + int(d.get("stderr_dropped") or 0),
        user=parent.user,
    )


def _attempt(child: ImportChild, timeout: float) -> ImportAttempt:
    res = child.result
    crashed = None
    # The protobuf step ends the caffe steps: a crash after it belongs to a later import.
    if child.step("protobuf") is None:
        if res.timed_out:
            crashed = f"did not finish within {timeout:.0f} s"
        elif res.signal_name:
            crashed = f"killed by {res.signal_name}"
        elif res.error:
            crashed = f"could not start: {res.error}"
    imp = child.step("import")
    stderr_tail = "\n".join(child.caffe_stderr.strip().splitlines()[-6:])
    if imp is None:
        return ImportAttempt(
            ok=False,
            ran=child.ended,
            error=crashed or "the import child printed no result",
            stderr_tail=stderr_tail,
            crashed=crashed or child.ended,
        )
    return ImportAttempt(
        ok=bool(imp.get("ok")),
        ran=child.ended,
        error_type=imp.get("error_type"),
        error=imp.get("error"),
        frames=tuple(imp.get("frames", ())),
        caffe=imp.get("caffe"),
        extension=imp.get("extension"),
        pb2=imp.get("pb2"),
        pb2_load=child.step("pb2"),
        protobuf=child.step("protobuf"),
        numpy=imp.get("numpy"),
        stderr_tail=stderr_tail,
        crashed=crashed,
    )


def import_attempt(children: ImportChildren, timeout: float) -> ImportAttempt:
    """`import caffe` under the target interpreter: the first steps of the child that
    then imports cv2 (`import caffe; import cv2`)."""
    return _attempt(children[0], timeout)


ImportChildren = tuple[ImportChild, ...]  # one per IMPORT_ORDERS, in that order


@probe("imports", area=False, subject="the import children")
def imports(session: Session) -> ImportChildren:
    """Both children, forked from one parent (else side by side); nothing waits for them
    to start: they are the slowest part of a check (each imports caffe)."""
    ctx = session.ctx
    children, fallback = _forked(ctx)
    if children:
        return children
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(IMPORT_ORDERS)) as pool:
        return tuple(pool.map(lambda order: _plain(ctx, order, fallback), IMPORT_ORDERS))
