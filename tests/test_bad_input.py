"""Bad input ends in one line on stderr and a non-zero status, never a traceback, and
changes nothing: timeouts that are no number of seconds, a standard output on a full
device (the real /dev/full), and install prefixes the build must not take over."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from caffedoc.build import paths
from tests.conftest import caffedoc
from tests.fixtures.caffe_build import clean_env, runtime_venv
from tests.fixtures.users import user_tmp

LOG = Path(__file__).parent / "logs" / "caffe-missing" / "mobilenet-ssd-py3.log"


def one_line_error(res, code: int) -> str:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("caffedoc: error: "), res.stderr
    return lines[0]


@pytest.mark.parametrize("seconds", ["nan", "inf", "-inf", "1e7", "86401", "-1", "0"])
def test_smoke_timeout_outside_a_day_is_refused(seconds):
    res = caffedoc("smoke", "--timeout", seconds, "--python", sys.executable)
    line = one_line_error(res, 2)
    assert "expected 1 to 86400 seconds" in line
    assert not res.stdout


def run_to_full(*args: str, tmp_path: Path):
    """The real CLI with its standard output on /dev/full."""
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [sys.executable, "-m", "caffedoc", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )


@pytest.mark.parametrize(
    "args",
    [("--help",), ("explain", str(LOG)), ("recipes",), ("check",)],
    ids=["help", "explain", "recipes", "check"],
)
def test_output_on_a_full_device_is_one_line(args, tmp_path):
    res = run_to_full(*args, tmp_path=tmp_path)
    assert res.returncode == 74, res.stderr
    assert res.stderr == "caffedoc: error: cannot write the output: No space left on device\n"


def test_output_to_a_reader_that_left_is_quiet(tmp_path):
    """`| head` closes the pipe: no error line, no traceback at exit."""
    r, w = os.pipe()
    os.close(r)
    res = subprocess.run(
        [sys.executable, "-m", "caffedoc", "recipes"],
        stdout=w,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    os.close(w)
    assert res.returncode == 1 and res.stderr == "", res.stderr


@pytest.fixture(scope="module")
def runtime_python() -> Path:
    """An interpreter with numpy, the recipe's Python: a plan gets as far as the prefix."""
    where = paths.cache_root() / "test"
    where.mkdir(parents=True, exist_ok=True)
    return runtime_venv(where)


@pytest.fixture
def plan(runtime_python, tmp_path):
    env = {**clean_env(), "CAFFEDOC_CACHE_DIR": str(tmp_path / "cache")}
    args = ("--recipe", "debian12-cpu", "--python", str(runtime_python), "--dry-run")
    return lambda prefix: caffedoc("build", *args, "--prefix", prefix, env=env, cwd=tmp_path)


def test_empty_prefix_is_refused_not_the_working_directory(plan, tmp_path):
    line = one_line_error(plan(""), 2)
    assert "--prefix '': empty" in line
    assert [p.name for p in tmp_path.iterdir()] == []


def test_prefix_that_is_a_file_is_refused_at_plan_time(plan, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine\n")
    line = one_line_error(plan(str(target)), 2)
    assert f"--prefix {target}: not a directory" in line
    assert target.read_text() == "mine\n"


def test_foreign_non_empty_directory_is_refused_at_plan_time(plan, tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work\n")
    line = one_line_error(plan(str(target)), 2)
    assert "is not empty and was not installed by caffedoc (no .caffedoc-build.json)" in line
    assert [p.name for p in target.iterdir()] == ["thesis.tex"]


def test_caffedoc_install_and_empty_directory_are_accepted(plan, tmp_path):
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / ".caffedoc-build.json").write_text("{}\n")
    (previous / "lib").mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    for target in (previous, empty):
        res = plan(str(target))
        assert res.returncode == 0, res.stderr
        assert f"prefix    {target} (installed all-or-nothing" in res.stdout


def test_as_root_another_users_directory_is_refused(plan, hostile_user, tmp_path):
    theirs = user_tmp(tmp_path, hostile_user)
    for target in (theirs, theirs / "caffe"):  # their (empty) directory, or a new one in it
        line = one_line_error(plan(str(target)), 2)
        assert f"{theirs} belongs to user {hostile_user.name}, not root" in line
    assert list(theirs.iterdir()) == []
