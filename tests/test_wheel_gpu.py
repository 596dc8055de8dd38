"""`caffedoc build --recipe current-gpu-cuda13 --wheel`: a GPU wheel that bundles no CUDA
library and takes CUDA and cuDNN from NVIDIA's wheels, as PyTorch does. pip installs it
with those wheels at the recipe's pins into a fresh venv; pycaffe trains on the CPU (no
GPU here); the loader takes every CUDA library from site-packages/nvidia even with the
toolkit cache and the machine's CUDA hidden; `check` names what it found there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from caffedoc.build import toolkit, wheel_gpu
from caffedoc.build.paths import cache_root
from caffedoc.recipes import load_all
from tests.conftest import caffedoc
from tests.fixtures.caffe_build import GPU_RECIPE, clean_env

pytestmark = pytest.mark.caffe

CUDA = re.compile(r"^lib(cudart|cublas|cublasLt|curand|cudnn\w*|cuda|nvrtc\w*)\.so")
NAME = re.compile(r"caffe-1\.0\.0\+current\.gpu\.cuda13-cp311-cp311-manylinux_2_\d+_x86_64\.whl")
# Prints where each CUDA library the process mapped lives, after pycaffe ran a CPU net.
MAPS = r"""
import json, re, caffe
caffe.set_mode_cpu()
seen = {}
for line in open("/proc/self/maps"):
    path = line.split()[-1]
    name = path.rsplit("/", 1)[-1]
    if re.match(r"lib(cudart|cublas|cublasLt|curand|cudnn\w*)\.so", name):
        seen[name] = path
print(json.dumps(seen))
"""


def pins() -> dict[str, str]:
    recipe = next(r for r in load_all() if r.name == GPU_RECIPE)
    return {w.name: w.version for w in wheel_gpu.runtime_wheels(recipe)}


def test_it_bundles_no_cuda_and_requires_nvidias_wheels_at_the_pins(gpu_wheel, tmp_path):
    wheel, made = gpu_wheel
    assert NAME.fullmatch(wheel.name), wheel.name
    assert not [n for n in made["bundled"] if CUDA.match(n)], made["bundled"]
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read("caffe-1.0.0+current.gpu.cuda13.dist-info/METADATA").decode()
        z.extractall(tmp_path, ["caffe/libcaffe.so.1.0.0", "caffe_tools/bin/caffe"])
    assert not [n for n in names if CUDA.match(Path(n).name)], "no CUDA library inside"
    wanted = {f"{name}=={version}" for name, version in pins().items()}
    assert wanted == {"nvidia-cuda-runtime==13.0.96", "nvidia-cublas==13.0.2.14",
                      "nvidia-curand==10.4.0.35", "nvidia-cudnn-cu13==9.13.1.26"}  # fmt: skip
    nvidia = {line[len("Requires-Dist: ") :] for line in meta.splitlines()
              if line.startswith("Requires-Dist: nvidia")}  # fmt: skip
    assert nvidia == wanted
    # The search path points where NVIDIA's wheels really put these libraries.
    homes = {}
    for path in sorted(toolkit.wheel_dir().glob("nvidia_*.whl")):
        with zipfile.ZipFile(path) as z:
            for n in z.namelist():
                if m := wheel_gpu.LIBRARY.match(n):
                    homes.setdefault(m.group(2), m.group(1))
    for elf, up in (("caffe/libcaffe.so.1.0.0", ".."), ("caffe_tools/bin/caffe", "../..")):
        dynamic = subprocess.run(["readelf", "-d", tmp_path / elf], capture_output=True,
                                 text=True, check=True).stdout  # fmt: skip
        [search] = re.findall(r"\((?:RUNPATH|RPATH)\)\s+Library r\w*path: \[(.*)\]", dynamic)
        entries = search.split(":")
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", dynamic)
        for soname in [n for n in needed if CUDA.match(n)]:
            assert f"$ORIGIN/{up}/{homes[soname]}" in entries, (elf, soname, entries)
        assert not [e for e in entries if not e.startswith("$ORIGIN")], entries
        assert "libcuda.so.1" not in needed


def test_pip_installs_the_pinned_nvidia_wheels_and_cpu_smoke_passes(gpu_wheel_venv):
    v, env = gpu_wheel_venv, clean_env()
    for name, version in pins().items():
        got = subprocess.run([v.python, "-c", f"import importlib.metadata as m; "
                              f"print(m.version({name!r}))"], capture_output=True, text=True,
                             env=env)  # fmt: skip
        assert got.stdout.strip() == version, (name, got.stderr)
    where = subprocess.run([v.python, "-c", "import caffe; print(caffe.__file__)"],
                           capture_output=True, text=True, env=env)  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip() == str(v.site / "caffe" / "__init__.py")
    smoke = caffedoc("smoke", "--cpu", "--python", str(v.python), "--json", env=env,
                     timeout=600)  # fmt: skip
    assert smoke.returncode == 0, smoke.stdout[-2000:] + smoke.stderr[-2000:]
    assert json.loads(smoke.stdout)["passed"] is True


def test_the_loader_takes_cuda_from_site_packages_with_the_toolkits_hidden(
    gpu_wheel_venv, built_caffe_gpu
):
    """Every place a CUDA library of this machine lives is covered by an empty tmpfs in a
    private mount namespace: the toolkit roots and unpacked wheels in caffedoc's cache,
    the built install's lib/, and /usr/local/cuda*. The wheel loads all the same, from
    site-packages/nvidia."""
    v = gpu_wheel_venv
    hidden = [cache_root() / "toolkits", cache_root() / "unpacked", built_caffe_gpu.prefix / "lib",
              *Path("/usr/local").glob("cuda*")]  # fmt: skip
    hidden = [p for p in hidden if p.is_dir() and not p.is_symlink()]
    assert any("cuda" in p.name for p in hidden) and len(hidden) >= 3, hidden
    mounts = " && ".join(f"mount -t tmpfs none {p}" for p in hidden)
    libcaffe = v.site / "caffe" / "libcaffe.so.1.0.0"
    script = f'{mounts} && ls -A {hidden[0]} | wc -l && ldd "$2" && "$1" -c "$3"'
    env = {k: x for k, x in clean_env().items() if k != "LD_LIBRARY_PATH"}
    res = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", str(v.python),
                          str(libcaffe), MAPS], capture_output=True, text=True, env=env,
                         timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.splitlines()
    assert lines[0] == "0", "the toolkit roots are really hidden"
    nvidia = os.path.realpath(v.site / "nvidia")
    resolved = dict(re.findall(r"^\s*(\S+) => (\S+)", res.stdout, re.M))
    for soname in ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13",
                   "libcurand.so.10", "libcudnn.so.9"):  # fmt: skip
        assert os.path.realpath(resolved[soname]).startswith(nvidia + os.sep), resolved
    mapped = json.loads(lines[-1])
    assert {"libcudart.so.13", "libcublas.so.13", "libcudnn.so.9"} <= set(mapped), mapped
    for name, path in mapped.items():
        assert os.path.realpath(path).startswith(nvidia + os.sep), (name, path)


def test_check_names_the_cudnn_and_cuda_it_found_in_those_wheels(gpu_wheel_venv):
    v = gpu_wheel_venv
    res = caffedoc("check", "--python", str(v.python), env=clean_env(), timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    cudnn = os.path.join(v.site, "caffe", "..", "nvidia", "cudnn", "lib", "libcudnn.so.9")
    cudart = os.path.join(v.site, "caffe", "..", "nvidia", "cu13", "lib", "libcudart.so.13")
    assert f"loads cuDNN 9.13.1, built for CUDA 13.0 ({cudnn})" in res.stdout, res.stdout
    assert "CUDA runtime 13.0, " in res.stdout and f"({cudart})" in res.stdout
    assert "wheel caffe 1.0.0+current.gpu.cuda13 (cp311-cp311-manylinux_2_" in res.stdout
    assert ", recipe current-gpu-cuda13" in res.stdout
    assert "requires nvidia-cudnn-cu13==9.13.1.26: 9.13.1.26\n" in res.stdout
    assert "[nvidia-wheels]" not in res.stdout
