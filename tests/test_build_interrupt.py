"""A real build interrupted mid-compile (SIGINT, then SIGTERM) leaves nothing half-installed
and resumes where it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from caffedoc.build import paths
from caffedoc.layout import BuildRecord
from caffedoc.recipes import load_all
from tests.conftest import REPO, caffedoc
from tests.fixtures.caffe_build import clean_env, overlay_venv

pytestmark = pytest.mark.caffe
RECIPE = next(r for r in load_all() if r.name == "debian12-cpu")


def _wait_for_compiling(log: Path, proc: subprocess.Popen, objects: int = 3) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the build ended before it could be interrupted"
        text = log.read_text() if log.is_file() else ""
        if text.count("Building CXX object") >= objects:
            return
        time.sleep(0.3)
    pytest.fail(f"no compile progress in {log}")


def _leftovers(workdir: Path) -> list[str]:
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(workdir) in cmd and p.pid != os.getpid():
            found.append(cmd[:120])
    return found


def test_interrupted_builds_resume(built_caffe, tmp_path):
    """`built_caffe` first: its compile cache makes this real build take about a minute."""
    python = overlay_venv(built_caffe.python, tmp_path / "venv")
    prefix = tmp_path / "prefix"
    tarball = paths.sources_dir() / RECIPE.source.tarball
    env = {
        **clean_env(),
        "CAFFEDOC_CACHE_DIR": str(tmp_path / "cache"),  # a build of its own
        "CAFFEDOC_CCACHE_DIR": str(paths.ccache_dir()),
    }
    args = ["build", "--recipe", "debian12-cpu", "--source", str(tarball), "--jobs", "2",
            "--python", str(python), "--prefix", str(prefix)]  # fmt: skip
    plan = json.loads(caffedoc(*args, "--dry-run", "--json", env=env).stdout)
    workdir = Path(plan["workdir"])
    compile_log = workdir / "logs" / "06-compile.log"

    for sig in (signal.SIGINT, signal.SIGTERM):
        if compile_log.exists():
            compile_log.unlink()
        proc = subprocess.Popen(
            [sys.executable, "-m", "caffedoc", *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for_compiling(compile_log, proc)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert "interrupted" in err
        time.sleep(0.5)
        assert _leftovers(workdir) == [], "compilers outlived the interrupted build"
        assert not prefix.exists()
        assert not list(tmp_path.glob(".prefix.caffedoc-*"))
        state = json.loads((workdir / "state.json").read_text())
        assert {"fetch", "patch", "configure"} <= set(state)

    done = caffedoc(*args, env=env, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    for step in ("fetch", "patch", "configure"):
        assert f"{step:<10} done earlier (resumed)" in done.stderr
    assert BuildRecord.read(prefix).key == plan["cache_key"]
    last = json.loads((tmp_path / "cache" / "last-build.json").read_text())
    assert last == {"python": str(python), "prefix": str(prefix)}  # `caffedoc smoke`'s default
    res = subprocess.run(
        [python, "-c", "import caffe; print(caffe.__file__)"],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert res.returncode == 0 and str(prefix) in res.stdout, res.stderr
