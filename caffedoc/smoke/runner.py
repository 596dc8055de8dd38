"""Run the smoke step in the interpreter under test and read what it reported.

The step runs in a child process (`child.py`, run by path) so that a segfault,
an abort inside Caffe or a hang becomes a diagnosed failure of the step, never a
crash or hang of caffedoc.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from caffedoc import host
from caffedoc.errors import CaffedocError
from caffedoc.findings import Finding
from caffedoc.smoke.events import ChildReport

CHILD = Path(__file__).with_name("child.py")
MODES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class SmokeResult:
    passed: bool
    mode: str  # "cpu" or "gpu" once the child chose; the requested mode otherwise
    device: str | None  # "cpu", "gpu:0"…
    python: Path
    seconds: float  # wall time of the child, interpreter start and imports included
    loss_start: float | None = None
    loss_end: float | None = None
    iterations: int | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    stage: str | None = None  # the stage reached (where it failed, when it failed)
    why_device: str | None = None
    versions: dict = field(default_factory=dict)
    finding: Finding | None = None
    user: str | None = None  # whom the child ran as, when not as caffedoc itself

    def to_json(self) -> dict:
        return {
            "passed": self.passed,
            "mode": self.mode,
            "device": self.device,
            "loss_start": self.loss_start,
            "loss_end": self.loss_end,
            "test_accuracy": self.test_accuracy,
            "seconds": round(self.seconds, 3),
            "user": self.user,
            "finding": self.finding.to_json() if self.finding else None,
        }


def run_smoke(
    python: Path,
    *,
    mode: str = "auto",
    gpu: int | None = None,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
) -> SmokeResult:
    """Train a tiny MemoryData net with `python`'s pycaffe; pass, or a diagnosed failure.

    mode: "auto" (a GPU when one is usable), "cpu" or "gpu"; `gpu` picks the device
    and implies "gpu". Raises CaffedocError only for bad arguments.
    """
    mode, device = _check_mode(mode, gpu)
    if os.sep in str(python):  # the child runs in a scratch folder: no relative paths
        python = Path(os.path.abspath(python))
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("GLOG_minloglevel", "1")  # Caffe's warnings and errors, not its chatter
    # Under sudo, a user's interpreter runs as that user (its code is theirs), in a scratch
    # folder of theirs; the child goes as source, so it needs no read access to caffedoc.
    owner = host.code_owner(python)
    source = CHILD.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="caffedoc-smoke-") as work:
        if owner is not None:
            os.chown(work, owner.pw_uid, owner.pw_gid)
        args = (work, mode, str(device))
        res = host.run(
            [python, "-c", source, *args], timeout=timeout, env=child_env, cwd=work, user=owner
        )
    res = dataclasses.replace(res, argv=(str(python), str(CHILD), *args))  # the script by name
    report = ChildReport.parse(res)
    chosen = report.last("device") or {}
    train = report.last("train") or {}
    test = report.last("test") or {}
    passed = res.ok and report.passed
    finding = None
    if not passed:
        from caffedoc.smoke.diagnosis import explain_failure

        finding = explain_failure(res, report, python)
    return SmokeResult(
        passed=passed,
        mode=chosen.get("mode", mode),
        device=chosen.get("device"),
        python=python,
        seconds=res.seconds,
        loss_start=train.get("loss_start"),
        loss_end=train.get("loss_end"),
        iterations=train.get("iterations"),
        test_accuracy=test.get("accuracy"),
        test_loss=test.get("loss"),
        stage=report.stage,
        why_device=chosen.get("why"),
        versions={k: v for k, v in (report.last("versions") or {}).items() if k != "event"},
        finding=finding,
        user=owner.pw_name if owner is not None else None,
    )


def _check_mode(mode: str, gpu: int | None) -> tuple[str, int]:
    if mode not in MODES:
        raise CaffedocError(f"smoke mode {mode!r}: expected one of {', '.join(MODES)}")
    if gpu is None:
        return mode, 0
    if mode == "cpu":
        raise CaffedocError("choose either the CPU or a GPU, not both")
    if gpu < 0:
        raise CaffedocError(f"GPU {gpu}: a device number is 0 or more")
    return "gpu", gpu
