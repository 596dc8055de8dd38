"""The plan: job count, cache key, interpreter checks, system packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from caffedoc.build import interpreter
from caffedoc.build.plan import default_jobs
from caffedoc.errors import CaffedocError
from tests.conftest import REPO, caffedoc
from tests.fixtures.caffe_build import clean_env


@pytest.mark.parametrize(
    ("cores", "free_gb", "jobs"),
    [(2, 23.0, 2), (16, 4.0, 3), (4, 0.5, 1), (1, 64.0, 1), (8, 9.7, 8)],
)
def test_default_jobs_follow_cores_and_memory(cores, free_gb, jobs):
    got, why = default_jobs(cores, free_gb)
    assert got == jobs and f"{cores} cores" in why


@pytest.fixture(scope="module")
def runtime_python() -> Path:
    from caffedoc.build import paths
    from tests.fixtures.caffe_build import runtime_venv

    where = paths.cache_root() / "test"
    where.mkdir(parents=True, exist_ok=True)
    return runtime_venv(where)


def _plan(python: Path, tmp_path: Path, *extra: str) -> dict:
    env = {**clean_env(), "CAFFEDOC_CACHE_DIR": str(tmp_path / "cache")}
    args = ["--recipe", "debian12-cpu", "--python", str(python), "--prefix", str(tmp_path / "p")]
    res = caffedoc("build", *args, "--dry-run", "--json", *extra, env=env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_the_cache_key_changes_with_what_changes_the_result(runtime_python, tmp_path):
    base = _plan(runtime_python, tmp_path)
    assert _plan(runtime_python, tmp_path)["cache_key"] == base["cache_key"]
    # Job count and prefix do not change what is built (the install is relocatable).
    assert _plan(runtime_python, tmp_path, "--jobs", "1")["cache_key"] == base["cache_key"]
    static = _plan(runtime_python, tmp_path, "--static-protobuf")
    assert static["cache_key"] != base["cache_key"] and static["static_protobuf"] is True


def test_a_shadowing_numpy_header_folder_is_found(tmp_path):
    include = tmp_path / "include" / "python3.11"
    own = tmp_path / "site" / "numpy" / "core" / "include"
    (own / "numpy").mkdir(parents=True)
    (include / "numpy").mkdir(parents=True)
    py = interpreter.BuildPython(
        path=Path(sys.executable), version="3.11.2", soabi="cpython-311-x86_64-linux-gnu",
        include=include, purelib=tmp_path / "site", libpython=None, numpy="2.1.0",
        numpy_include=own, multiarch="x86_64-linux-gnu",
    )  # fmt: skip
    assert interpreter.numpy_shadow(py) == include / "numpy"
    (include / "numpy").rmdir()
    (include / "numpy").symlink_to(own / "numpy")
    assert interpreter.numpy_shadow(py) is None


def test_an_interpreter_without_a_matching_libpython_is_refused(tmp_path):
    py = interpreter.inspect(Path(sys.executable))
    odd = replace(py, version="3.99.0", libpython=None)
    with pytest.raises(CaffedocError, match="no shared libpython"):
        interpreter.link_library(odd)


def test_without_root_missing_packages_print_the_command(tmp_path):
    """Run as an unprivileged user: the exact apt-get command, and a stop."""
    code = (
        "from caffedoc.build.engine import install_packages\n"
        "from caffedoc.errors import CaffedocError\n"
        "from caffedoc.platform import manager\n"
        "try:\n    install_packages(('libcaffedoc-none-dev', 'cmake'), manager('apt'))\n"
        "except CaffedocError as e:\n    print(e)\n"
    )
    env = {**clean_env(), "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c"]
    if os.geteuid() != 0:
        argv = [sys.executable, "-c"]
    res = subprocess.run([*argv, code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (
        "as root, run: apt-get install -y --no-install-recommends libcaffedoc-none-dev cmake"
        in (res.stdout)
    )
