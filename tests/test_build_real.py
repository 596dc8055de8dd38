"""The real Caffe built by `caffedoc build --recipe debian12-cpu`, checked end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from caffedoc.build import install
from caffedoc.layout import RECORD
from tests.conftest import caffedoc
from tests.fixtures.caffe_build import RECIPE, overlay_venv

pytestmark = pytest.mark.caffe


def run_py(python: Path, code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=120, env=env
    )


def test_a_fresh_process_imports_the_built_caffe(built_caffe):
    res = run_py(
        built_caffe.python,
        "import caffe, cv2, numpy; print(caffe.__file__); print(numpy.__version__)",
        built_caffe.env,
    )
    assert res.returncode == 0, res.stderr
    where = Path(res.stdout.splitlines()[0])
    assert where.is_relative_to(built_caffe.prefix / "python")
    assert (built_caffe.prefix / RECORD).is_file()


def test_the_pin_beats_a_stale_copy_on_pythonpath(built_caffe, tmp_path):
    stale = tmp_path / "stale" / "caffe"
    stale.mkdir(parents=True)
    (stale / "__init__.py").write_text("raise ImportError('the stale copy was imported')\n")
    env = {**built_caffe.env, "PYTHONPATH": str(stale.parent)}
    res = run_py(built_caffe.python, "import caffe; print(caffe.__file__)", env)
    assert res.returncode == 0, res.stderr
    assert str(built_caffe.prefix) in res.stdout


def test_the_smoke_step_passes(built_caffe):
    res = caffedoc("smoke", "--python", str(built_caffe.python), "--cpu", "--json",
                   env=built_caffe.env, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["passed"] is True


def test_check_finds_no_errors(built_caffe):
    res = caffedoc("check", "--python", str(built_caffe.python), "--json",
                   env=built_caffe.env, timeout=300)  # fmt: skip
    report = json.loads(res.stdout)
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert errors == [], errors
    assert res.returncode == 0


def test_the_install_is_relocatable(built_caffe, tmp_path):
    elves = install.elf_files(built_caffe.prefix)
    assert any(p.name.startswith("libcaffe.so") for p in elves)
    assert any(p.name.startswith("_caffe") for p in elves)
    for path in elves:
        dyn = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
        paths = [line.split("[", 1)[1].rstrip("]") for line in dyn.splitlines() if "PATH)" in line]
        for entry in paths:
            assert all(p.startswith("$ORIGIN") for p in entry.split(":")), (path, entry)
    moved = tmp_path / "elsewhere" / "caffe"
    shutil.copytree(built_caffe.prefix, moved, symlinks=True)
    code = (
        f"import sys; sys.path.insert(0, {str(moved / 'python')!r}); import caffe; "
        "print(caffe.__file__); "
        "print([l.split()[-1] for l in open('/proc/self/maps') if 'libcaffe.so' in l][0])"
    )
    res = run_py(built_caffe.python, code, built_caffe.env)
    assert res.returncode == 0, res.stderr
    module, libcaffe = res.stdout.split()
    assert Path(module).is_relative_to(moved) and Path(libcaffe).is_relative_to(moved)


def test_an_unchanged_build_is_a_cache_hit(built_caffe):
    res = caffedoc("build", "--recipe", RECIPE, "--prefix", str(built_caffe.prefix),
                   "--python", str(built_caffe.python), env=built_caffe.env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "cache hit" in res.stderr and "already holds this build" in res.stderr
    assert "compile" not in res.stderr


def test_a_new_prefix_is_filled_from_the_build_cache(built_caffe, tmp_path):
    python = overlay_venv(built_caffe.python, tmp_path / "venv")
    prefix = tmp_path / "other-prefix"
    res = caffedoc("build", "--recipe", RECIPE, "--prefix", str(prefix),
                   "--python", str(python), "--json", env=built_caffe.env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["result"]["cache"] == "artifact"
    imported = run_py(python, "import caffe; print(caffe.__file__)", built_caffe.env)
    assert imported.returncode == 0, imported.stderr
    assert Path(imported.stdout.strip()).is_relative_to(prefix)
    assert not list(tmp_path.glob(".other-prefix.caffedoc-*"))


def test_a_foreign_prefix_is_not_overwritten(built_caffe, tmp_path):
    prefix = tmp_path / "taken"
    prefix.mkdir()
    (prefix / "mine.txt").write_text("keep\n")
    python = overlay_venv(built_caffe.python, tmp_path / "venv")
    res = caffedoc("build", "--recipe", RECIPE, "--prefix", str(prefix),
                   "--python", str(python), env=built_caffe.env)  # fmt: skip
    assert res.returncode == 2 and "not installed by caffedoc" in res.stderr
    assert sorted(p.name for p in prefix.iterdir()) == ["mine.txt"]
