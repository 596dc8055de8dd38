"""caffedoc smoke against the real Caffe, and against installs broken on purpose.

Every test runs the real child step in a real interpreter: the Caffe the project
builds (`built_caffe`), copies of its pycaffe broken the way installs break (an
unresolvable library, a protobuf runtime too old for its caffe_pb2.py), a hang and
a crash; the runner must turn each into a diagnosed failure, never a hang.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from caffedoc import host
from caffedoc.layout import LAST_BUILD, remember_build
from caffedoc.smoke import run_smoke
from caffedoc.smoke.diagnosis import explain_failure
from caffedoc.smoke.events import TAG, ChildReport
from tests.conftest import caffedoc
from tests.fixtures.caffe_build import overlay_venv

JSON_KEYS = {
    "passed",
    "mode",
    "device",
    "loss_start",
    "loss_end",
    "test_accuracy",
    "seconds",
    "user",
    "finding",
}


def pycaffe_dir(built) -> Path:
    """The caffe package the built interpreter imports."""
    res = host.run(
        [built.python, "-c", "import caffe, os; print(os.path.dirname(caffe.__file__))"],
        env=built.env,
        timeout=60,
    )
    assert res.ok, res.output
    return Path(res.stdout.strip())


def with_path(env: dict, *first: Path) -> dict:
    """`env` with `first` ahead of everything on PYTHONPATH."""
    rest = [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
    return {**env, "PYTHONPATH": os.pathsep.join([*map(str, first), *rest])}


def broken_copy(built, tmp_path: Path) -> Path:
    """A copy of the built pycaffe package, to break; returns the folder to put on the path."""
    root = tmp_path / "site"
    shutil.copytree(pycaffe_dir(built), root / "caffe")
    return root


def unpinned(built, tmp_path: Path) -> Path:
    """The built interpreter's packages without its pin (which outranks PYTHONPATH)."""
    return overlay_venv(built.python, tmp_path / "venv")


@pytest.mark.caffe
def test_cpu_step_trains_and_proves_the_snapshot(built_caffe):
    result = run_smoke(built_caffe.python, mode="cpu", env=built_caffe.env)
    assert result.passed, result.finding
    assert (result.mode, result.device) == ("cpu", "cpu")
    assert result.loss_end < result.loss_start / 3
    assert result.test_accuracy >= 0.8
    assert result.finding is None
    assert result.stage == "snapshot"
    print(f"CPU smoke wall time, interpreter start and import included: {result.seconds:.2f} s")


@pytest.mark.caffe
def test_cli_json_auto_mode_picks_the_cpu_of_a_cpu_only_build(built_caffe):
    res = caffedoc("smoke", "--python", str(built_caffe.python), "--json", env=built_caffe.env)
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert set(out) == JSON_KEYS
    assert out["passed"] is True
    assert (out["mode"], out["device"]) == ("cpu", "cpu")
    assert out["loss_end"] < out["loss_start"]


@pytest.mark.caffe
def test_cli_text_says_where_it_ran_and_what_it_learned(built_caffe):
    res = caffedoc("smoke", "--python", str(built_caffe.python), "--cpu", env=built_caffe.env)
    assert res.returncode == 0, res.stdout + res.stderr
    first = res.stdout.splitlines()[0]
    assert first.startswith("smoke: passed on cpu (asked for the CPU)")
    assert "train: loss" in res.stdout and "accuracy" in res.stdout


@pytest.mark.caffe
def test_gpu_asked_of_a_cpu_only_build_is_a_finding_not_an_abort(built_caffe):
    res = caffedoc(
        "smoke", "--python", str(built_caffe.python), "--gpu", "0", "--json", env=built_caffe.env
    )
    assert res.returncode == 1, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["passed"] is False and out["mode"] == "gpu"
    assert out["finding"]["id"] == "smoke-failed"
    assert any("CPU_ONLY" in e for e in out["finding"]["evidence"])


@pytest.mark.caffe
def test_unresolvable_caffe_library(built_caffe, tmp_path):
    site = broken_copy(built_caffe, tmp_path)
    so = site / "caffe" / "_caffe.so"
    needed = subprocess.run(
        ["patchelf", "--print-needed", so], capture_output=True, text=True, check=True
    ).stdout.split()
    libcaffe = next(n for n in needed if n.startswith("libcaffe"))
    subprocess.run(
        ["patchelf", "--replace-needed", libcaffe, "libcaffe-not-there.so.1", so], check=True
    )
    python = unpinned(built_caffe, tmp_path)
    result = run_smoke(python, env=with_path(built_caffe.env, site), timeout=60)
    assert not result.passed
    assert result.stage == "import"
    assert result.finding.id == "caffe-library-missing"
    assert any("libcaffe-not-there.so.1" in e for e in result.finding.evidence)


@pytest.fixture(scope="session")
def protobuf_3_19(built_caffe, tmp_path_factory) -> Path:
    """protobuf 3.19.6 installed for the built interpreter, in a folder of its own."""
    target = tmp_path_factory.mktemp("protobuf-3.19.6")
    res = host.run(
        [built_caffe.python, "-m", "pip", "install", "-q", "--target", target, "protobuf==3.19.6"],
        env=built_caffe.env,
        timeout=300,
    )
    assert res.ok, res.output
    return target


@pytest.mark.caffe
def test_protobuf_runtime_too_old_for_caffe_pb2(built_caffe, protobuf_3_19, tmp_path):
    env = with_path(built_caffe.env, protobuf_3_19, pycaffe_dir(built_caffe).parent)
    result = run_smoke(unpinned(built_caffe, tmp_path), env=env, timeout=60)
    assert not result.passed
    assert result.finding.id == "protobuf-version-drift"
    assert any("cannot import name 'builder'" in e for e in result.finding.evidence)


@pytest.mark.caffe
def test_hung_import_is_killed_and_reported(built_caffe, tmp_path):
    site = broken_copy(built_caffe, tmp_path)
    init = site / "caffe" / "__init__.py"
    init.write_text("import time\ntime.sleep(600)\n" + init.read_text())
    python = unpinned(built_caffe, tmp_path)
    result = run_smoke(python, env=with_path(built_caffe.env, site), timeout=5)
    assert not result.passed
    assert result.seconds < 30
    assert result.finding.id == "smoke-failed"
    assert "did not finish in 5 s (stage 'import')" in result.finding.evidence[0]


@pytest.mark.caffe
def test_crash_is_a_finding_with_its_signal(built_caffe, tmp_path):
    site = broken_copy(built_caffe, tmp_path)
    init = site / "caffe" / "__init__.py"
    init.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n" + init.read_text())
    python = unpinned(built_caffe, tmp_path)
    result = run_smoke(python, env=with_path(built_caffe.env, site), timeout=60)
    assert not result.passed
    assert "killed by SIGSEGV in stage 'import'" in result.finding.evidence[0]


def test_missing_numpy_on_python_2_7_is_named(tmp_path):
    """The child runs on Python 2.7 and reports what it lacks there as data."""
    pyenv = shutil.which("pyenv")
    root = (
        subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip()
        if pyenv
        else ""
    )
    python27 = Path(root, "versions", "2.7.18", "bin", "python2.7")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONNOUSERSITE": "1"}
    if not python27.exists() or host.run([python27, "-c", "import numpy"], env=env).ok:
        pytest.skip("needs pyenv's Python 2.7.18 without numpy")
    result = run_smoke(python27, mode="cpu", env=env, timeout=60)
    assert not result.passed
    assert result.stage == "import"
    assert result.finding.id == "pycaffe-deps-missing"
    assert ": numpy, protobuf" in result.finding.title
    assert f"{python27} -m pip install numpy" in result.finding.fix


def test_bad_usage_is_one_line_and_exit_2(tmp_path):
    res = caffedoc("smoke", "--cpu", "--gpu", "0", "--python", sys.executable)
    assert res.returncode == 2
    assert res.stderr.strip() == "caffedoc: error: --cpu and --gpu: choose one"
    res = caffedoc("smoke", "--python", str(tmp_path / "nope"))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr


def child_ended(stage: str, returncode: int, stderr: str = "", fail: dict | None = None):
    """What a child that reached `stage` and ended so would leave behind."""
    lines = [{"event": "stage", "stage": stage}, *([{"event": "fail", **fail}] if fail else [])]
    stdout = "".join(f"{TAG}{json.dumps(e)}\n" for e in lines)
    res = host.Result(("python", "child.py"), returncode, stdout, stderr, 1.0)
    return res, ChildReport.parse(res)


def test_cublas_abort_while_training_is_memorydata_input():
    """A GPU-only failure (no GPU here): the line as BVLC/caffe#2334 reports it."""
    res, report = child_ended(
        "train",
        -6,
        "F0705 13:49:03.000000  4242 math_functions.cu:110] Check failed: status == "
        "CUBLAS_STATUS_SUCCESS (14 vs. 0)  CUBLAS_STATUS_INTERNAL_ERROR\n",
    )
    found = explain_failure(res, report, Path("python"))
    assert found.id == "memorydata-input"
    assert found.evidence[0] == "the smoke step was killed by SIGABRT in stage 'train'"
    assert any("CUBLAS_STATUS_INTERNAL_ERROR" in e for e in found.evidence)
    assert not any("fed by set_input_arrays" in e for e in found.evidence)


def test_stuck_loss_is_memorydata_input():
    fail = {"kind": "stuck-loss", "message": "the training loss is stuck at 87.3365"}
    res, report = child_ended("train", 1, fail=fail)
    found = explain_failure(res, report, Path("python"))
    assert found.id == "memorydata-input"
    assert "the training loss is stuck at 87.3365" in found.evidence


@pytest.mark.caffe
def test_default_interpreter_is_the_one_the_last_build_pinned(built_caffe, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("CAFFEDOC_CACHE_DIR", str(cache))
    remember_build(built_caffe.python, built_caffe.prefix)
    bare = tmp_path / "bin"  # a PATH whose python3 has no caffe: only the record can lead there
    bare.mkdir()
    (bare / "python3").symlink_to(sys.executable)
    env = {**built_caffe.env, "CAFFEDOC_CACHE_DIR": str(cache), "PATH": f"{bare}:/usr/bin:/bin"}
    res = caffedoc("smoke", "--cpu", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"at {built_caffe.python}" in res.stdout
    (cache / LAST_BUILD).unlink()
    res = caffedoc("smoke", "--cpu", env=env)
    assert res.returncode == 1
    assert f"python at {bare / 'python3'}" in res.stdout
