"""The current-GPU recipe: CUDA 13 + cuDNN 9, its toolkit assembled from NVIDIA's wheels,
Caffe compiled for real on a machine that has no GPU and no NVIDIA driver."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from caffedoc.build import arches, toolkit
from caffedoc.build.steps import Log
from caffedoc.errors import CaffedocError
from caffedoc.probes.machine import host_facts
from caffedoc.recipes import load_all
from tests.conftest import caffedoc

RECIPE = "current-gpu-cuda13"
CUDA13 = ("75", "80", "86", "87", "88", "89", "90", "100", "110", "103", "120", "121")

# A program that uses each library Caffe links, through the assembled root only.
PROBE_CU = r"""
#include <cstdio>
#include <cublas_v2.h>
#include <cudnn.h>
#include <curand.h>
__global__ void touch(float* x) { x[threadIdx.x] = 1.0f; }
int main() {
  cublasHandle_t blas;
  cublasStatus_t s = cublasCreate(&blas);  // fails cleanly without a GPU
  int dev = 0;
  cudaError_t e = cudaGetDeviceCount(&dev);
  std::printf("cudnn %zu %d cublas %d cuda %s\n", cudnnGetVersion(), CUDNN_VERSION, (int)s,
              cudaGetErrorName(e));
  return 0;
}
"""


def _recipe():
    return next(r for r in load_all() if r.name == RECIPE)


# ---- choosing targets --------------------------------------------------------------------------


def test_without_a_gpu_the_recipe_list_is_cut_to_what_the_toolkit_targets():
    choice = arches.choose(("70", "75", "86", "120"), CUDA13, toolkit="CUDA 13.0")
    assert choice.real == ("75", "86", "120")
    assert choice.ptx == "120"  # newer GPUs still run, compiled at load time
    assert choice.names() == ["sm_75", "sm_86", "sm_120", "compute_120"]
    assert "no GPU here" in choice.why


def test_a_gpu_here_is_built_for_alone():
    choice = arches.choose(_recipe().architectures, CUDA13, gpus=("86", "86"))
    assert choice.real == ("86",) and choice.ptx == "86"
    assert "sm_86" in choice.why


def test_a_gpu_the_toolkit_cannot_target_is_refused_with_the_reason_and_a_recipe():
    with pytest.raises(CaffedocError) as err:
        arches.choose(("75",), CUDA13, gpus=("61",), toolkit="CUDA 13.0",
                      elsewhere={"61": "ubuntu16.04-cuda8.0"})  # fmt: skip
    msg = str(err.value)
    assert "sm_61 (Pascal)" in msg and "sm_75 to sm_121" in msg
    assert "dropped Pascal" in msg and "ubuntu16.04-cuda8.0" in msg


def test_cuda_arch_forms_are_parsed_and_nonsense_refused():
    assert arches.parse("7.5, 86 sm_120 compute_90") == ("75", "86", "120", "90")
    with pytest.raises(CaffedocError, match=r"'7\.x' is not a compute capability"):
        arches.parse("7.5,7.x")


# ---- the plan, through the real CLI ------------------------------------------------------------


def _dry_run(*extra: str) -> subprocess.CompletedProcess:
    return caffedoc("build", "--recipe", RECIPE, "--dry-run", "--json", *extra, timeout=120)


def test_the_plan_names_the_toolkit_wheels_and_gpu_targets():
    res = _dry_run("--cuda-arch", "7.5,8.6")
    assert res.returncode == 0, res.stderr
    plan = json.loads(res.stdout)
    assert plan["architectures"] == ["sm_75", "sm_86", "compute_86"]
    assert plan["architectures_why"] == "--cuda-arch was asked"
    wheels = plan["toolkit"]["wheels"]
    assert any(w.startswith("nvidia-cudnn-cu13==9.") for w in wheels)
    assert "-DCUDA_ARCH_BIN=75 86" in plan["cmake_args"]
    assert any(a.startswith("-DCUDA_TOOLKIT_ROOT_DIR=") for a in plan["cmake_args"])


def test_a_different_target_list_is_a_different_build():
    keys = {json.loads(_dry_run("--cuda-arch", a).stdout)["cache_key"] for a in ("7.5", "8.6")}
    assert len(keys) == 2


def test_an_architecture_the_toolkit_cannot_target_is_refused_in_one_line():
    if not _machine_cuda13():
        pytest.skip("no CUDA 13.0 nvcc here: the targets are checked after the wheels arrive")
    res = _dry_run("--cuda-arch", "6.1")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "sm_61 (Pascal)" in lines[0] and "dropped Pascal" in lines[0]


# ---- the toolkit root --------------------------------------------------------------------------


def _machine_cuda13() -> list[Path]:
    return [r for r in host_facts().cuda_roots if toolkit.root_release(r) == "13.0"]


def _compile_and_run(root: Path, where: Path) -> str:
    src = where / "probe.cu"
    src.write_text(PROBE_CU)
    exe = where / "probe"
    build = subprocess.run(
        [root / "bin" / "nvcc", "-arch=sm_75", src, "-o", exe, f"-L{root / 'lib64'}",
         "-lcudnn", "-lcublas", "-lcurand"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    env = {**os.environ, "LD_LIBRARY_PATH": str(root / "lib64")}
    run = subprocess.run([exe], capture_output=True, text=True, timeout=60, env=env)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.caffe
def test_a_toolkit_from_wheels_alone_compiles_and_links_cudnn_cublas_curand(tmp_path):
    recipe = _recipe()
    plan = toolkit.plan_toolkit(recipe, machine_roots=())
    assert plan.compiler is None
    assert len(plan.wheels) == len(recipe.toolkit_compiler) + len(recipe.toolkit_libraries)
    root = toolkit.assemble(plan, Log(tmp_path / "toolkit.log"))
    assert toolkit.release(root / "bin" / "nvcc") == "13.0"
    assert "75" in toolkit.supported_architectures(root / "bin" / "nvcc")
    out = _compile_and_run(root, tmp_path)
    # The library really loaded is the wheel's cuDNN 9.13, the header the same release.
    assert out.startswith("cudnn 913") and " 913" in out.split("cublas")[0]
    # No driver here: cuBLAS and the runtime fail cleanly, with the driver's error names.
    assert "cuda cudaErrorInsufficientDriver" in out or "cuda cudaErrorNoDevice" in out


@pytest.mark.caffe
def test_the_machines_nvcc_is_used_when_it_is_the_recipes_release(tmp_path):
    roots = _machine_cuda13()
    if not roots:
        pytest.skip("this machine has no CUDA 13.0 nvcc of its own")
    plan = toolkit.plan_toolkit(_recipe(), roots)
    assert plan.compiler == roots[0]
    assert [w.name for w in plan.wheels] == ["nvidia-cublas", "nvidia-curand", "nvidia-cudnn-cu13"]
    root = toolkit.assemble(plan, Log(tmp_path / "toolkit.log"))
    assert (root / "bin" / "nvcc").resolve() == (roots[0] / "bin" / "nvcc").resolve()
    assert _compile_and_run(root, tmp_path).startswith("cudnn 913")


def test_a_wheel_with_the_wrong_hash_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CAFFEDOC_CACHE_DIR", str(tmp_path))  # an empty wheel cache
    recipe = _recipe()
    curand = next(w for w in recipe.toolkit_libraries if w.name == "nvidia-curand")
    forged = type(curand)(curand.requirement, "0" * 64)
    with pytest.raises(Exception) as err:
        toolkit.download([forged], Log(tmp_path / "dl.log"))
    assert "pip download" in str(err.value) or "sha256" in str(err.value)
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in (tmp_path / "dl.log").read_text()


# ---- the real build: CUDA 13 + cuDNN 9 Caffe on a machine with no GPU ---------------------------


@pytest.mark.caffe
def test_libcaffe_is_a_cuda_and_cudnn_build_that_carries_its_libraries(built_caffe_gpu):
    lib = built_caffe_gpu.prefix / "lib"
    libcaffe = next(lib.glob("libcaffe.so.*"))
    needed = toolkit.needed([libcaffe])
    assert {"libcudart.so.13", "libcublas.so.13", "libcurand.so.10", "libcudnn.so.9"} <= needed
    # The install stands alone: every CUDA library is in its lib/, read-only and shared
    # with the toolkit cache by hard links (no second gigabyte on disk).
    for name in ("libcudart.so.13", "libcublasLt.so.13", "libcudnn.so.9", "libcudnn_cnn.so.9"):
        st = (lib / name).stat()
        assert st.st_mode & 0o222 == 0 and st.st_nlink >= 2, name
    ldd = subprocess.run(["ldd", libcaffe], capture_output=True, text=True).stdout
    assert "not found" not in ldd
    assert str(lib / "libcudnn.so.9") in ldd


@pytest.mark.caffe
def test_the_build_record_names_cuda_cudnn_and_the_targets(built_caffe_gpu):
    record = json.loads((built_caffe_gpu.prefix / ".caffedoc-build.json").read_text())
    assert record["cuda"] == "13.0"
    assert record["cudnn"].startswith("9.13.")
    assert record["architectures"] == ["sm_75", "compute_75"]


@pytest.mark.caffe
def test_cpu_training_works_on_the_gpu_build(built_caffe_gpu):
    res = caffedoc("smoke", "--python", str(built_caffe_gpu.python), "--cpu", "--json",
                   env=built_caffe_gpu.env, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    result = json.loads(res.stdout)
    assert result["passed"] and result["mode"] == "cpu"
    assert result["loss_end"] < result["loss_start"] / 3 and result["test_accuracy"] == 1.0


@pytest.mark.caffe
def test_without_a_driver_the_gpu_smoke_step_fails_cleanly_with_a_finding(built_caffe_gpu):
    res = caffedoc("smoke", "--python", str(built_caffe_gpu.python), "--gpu", "0", "--json",
                   env=built_caffe_gpu.env, timeout=300)  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    result = json.loads(res.stdout)
    assert not result["passed"] and result["finding"]["id"] == "gpu-driver"
    evidence = " ".join(result["finding"]["evidence"])
    assert "asked for GPU 0" in evidence and "cudaGetDeviceCount" in evidence


@pytest.mark.caffe
def test_auto_mode_says_why_it_trained_on_the_cpu(built_caffe_gpu):
    res = caffedoc("smoke", "--python", str(built_caffe_gpu.python), env=built_caffe_gpu.env,
                   timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "no usable GPU" in res.stdout + res.stderr


@pytest.mark.caffe
def test_caffe_device_query_fails_with_the_cuda_runtimes_own_words(built_caffe_gpu):
    exe = built_caffe_gpu.prefix / "bin" / "caffe"
    env = {**built_caffe_gpu.env, "GLOG_logtostderr": "1"}  # no glog files in /tmp
    res = subprocess.run([exe, "device_query", "-gpu", "0"], capture_output=True, text=True,
                         timeout=120, env=env)  # fmt: skip
    assert res.returncode != 0
    words = ("CUDA driver version is insufficient", "no CUDA-capable device is detected")
    assert any(w in res.stderr for w in words), res.stderr[-2000:]


@pytest.mark.caffe
def test_check_names_a_cuda_build_with_no_usable_gpu_and_its_targets(built_caffe_gpu):
    res = caffedoc("check", "--python", str(built_caffe_gpu.python), "--json",
                   env=built_caffe_gpu.env, timeout=300)  # fmt: skip
    assert res.returncode in (0, 1) and "Traceback" not in res.stderr, res.stderr
    report = json.loads(res.stdout)
    libcaffe = next(
        lib for lib in report["facts"]["cuda"]["caffe_libraries"]
        if Path(lib["path"]).name.startswith("libcaffe")
    )  # fmt: skip
    assert libcaffe["gpu_build"] and libcaffe["architectures"] == ["sm_75", "compute_75"]
    ids = {f["id"]: f for f in report["findings"]}
    gpu = ids["gpu-driver"]
    assert gpu["severity"] == "warning"  # CPU mode works; GPU mode cannot
    evidence = " ".join(gpu["evidence"])
    assert "sm_75, compute_75" in evidence and "libcuda.so.1" in evidence
    # The bundled cuDNN is the one compiled against; nothing is missing from the loader.
    for fine in ("cudnn-version", "cuda-arch", "cuda-library-path", "caffe-library-missing"):
        assert fine not in ids, ids[fine]


def test_the_cuda12_recipe_needs_a_cuda12_nvcc_and_says_so():
    """NVIDIA's nvidia-cuda-nvcc-cu12 wheels carry ptxas only, so CUDA 12's compiler must
    be installed; without one the build is refused in one line, before anything runs."""
    if any(toolkit.root_release(r) == "12.8" for r in host_facts().cuda_roots):
        pytest.skip("this machine has a CUDA 12.8 nvcc")
    res = caffedoc("build", "--recipe", "current-gpu-cuda12", "--dry-run", timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        "caffedoc: error: recipe current-gpu-cuda12 takes nvcc from a CUDA 12.8 install, and "
        "none was found (install it, or set CUDA_HOME or put its bin/ on PATH)"
    ]
