"""`caffedoc build` into a venv with nothing in it: pycaffe's packages are installed with
that venv's own pip as a shown step, then the build (a cache hit of the fixture's) and the
smoke step pass. An externally managed Python is refused in one line, nothing changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import caffedoc
from tests.fixtures.caffe_build import RECIPE, clean_env

pytestmark = pytest.mark.caffe


def test_a_fresh_venv_gets_pycaffes_packages_and_builds(built_caffe, tmp_path):
    venv, prefix = tmp_path / "venv", tmp_path / "prefix"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", venv], check=True, timeout=300)
    python = venv / "bin" / "python"
    plan = caffedoc("build", "--recipe", RECIPE, "--python", str(venv), "--dry-run",
                    env=clean_env())  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert "-m pip install" in plan.stdout and "scikit-image" in plan.stdout
    assert not prefix.exists()
    res = caffedoc("build", "--recipe", RECIPE, "--python", str(venv), "--prefix", str(prefix),
                   "--jobs", "2", env=clean_env(), timeout=3600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "pycaffe's packages: installed numpy protobuf six scipy scikit-image" in res.stderr
    assert "smoke: passed" in res.stderr
    probe = "import caffe, skimage, scipy, six, google.protobuf; print(caffe.__file__)"
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=clean_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(prefix))


def test_an_externally_managed_python_is_refused_in_one_line(tmp_path):
    system = Path("/usr/bin/python3")
    stdlib = subprocess.run(
        [system, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True, text=True, check=False,
    ).stdout.strip() if system.exists() else ""  # fmt: skip
    if not stdlib or not Path(stdlib, "EXTERNALLY-MANAGED").exists():
        pytest.skip("no externally managed /usr/bin/python3 here")
    lacks = subprocess.run([system, "-c", "import skimage"], capture_output=True, check=False)
    if lacks.returncode == 0:
        pytest.skip("the system Python has scikit-image: nothing to install")
    prefix = tmp_path / "prefix"
    res = caffedoc("build", "--recipe", RECIPE, "--python", str(system), "--prefix", str(prefix),
                   env=clean_env())  # fmt: skip
    assert res.returncode == 2
    [line] = res.stderr.splitlines()
    assert line.startswith("caffedoc: error: ") and "PEP 668" in line and "-m venv" in line
    assert not prefix.exists()
