"""`caffedoc check` on wheel installs: which wheel and recipe the winning caffe came from
(the build record packed inside it), whether a GPU wheel's NVIDIA wheels are there at the
pinned versions (a real other cuDNN wheel installed over the pinned one; a real uninstall),
and the existing diagnostics on a wheel install (protobuf drift, --require)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import caffedoc
from tests.fixtures import cuda_libs
from tests.fixtures.caffe_build import RECIPE, clean_env
from tests.fixtures.wheel_gpu import WheelVenv, wheel_venv

pytestmark = pytest.mark.caffe


@pytest.fixture(scope="module")
def cpu_wheel_venv(built_caffe, tmp_path_factory) -> WheelVenv:
    """The debian12-cpu install packed by `build --wheel` (a cache hit, then auditwheel)
    and installed by pip into a fresh venv."""
    out = tmp_path_factory.mktemp("cpu-wheelhouse")
    res = caffedoc("build", "--recipe", RECIPE, "--python", str(built_caffe.python),
                   "--prefix", str(built_caffe.prefix), "--wheel", "--out", str(out),
                   env=clean_env(), timeout=3600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return wheel_venv(out, tmp_path_factory.mktemp("cpu-venv") / "v")


def check(python: Path, *args: str) -> tuple[int, dict]:
    res = caffedoc("check", "--python", str(python), "--json", *args, env=clean_env(),
                   timeout=300)  # fmt: skip
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def ids(report: dict) -> dict[str, dict]:
    return {f["id"]: f for f in report["findings"]}


def test_a_cpu_wheel_is_recognized_and_every_diagnostic_still_works(cpu_wheel_venv):
    v = cpu_wheel_venv
    code, report = check(v.python, "--require", f"recipe={RECIPE}")
    wheel = report["facts"]["caffe"]["wheel"]
    assert wheel["version"] == "1.0.0+debian12.cpu" and wheel["nvidia"] == []
    assert wheel["record"]["recipe"] == RECIPE
    assert wheel["dist_info"] == str(v.site / "caffe-1.0.0+debian12.cpu.dist-info")
    assert wheel["tags"][0].startswith("cp311-cp311-manylinux_2_")
    assert code == 0 and "recipe-match" in ids(report), report["findings"]
    text = caffedoc("check", "--python", str(v.python), env=clean_env(), timeout=300).stdout
    assert "wheel caffe 1.0.0+debian12.cpu (cp311-cp311-manylinux_2_" in text
    assert f", recipe {RECIPE}\n" in text
    # protobuf's runtime check on the wheel's caffe_pb2.py: a runtime too old for it.
    pip = [v.python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "protobuf==3.19.6"], check=True, capture_output=True, timeout=600)
    code, report = check(v.python)
    drift = ids(report).get("protobuf-version-drift")
    assert code == 1 and drift and drift["severity"] == "error", report["findings"]
    assert any("3.19.6" in e for e in drift["evidence"]), drift


def test_a_gpu_wheel_with_another_cudnn_or_without_curand_is_named(gpu_wheel, tmp_path):
    v = wheel_venv(gpu_wheel[0].parent, tmp_path / "v")
    code, report = check(v.python)
    assert "nvidia-wheels" not in ids(report) and code == 0, report["findings"]
    # The libprotobuf the wheel carries (renamed by auditwheel) is the one Caffe loads.
    soname, path, version = report["facts"]["protobuf"]["caffe_links"]
    assert soname.startswith("libprotobuf-") and path.startswith(str(v.site)), soname
    assert version is None  # a copy inside the wheel, not the machine's package
    # Another cuDNN wheel over the pinned one (pip only warns of the conflict); on a fresh
    # machine the older one is not among the build's wheels yet: downloaded here.
    older = cuda_libs.wheel(cuda_libs.CUDNN_13_OLDER)
    offline = [v.python, "-m", "pip", "install", "-q", "--no-index", "--find-links",
               str(older.parent)]  # fmt: skip
    res = subprocess.run([*offline, cuda_libs.CUDNN_13_OLDER], capture_output=True,
                         text=True, timeout=900, env=clean_env())  # fmt: skip
    assert res.returncode == 0 and "9.13.1.26" in res.stderr, res.stderr
    code, report = check(v.python)
    found = ids(report)["nvidia-wheels"]
    assert code == 0 and found["severity"] == "warning"
    assert found["evidence"] == [
        f"caffe 1.0.0+current.gpu.cuda13 ({v.site}/caffe-1.0.0+current.gpu.cuda13.dist-info) "
        "requires nvidia-cudnn-cu13==9.13.1.26; 9.13.0.50 is installed "
        f"({v.site}/nvidia_cudnn_cu13-9.13.0.50.dist-info)"
    ]
    assert f"{v.python} -m pip install nvidia-cudnn-cu13==9.13.1.26" in found["fix"]
    assert check(v.python, "--strict")[0] == 1
    # The loader really takes the other one, and check says so beside the finding.
    lib = next(x for x in report["facts"]["cuda"]["caffe_libraries"] if x["cudnn"])
    assert lib["cudnn"]["version"] == "9.13.0", lib["cudnn"]
    # cuRAND uninstalled: an error, and libcaffe no longer resolves.
    uninstall = [v.python, "-m", "pip", "uninstall", "-y", "-q", "nvidia-curand"]
    subprocess.run(uninstall, check=True, capture_output=True, timeout=300, env=clean_env())
    code, report = check(v.python)
    found = ids(report)["nvidia-wheels"]
    assert code == 1 and found["severity"] == "error", report["findings"]
    assert any("nvidia-curand==10.4.0.35; it is not installed" in e for e in found["evidence"])
    assert found["title"].endswith("nvidia-cudnn-cu13 9.13.0.50, nvidia-curand missing")
    assert "caffe-library-missing" in ids(report) or "cuda-library-path" in ids(report)
