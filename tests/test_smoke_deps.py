"""pycaffe's Python packages missing from the interpreter: the smoke step names them
(pycaffe-deps-missing, not interpreter-drift) with the one command that installs
exactly those into that interpreter, and `explain` says the same from a log."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import caffedoc
from tests.fixtures.caffe_build import clean_env
from tests.fixtures.envs import pyenv_python

DEPS = "pycaffe-deps-missing"


def smoke(python: Path, cwd: Path) -> dict:
    res = caffedoc("smoke", "--python", str(python), "--cpu", "--json", env=clean_env(), cwd=cwd)
    assert "Traceback" not in res.stderr.split("caffedoc-smoke")[0], res.stderr
    assert res.returncode in (0, 1), res.stderr
    return json.loads(res.stdout)


def install_command(finding: dict) -> str:
    [command] = re.findall(r"`([^`]*-m pip install[^`]*)`", finding["fix"])
    return command


def numpy_only_venv(make_venv, series: str, python_dir: Path):
    """A venv of its own with numpy and nothing else pycaffe needs, pinned to `python_dir`."""
    venv = make_venv(series, "numpy", fresh=True)
    (venv.site / "caffedoc-caffe.pth").write_text(f"{python_dir}\n")
    return venv


def test_missing_protobuf_and_skimage_are_named_with_the_exact_command(
    make_venv, build_pycaffe, gencode, tmp_path
):
    """The stand-in pycaffe imports google.protobuf first, as the real one's caffe_pb2 does."""
    tree = build_pycaffe(tmp_path / "caffe", pyenv_python("3.9"), gencode("builder"))
    venv = numpy_only_venv(make_venv, "3.9", tree.python_dir)

    result = smoke(venv.python, tmp_path)

    assert not result["passed"]
    f = result["finding"]
    assert f["id"] == DEPS, f
    assert f["title"].endswith(": protobuf, six, scipy, scikit-image")
    assert any(
        "failed at protobuf: " in e and "No module named 'google'" in e for e in f["evidence"]
    )
    assert f"{venv.python} lacks google.protobuf, six, scipy, skimage" in f["evidence"]
    argv = shlex.split(install_command(f))
    assert argv == [str(venv.python), "-m", "pip", "install", "protobuf", "six", "scipy",
                    "scikit-image"]  # fmt: skip
    assert "interpreter-drift" not in json.dumps(result)


def test_explain_names_the_same_from_an_import_caffe_traceback(tmp_path):
    log = tmp_path / "import.log"
    log.write_text(
        "Traceback (most recent call last):\n"
        '  File "/opt/caffe/python/caffe/io.py", line 2, in <module>\n'
        "    import skimage.io\n"
        "ModuleNotFoundError: No module named 'skimage'\n"
    )
    res = caffedoc("explain", "--json", str(log))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["matches"][0]["id"] == DEPS


@pytest.mark.caffe
def test_the_printed_command_makes_the_real_caffe_pass(built_caffe, make_venv, tmp_path):
    series = subprocess.run(
        [built_caffe.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    venv = numpy_only_venv(make_venv, series, built_caffe.prefix / "python")

    before = smoke(venv.python, tmp_path)
    f = before["finding"]
    assert f["id"] == DEPS, f
    command = install_command(f)
    assert shlex.split(command)[4:] == ["protobuf", "six", "scipy", "scikit-image"]

    pasted = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=900)
    assert pasted.returncode == 0, pasted.stderr[-2000:]
    after = smoke(venv.python, tmp_path)
    assert after["passed"], after["finding"]
