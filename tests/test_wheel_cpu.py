"""`caffedoc build --portable --wheel`: the debian12-cpu install (static protobuf, minimal
OpenCV) packed as a portable wheel of at most 30 MB, installed by pip alone into a fresh venv
here and into a fresh Debian 12 root with no -dev packages, where pycaffe's smoke step
passes and Caffe's own commands run and decode JPEG and PNG images."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import zipfile

import pytest

from caffedoc.build import opencv
from caffedoc.build.steps import StepError
from caffedoc.detect.wheel_platform import WHEEL_TAGS
from tests.conftest import caffedoc
from tests.fixtures.caffe_build import RECIPE, clean_env
from tests.fixtures.roots import cached_root, copy_checkout, in_root, ok, reach_registries

pytestmark = pytest.mark.caffe

NAME = re.compile(r"caffe-1\.0\.0\+debian12\.cpu-cp311-cp311-manylinux_2_(\d+)_x86_64\.whl")
# A tiny net the `caffe` command trains from DummyData: no dataset, no Python.
NET = """
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 8 dim: 4 } shape { dim: 8 }
    data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 2 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""
SOLVER = """net: "net.prototxt"
base_lr: 0.1
max_iter: 20
lr_policy: "fixed"
snapshot_prefix: "tiny"
"""
# A JPEG and a PNG, written by scikit-image (pycaffe's dependency), for Caffe's own decoder.
IMAGES = r"""
import numpy as np, skimage.io
skimage.io.imsave("a.jpg", np.full((12, 10, 3), 90, np.uint8), check_contrast=False)
skimage.io.imsave("b.png", np.full((9, 7, 3), 200, np.uint8), check_contrast=False)
open("list.txt", "w").write("a.jpg 0\nb.png 1\n")
"""
LIMIT = 30_000_000  # bytes: the wheel's size goal, with image decoding kept


def test_the_wheel_is_named_tagged_and_declares_its_needs(cpu_wheel, tmp_path):
    wheel, made = cpu_wheel
    assert NAME.fullmatch(wheel.name), wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read("caffe-1.0.0+debian12.cpu.dist-info/METADATA").decode()
        scripts = z.read("caffe-1.0.0+debian12.cpu.dist-info/entry_points.txt").decode()
    assert "Requires-Python: ==3.11.*" in meta
    for need in ("numpy>=1.21", "protobuf>=3.20", "scikit-image", "scipy", "six"):
        assert f"Requires-Dist: {need}\n" in meta
    for tool in ("caffe", "convert_imageset", "compute_image_mean", "upgrade_net_proto_text"):
        assert f"caffe_tools/bin/{tool}" in names and f"\n{tool} = caffe_tools:main" in scripts
    assert "caffe/libcaffe.so.1.0.0" in names and "caffe/_caffe.so" in names
    # No file needs libpython: an interpreter provides it, a tool gets it preloaded.
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tmp_path, [n for n in names if n.endswith(".so") or ".so." in n])
    for elf in [p for p in tmp_path.rglob("*") if p.is_file()]:
        dynamic = subprocess.run(["readelf", "-d", elf], capture_output=True, text=True).stdout
        assert "Dynamic section" in dynamic and "libpython" not in dynamic, elf
    bundled = made["bundled"]
    assert any(n.startswith("libopenblas") for n in bundled)
    assert not any(n.startswith(("libpython", "libc.so", "libstdc++")) for n in bundled)
    assert all(n.startswith("lib") and ".so" in n for n in bundled), bundled  # files only
    assert made["size"] == wheel.stat().st_size and made["installed"] > made["size"]
    # The minimal OpenCV with the system's JPEG and PNG decoders; no GDAL, no X, and no
    # shared libprotobuf (linked in statically, its symbols hidden).
    for need in ("libopencv_imgcodecs", "libopencv_imgproc", "libopencv_core", "libjpeg", "libpng"):
        assert any(n.startswith(need) for n in bundled), (need, bundled)
    for never in ("libgdal", "libX11", "libxcb", "libprotobuf", "libavcodec", "libgtk"):
        assert not any(n.startswith(never) for n in bundled), (never, bundled)
    assert made["size"] <= LIMIT, f"{made['size'] / 1e6:.1f} MB"
    assert made["platform"] == f"{WHEEL_TAGS[RECIPE]}_x86_64"  # what `check` tells old machines


def test_pip_alone_installs_it_into_a_fresh_venv_and_it_works(cpu_wheel, tmp_path):
    wheel, _ = cpu_wheel
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", venv], check=True, timeout=300)
    # Caffe's tools log to stderr only, leaving no glog files in the machine's /tmp
    python, env = venv / "bin" / "python", {**clean_env(), "GLOG_logtostderr": "1"}
    pip = [python, "-m", "pip", "install", "-q", "--find-links", wheel.parent, "caffe"]
    res = subprocess.run(pip, capture_output=True, text=True, timeout=1800, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    where = subprocess.run([python, "-c", "import caffe; print(caffe.__file__)"],
                           capture_output=True, text=True, env=env)  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(venv / "lib")), "imported from the wheel, no pin"
    smoke = caffedoc("smoke", "--python", str(python), "--json", env=env, timeout=600)
    assert smoke.returncode == 0, smoke.stdout[-2000:] + smoke.stderr[-2000:]
    assert json.loads(smoke.stdout)["passed"] is True
    version = subprocess.run([venv / "bin" / "caffe", "--version"], capture_output=True,
                             text=True, env=env)  # fmt: skip
    assert version.returncode == 0 and "caffe version 1.0.0" in version.stdout, version.stderr
    (tmp_path / "net.prototxt").write_text(NET)
    (tmp_path / "solver.prototxt").write_text(SOLVER)
    train = subprocess.run([venv / "bin" / "caffe", "train", "--solver", "solver.prototxt"],
                           capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=300)  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    assert "Optimization Done." in train.stderr
    assert (tmp_path / "tiny_iter_20.caffemodel").is_file()
    # Caffe's own image decoding (the bundled OpenCV): a JPEG and a PNG into an LMDB.
    subprocess.run([python, "-c", IMAGES], check=True, cwd=tmp_path, env=env, timeout=120)
    convert = subprocess.run([venv / "bin" / "convert_imageset", "./", "list.txt", "db"],
                             capture_output=True, text=True, env=env, cwd=tmp_path,
                             timeout=300)  # fmt: skip
    assert convert.returncode == 0, convert.stderr[-3000:]
    assert "Processed 2 files." in convert.stderr, convert.stderr[-3000:]


def test_a_clean_debian12_root_installs_it_and_smoke_passes(cpu_wheel, tmp_path):
    wheel, _ = cpu_wheel
    root = cached_root(tmp_path / "root", "bookworm", ("python3-venv",))
    dpkg = ok(in_root(root, "dpkg-query -W -f '${Package}\\n'")).split()
    assert not [p for p in dpkg if p.endswith("-dev")] and "gcc" not in dpkg
    reach_registries(root)
    shutil.copytree(wheel.parent, root / "wheels")
    copy_checkout(root / "src")
    ok(in_root(root, "python3 -m venv /v && /v/bin/pip install -q --find-links /wheels caffe "
                     "/src"))  # fmt: skip
    smoke = in_root(root, "/v/bin/caffedoc smoke --python /v/bin/python --json", timeout=600)
    assert smoke.returncode == 0, smoke.stdout[-2000:] + smoke.stderr[-2000:]
    assert json.loads(smoke.stdout)["passed"] is True
    # No libpython3.11 there (a stock Python does not need it): the tools say so in a line.
    tool = in_root(root, "/v/bin/caffe --version")
    assert tool.returncode == 1
    assert tool.stderr.strip().splitlines() == [
        "caffe: Caffe's tools need libpython3.11.so.1.0 (its Python layer links it): install "
        "it (Debian, Ubuntu: apt-get install libpython3.11) or use a Python built with "
        "--enable-shared"
    ]
    with_it = ok(in_root(root, "apt-get update -qq && apt-get install -y -qq libpython3.11 "
                               ">/dev/null && /v/bin/caffe --version"))  # fmt: skip
    assert with_it.strip().splitlines()[-1] == "caffe version 1.0.0"
    images = "mkdir /img && cd /img && /v/bin/python -c " + shlex.quote(IMAGES)
    convert = in_root(root, f"{images} && /v/bin/convert_imageset ./ list.txt db")
    assert convert.returncode == 0 and "Processed 2 files." in convert.stderr, convert.stderr


def test_a_bad_out_or_a_recipe_without_wheels_is_refused_in_one_line(built_caffe, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cases = [
        (["--recipe", RECIPE, "--wheel", "--out", str(blocker / "x")], "not a directory"),
        (["--recipe", RECIPE, "--wheel", "--out", "/proc/caffedoc-wheels"], "cannot write"),
        (["--recipe", RECIPE, "--out", str(tmp_path / "w")], "add --wheel"),
    ]
    for args, words in cases:
        res = caffedoc("build", *args, "--python", str(built_caffe.python), "--prefix",
                       str(tmp_path / "prefix"), env=clean_env())  # fmt: skip
        assert res.returncode == 2, (args, res.stderr)
        [line] = res.stderr.splitlines()
        assert line.startswith("caffedoc: error: ") and words in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"], "nothing written"


def test_portable_is_planned_as_its_own_build(built_caffe, tmp_path):
    plans = []
    for extra in ((), ("--portable",)):
        res = caffedoc("build", "--recipe", RECIPE, "--python", str(built_caffe.python),
                       "--prefix", str(tmp_path / "p"), "--dry-run", "--json", *extra,
                       env=clean_env())  # fmt: skip
        assert res.returncode == 0, res.stderr
        plans.append(json.loads(res.stdout))
    plain, portable = plans
    assert portable["portable"] and portable["static_protobuf"] and not plain["portable"]
    assert portable["cache_key"] != plain["cache_key"]
    shown = caffedoc("build", "--recipe", RECIPE, "--python", str(built_caffe.python),
                     "--portable", "--dry-run", env=clean_env()).stdout  # fmt: skip
    assert f"opencv    minimal {opencv.RELEASE} built from source" in shown
    assert not (tmp_path / "p").exists()


def test_an_opencv_without_jpeg_or_png_is_refused(built_caffe_static):
    """The check the OpenCV build ends with, on the real libraries: imgcodecs links both
    decoders; core, which links neither, stands in for an imgcodecs configured without."""
    lib = built_caffe_static.prefix / "lib"
    [imgcodecs] = [p for p in lib.glob("libopencv_imgcodecs.so.*.*") if not p.is_symlink()]
    opencv.decoders(imgcodecs)
    [core] = [p for p in lib.glob("libopencv_core.so.*.*") if not p.is_symlink()]
    with pytest.raises(StepError, match="without libjpeg and libpng: install libjpeg-dev"):
        opencv.decoders(core)
