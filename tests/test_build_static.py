"""--static-protobuf: Caffe carries a private protobuf and survives another module that
registers caffe.proto in the shared libprotobuf's pool (the BVLC/caffe#1917 clash)."""

from __future__ import annotations

import subprocess
import sysconfig
from pathlib import Path

import pytest

from caffedoc.build import install
from tests.fixtures.native import Interpreter, module_dir, proto_module

pytestmark = pytest.mark.caffe

MAPS = "[l.split()[-1] for l in open('/proc/self/maps') if 'libprotobuf' in l]"


def _py(python: Path, code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.fixture(scope="module")
def clash_module(tmp_path_factory) -> Path:
    """A module named `cv2lookalike` linked to the shared libprotobuf, carrying caffe.proto."""
    py = Interpreter(
        Path("python3"),
        Path(sysconfig.get_paths()["include"]),
        sysconfig.get_config_var("EXT_SUFFIX"),
    )
    built = proto_module(py, "cv2lookalike")
    return module_dir(tmp_path_factory.mktemp("clash"), built)


def test_the_static_build_does_not_load_libprotobuf(built_caffe_static):
    for lib in install.elf_files(built_caffe_static.prefix):
        ldd = subprocess.run(["ldd", lib], capture_output=True, text=True).stdout
        assert "libprotobuf.so" not in ldd, lib
    res = _py(built_caffe_static.python, f"import caffe; print({MAPS})", built_caffe_static.env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_the_static_build_hides_protobuf_symbols(built_caffe_static):
    """protobuf's own functions are inside libcaffe but not exported, and nothing in it
    binds to an outside protobuf (only header template instances may be visible)."""
    lib = next(built_caffe_static.prefix.glob("lib/libcaffe.so.*"))

    def symbols(*flag: str) -> set[str]:
        nm = subprocess.run(["nm", "-D", *flag, lib], capture_output=True, text=True, check=True)
        return {line.split()[-1] for line in nm.stdout.splitlines()}

    assert not [s for s in symbols("--undefined-only") if "6google8protobuf" in s]
    exported = symbols("--defined-only")
    inside = subprocess.run(["nm", lib], capture_output=True, text=True, check=True).stdout
    for own in (
        "_ZN6google8protobuf14DescriptorPool14generated_poolEv",
        "_ZN6google8protobuf8internal20AddDescriptorsRunnerC1EPKNS1_15DescriptorTableE",
    ):
        assert own not in exported and own in inside
    shared = next(p for p in exported if p.startswith("_ZN5caffe12NetParameter"))
    assert shared  # Caffe's own protobuf classes stay exported for _caffe.so and the tools


def test_the_static_build_survives_a_second_caffe_proto(built_caffe_static, clash_module):
    env = {**built_caffe_static.env, "PYTHONPATH": str(clash_module)}
    code = (
        "import cv2lookalike, caffe; "
        "p = caffe.proto.caffe_pb2.NetParameter(name='x'); "
        "print(cv2lookalike.shape_size(3), caffe.Net, " + MAPS + ")"
    )
    res = _py(built_caffe_static.python, code, env)
    assert res.returncode == 0, res.stderr
    assert "File already exists" not in res.stderr
    assert "libprotobuf.so" in res.stdout  # the other module did load the shared one


def test_the_shared_build_shows_the_clash(built_caffe, clash_module):
    """The contrast that makes the test above mean something."""
    env = {**built_caffe.env, "PYTHONPATH": str(clash_module)}
    res = _py(built_caffe.python, "import cv2lookalike, caffe", env)
    assert res.returncode != 0
    assert "File already exists in database: caffe.proto" in res.stderr
