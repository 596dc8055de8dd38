"""`caffedoc check` at the cost of one import: both import orders forked from one parent
that did the imports they share, and each way that parent can go wrong (a numpy that
aborts, hangs or starts a thread, a user's BLAS threads) met with a real interpreter and
real modules. The speed itself is measured by benchmarks/check_vs_import.py, not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import psutil
import pytest

from caffedoc.check import run_check
from caffedoc.probes import Context
from tests.conftest import caffedoc
from tests.fixtures.caffe_build import clean_env
from tests.fixtures.native import Interpreter as Native
from tests.fixtures.native import crash_module, module_dir

SHARED = ["numpy", "six", "scipy.ndimage", "skimage.io", "skimage.transform"]


def venv_with_numpy(where: Path, numpy_init: str) -> Path:
    """A real venv whose numpy package is `numpy_init`, and a caffe and cv2 that import it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", where], check=True)
    python = where / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "numpy").mkdir()
    (site / "numpy" / "__init__.py").write_text(numpy_init)
    (site / "caffe.py").write_text("import numpy\n")
    (site / "cv2.py").write_text("import numpy\n")
    return python


def alive(pid: int) -> bool:
    """Running still: a killed process waiting for its reaper is not."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def check_json(python: Path, env: dict[str, str], *flags: str) -> tuple[dict, int]:
    res = caffedoc("check", "--json", *flags, "--python", str(python), env=env)
    assert res.returncode in (0, 1), res.stderr
    assert "Traceback" not in res.stderr
    return json.loads(res.stdout), res.returncode


def test_a_numpy_that_aborts_falls_back_to_plain_children(tmp_path):
    """The parent dies in `import numpy`: each order then runs as before, in a fresh
    interpreter, and the crash is still the caffe area's finding."""
    python = venv_with_numpy(tmp_path / "venv", "import os\nos.abort()\n")

    report, code = check_json(python, clean_env())

    runs = report["facts"]["opencv"]["runs"]
    for run in runs:
        assert run["shared"] == [], run
        assert "the shared imports ended in `import numpy`" in run["fallback"], run
        assert "SIGABRT" in run["fallback"]
        assert run["signal"] == "SIGABRT" and run["died_in"] == run["order"][0], run
    assert report["facts"]["caffe"]["import_attempt"]["crashed"] == "killed by SIGABRT"
    assert "caffe-import-crash" in [f["id"] for f in report["findings"]]
    assert code == 1


def test_a_numpy_that_hangs_is_bounded_and_still_a_finding(tmp_path):
    """The parent hangs in `import numpy`: it is killed after the children's deadline plus
    its grace, the orders run plain (and hang too, bounded the same), and the areas say
    so; every process it started is gone."""
    pids = tmp_path / "pids"
    init = (
        f"import os, time\nopen({str(pids)!r}, 'a').write('%d\\n' % os.getpid())\ntime.sleep(600)\n"
    )
    python = venv_with_numpy(tmp_path / "venv", init)
    ctx = Context(python=python, env=clean_env(), import_timeout=3)

    start = time.monotonic()
    report = run_check(ctx)
    took = time.monotonic() - start

    assert took < 3 + 5 + 3 + 6, took  # the parent's limit, then the plain children's
    runs = report.facts.get("opencv").runs
    for run in runs:
        assert "the shared imports ended in `import numpy`: did not finish within 8 s" in (
            run.fallback
        )
        assert run.timed_out and run.died_in == run.order[0], run
    assert report.facts.get("caffe").import_attempt.crashed == "did not finish within 3 s"
    assert "opencv" in report.not_examined
    said = report.facts.failures["opencv"]
    assert "`import caffe; import cv2`: hung in `import caffe`" in said, said
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 3  # the parent, then one plain child per order
    assert not [p for p in started if alive(p)], started


def test_a_thread_started_by_the_shared_imports_means_no_fork(tmp_path):
    """A fork copies only the thread that calls it: a numpy that leaves a thread running
    is not forked from; the orders run plain and still import."""
    init = (
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    )
    python = venv_with_numpy(tmp_path / "venv", init)

    report, _ = check_json(python, clean_env())

    runs = report["facts"]["opencv"]["runs"]
    assert [r["imported"] for r in runs] == [["caffe", "cv2"], ["cv2", "caffe"]]
    for run in runs:
        assert run["fallback"] == "2 threads run after the shared imports: a fork would copy one"
        assert run["returncode"] == 0


@pytest.mark.caffe
def test_a_users_blas_threads_do_not_stop_the_fork(built_caffe):
    """OpenBLAS starts its threads when numpy loads: the forking parent runs one, whatever
    the user asked for (here 4), so it forks after the real numpy, scipy and skimage."""
    env = {**built_caffe.env, "OPENBLAS_NUM_THREADS": "4", "OMP_NUM_THREADS": "4"}
    threads = subprocess.run(
        [built_caffe.python, "-c", "import numpy, os; print(len(os.listdir('/proc/self/task')))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(threads.stdout) > 1  # the situation is real: numpy alone starts threads

    report, _ = check_json(built_caffe.python, env)

    runs = report["facts"]["opencv"]["runs"]
    assert [r["shared"] for r in runs] == [SHARED, SHARED]
    assert [r["fallback"] for r in runs] == [None, None]
    assert [r["imported"] for r in runs] == [["caffe", "cv2"], ["cv2", "caffe"]]


@pytest.mark.caffe
def test_a_crash_at_exit_after_the_fork_is_still_caught(built_caffe, tmp_path):
    """The real Caffe, forked after the real numpy, scipy and skimage, beside a cv2 that
    segfaults at exit: each forked child exits as the interpreter does, so both orders
    show the crash."""
    include = Path(sysconfig.get_paths()["include"])
    here = Native(Path(sys.executable), include, sysconfig.get_config_var("EXT_SUFFIX"))
    mods = module_dir(tmp_path / "mods", crash_module(here, "cv2"))
    env = {**built_caffe.env, "PYTHONPATH": str(mods)}

    report, code = check_json(built_caffe.python, env)

    runs = report["facts"]["opencv"]["runs"]
    assert [r["shared"] for r in runs] == [SHARED, SHARED]
    assert all(r["finished"] and r["signal"] == "SIGSEGV" for r in runs), runs
    crashes = [f for f in report["findings"] if f["id"] == "opencv-runtime-crash"]
    evidence = "\n".join(e for f in crashes for e in f["evidence"])
    assert len(crashes) == 2 and "crashed at exit (SIGSEGV)" in evidence, report["findings"]
    assert report["facts"]["caffe"]["import_attempt"]["ok"] is True
    assert code == 1


def test_forked_children_leave_nothing_behind(tmp_path, target_python):
    """A forked child that hangs is killed at its deadline with its process group."""
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "caffe.py").write_text("VALUE = 1\n")
    (mods / "cv2.py").write_text(
        "import os, subprocess, time\n"
        "sleeper = subprocess.Popen(['sleep', '600'])\n"
        f"open({str(tmp_path / 'pids')!r}, 'a').write('%d %d\\n' % (os.getpid(), sleeper.pid))\n"
        "time.sleep(600)\n"
    )
    env = {**clean_env(), "PYTHONPATH": str(mods)}
    ctx = Context(python=target_python.python, env=env, import_timeout=3)

    start = time.monotonic()
    report = run_check(ctx)
    took = time.monotonic() - start

    assert took < 3 + 5 + 2, took
    runs = report.facts.get("opencv").runs
    assert [r.fallback for r in runs] == [None, None]
    assert all(r.timed_out and r.died_in == "cv2" for r in runs), runs
    assert "hung in `import cv2`" in report.facts.failures["opencv"]
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 4  # each order's child and the sleep it started
    assert not [p for p in pids if alive(p)], pids


HANGING = ("nvidia-smi", "ldconfig", "dpkg", "dpkg-query", "pip", "pip3", "protoc", "nvcc")
HANGING += ("readelf", "c++", "cmake")


def test_every_tool_hanging_costs_one_timeout(tmp_path, target_python):
    """Every tool a check runs hangs on PATH (and a python3.99 that is a real program):
    the check still ends within one tool timeout (10 s) plus its own time, in parallel,
    each hung tool named where it was needed, and none of them is left running."""
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for tool in HANGING:
        (fakes / tool).write_text(f"#!/bin/sh\necho $$ >> {tmp_path / 'pids'}\nexec sleep 100000\n")
        (fakes / tool).chmod(0o755)
    (tmp_path / "hang.c").write_text("#include <unistd.h>\nint main(void) { for (;;) pause(); }\n")
    subprocess.run(["gcc", "-o", fakes / "python3.99", tmp_path / "hang.c"], check=True)
    (fakes / "pip3.99").write_text(f"#!{fakes / 'python3.99'}\n")
    (fakes / "pip3.99").chmod(0o755)
    env = {**clean_env(), "PATH": f"{fakes}:{os.environ['PATH']}"}

    start = time.monotonic()
    res = caffedoc("check", "--json", "--python", str(target_python.python), env=env)
    took = time.monotonic() - start

    assert took < 15, took
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    report = json.loads(res.stdout)
    driver = [f for f in report["findings"] if f["id"] == "gpu-driver"]
    assert driver and "nvidia-smi" in driver[0]["evidence"][0], report["findings"]
    assert "did not finish within" in driver[0]["evidence"][0]
    cuda = report["facts"]["cuda"]
    assert f"`{fakes / 'ldconfig'} -p" in cuda["cache_error"], cuda["cache_error"]
    assert "did not finish within 10 s" in cuda["cache_error"]
    assert report["facts"]["protobuf"]["dpkg"], "dpkg's versions come from its database"
    interpreters = json.dumps(report["facts"]["python"])
    assert f"{fakes / 'python3.99'} -c <caffedoc/probes/scripts/introspect.py>` did not" in (
        interpreters
    )
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert pids and not [p for p in pids if alive(p)], pids


# ---------------------------------------------------------------- the head start


def counting_venv(where: Path) -> tuple[Path, Path]:
    """A venv whose numpy writes its process id to a file: one line per interpreter that
    imported it (the forking parent, or each plain child)."""
    pids = where / "pids"
    init = f"import os\nopen({str(pids)!r}, 'a').write('%d\\n' % os.getpid())\n"
    python = venv_with_numpy(where / "venv", init)
    return python, pids


@pytest.mark.parametrize(
    ("args", "options"),
    [
        (["check"], {}),
        (["check", "--json", "--python", "/p", "--strict"], {"--python": "/p"}),
        (["check", "--strict", "--no-gpu", "--python", "/p"], {"--python": "/p"}),
        (
            ["check", "--python=/p", "--caffe", "/c", "--junit=j.xml"],
            {"--python": "/p", "--caffe": "/c", "--junit": "j.xml"},
        ),
        (["check", "--require", "recipe=debian12-cpu"], None),
        (["check", "--help"], None),
        (["check", "--pyth", "/p"], None),
        (["check", "--python"], None),
        (["check", "extra"], None),
        (["explain", "log"], None),
        ([], None),
    ],
)
def test_only_a_plain_check_command_line_gets_a_head_start(args, options):
    from caffedoc.head_start import check_options

    assert check_options(args) == options


@pytest.mark.parametrize("flags", [(), ("--no-gpu",)])
def test_the_check_takes_over_the_children_its_head_start_began(tmp_path, flags):
    """`caffedoc check` as a user runs it: the import children start before the command
    line loads, and the check uses them: one forking parent imported numpy, not two.
    --no-gpu is part of the context both build, so it changes nothing of that."""
    python, pids = counting_venv(tmp_path)
    report, _code = check_json(python, clean_env(), *flags)
    assert len(pids.read_text().split()) == 1
    runs = report["facts"]["opencv"]["runs"]
    assert [r["order"] for r in runs] == [["caffe", "cv2"], ["cv2", "caffe"]]
    assert all(r["finished"] and r["imported"] == r["order"] and r["shared"] for r in runs), runs


def test_a_head_start_for_another_context_is_not_taken(tmp_path, monkeypatch):
    """In one process: the head start's environment differs from the check's, so the check
    starts its own children (two parents imported numpy) and reports its own run; a line
    the head start cannot read starts nothing."""
    from caffedoc import head_start, probes
    from caffedoc.options import check_context

    python, pids = counting_venv(tmp_path)
    env = clean_env()
    monkeypatch.setattr(os, "environ", {**env, "CAFFEDOC_TEST_MARK": "head"})
    head_start.begin(["check", "--require", "recipe=x", "--python", str(python)])
    assert probes._head_start is None
    head_start.begin(["check", "--python", str(python)])
    assert probes._head_start is not None

    ctx = check_context(python, None, env)  # not the head start's environment
    report = run_check(ctx)

    assert probes._head_start is None
    runs = report.facts.get("opencv").runs
    assert all(run.finished and run.imported == run.order for run in runs), runs
    deadline = time.monotonic() + 20
    while len(pids.read_text().split()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the head start's parent runs on, to its own end
    assert len(pids.read_text().split()) == 2
