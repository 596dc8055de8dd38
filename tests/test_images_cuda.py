"""The CUDA 13 image (debian:12, its toolkit and cuDNN from NVIDIA's wheels, no NVIDIA base
image): its build stage for one GPU target built for real with buildah from a debootstrap
base, NVIDIA's wheels taken offline from caffedoc's own wheel cache (a build volume, never a
layer), held strictly to its recipe, its final stage checked strictly and trained on the CPU.

A machine that builds images has no GPU by design: `check --no-gpu` says so, and a CUDA
build's missing GPU is then a note that `--strict` lets pass; anything else still fails.
The image itself compiles CUDA for sm_75 (a cold compile, beyond CI's time): only where
CAFFEDOC_SLOW_IMAGES=1 asks.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from caffedoc import docker
from caffedoc.build import paths, toolkit
from caffedoc.build.steps import Log
from caffedoc.recipes import load_all
from tests.conftest import caffedoc
from tests.test_images import PYTHON, buildah, needs_buildah, proof_steps, run_in

RECIPE = next(r for r in load_all() if r.name == "current-gpu-cuda13")
TAG = "caffe:current-gpu-cuda13-sm75"
SLOW = os.environ.get("CAFFEDOC_SLOW_IMAGES") == "1"
# buildah's log: each committed step's image, `--> 0123456789a`, and each stage's start.
COMMITTED = re.compile(r"^--> ([0-9a-f]{11})$", re.M)


def build_stage_image(log: str) -> str:
    """The build stage's last image: the last step committed before the final stage."""
    head = log[: log.index("[2/2] STEP 1/")]
    return COMMITTED.findall(head)[-1]


# ---------------------------------------------------------------- check on a build machine


def _check(built, *flags: str) -> tuple[int, dict]:
    res = caffedoc("check", "--python", str(built.python), "--json", *flags, env=built.env,
                   timeout=300)  # fmt: skip
    assert "Traceback" not in res.stderr, res.stderr
    return res.returncode, json.loads(res.stdout)


@pytest.mark.caffe
def test_no_gpu_makes_a_cuda_builds_missing_gpu_a_note_that_strict_passes(built_caffe_gpu):
    """The real sm_75 build on this GPU-less machine: strict fails on the warning alone;
    with --no-gpu the same finding is a note saying why, and the strict check passes."""
    code, report = _check(built_caffe_gpu, "--strict")
    warned = [f for f in report["findings"] if f["severity"] != "info"]
    assert code == 1 and [(f["id"], f["severity"]) for f in warned] == [("gpu-driver", "warning")]
    code, report = _check(built_caffe_gpu, "--strict", "--no-gpu")
    assert code == 0 and report["status"] == "ok", report["findings"]
    [note] = [f for f in report["findings"] if f["id"] == "gpu-driver"]
    assert note["severity"] == "info"
    assert note["evidence"][-1] == "--no-gpu: no GPU is expected on this machine"
    assert any("sm_75, compute_75" in e for e in note["evidence"])


@pytest.mark.caffe
def test_no_gpu_does_not_excuse_anything_else(built_caffe_gpu, tmp_path):
    """The same build held to the wrong recipe: --no-gpu changes nothing of that error."""
    res = caffedoc("check", "--strict", "--no-gpu", "--python", str(built_caffe_gpu.python),
                   "--require", "recipe=debian13-cpu", env=built_caffe_gpu.env,
                   timeout=300)  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    assert "recipe debian13-cpu" in res.stdout and "the recipe needs Debian 13" in res.stdout


# ---------------------------------------------------------------- the Dockerfile


def test_the_cuda13_compile_step_takes_the_wheels_from_a_mount_and_its_targets_from_an_arg():
    text = docker.render(RECIPE)
    lines = text.splitlines()
    # The recipe's whole list by default; the ARG right before the compile, so a one-target
    # build shares every earlier layer with the full one.
    arg = lines.index(f"ARG {docker.CUDA_ARCH}={','.join(RECIPE.architectures)}")
    compile_step = lines[arg + 1]
    assert compile_step.startswith(f"RUN {docker.CCACHE_MOUNT} {docker.WHEELS_MOUNT} ")
    assert f"CAFFEDOC_CACHE_DIR={docker.STEP_CACHE} " in compile_step
    # The toolkit is unpacked afresh in every build: ccache must know nvcc by its content.
    assert " CCACHE_COMPILERCHECK=content " in compile_step
    assert compile_step.endswith(f'--cuda-arch "${docker.CUDA_ARCH}" \\')
    # The step empties its own cache but the mounted wheels: no layer keeps the toolkit.
    step_end = next(i for i in range(arg + 1, len(lines)) if not lines[i].endswith("\\"))
    assert "! -name wheels -exec rm -rf" in lines[step_end]
    assert text.count(docker.WHEELS) == 1 and ".whl" not in text
    # buildah and podman mount the host's folders instead of cache mounts.
    volume = docker.render(RECIPE, ccache_volume=True)
    assert "--mount=type=cache" not in volume
    assert volume == text.replace(f"{docker.CCACHE_MOUNT} {docker.WHEELS_MOUNT} ", "")


def test_cuda_arch_is_refused_where_it_means_nothing(tmp_path):
    refused = [
        (["debian12-cpu"], "recipe debian12-cpu takes no GPU targets"),
        (["ubuntu16.04-cuda8.0"], "recipe ubuntu16.04-cuda8.0 takes no GPU"),
        (["current-gpu-cuda13", "--cuda-arch", "7.x"], "'7.x' is not a compute"),
    ]
    for args, said in refused:
        extra = [] if "--cuda-arch" in args else ["--cuda-arch", "75"]
        res = caffedoc("docker", "--build", *args, *extra, cwd=tmp_path)
        assert res.returncode == 2, res.stdout + res.stderr
        [line] = res.stderr.strip().splitlines()
        assert line.startswith("caffedoc: error:") and said in line, line
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the image, for real


def wheel_cache() -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns)
            for p in toolkit.wheel_dir().glob("*.whl")}  # fmt: skip


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The image for sm_75, built as a user would, NVIDIA's wheels in caffedoc's cache (put
    there first as `caffedoc build` puts them: from PyPI, by hash, once)."""
    needs_buildah()
    log = Log(tmp_path_factory.mktemp("wheels") / "download.log")
    toolkit.download(RECIPE.toolkit_compiler + RECIPE.toolkit_libraries, log)
    before = wheel_cache()
    start = time.monotonic()
    res = caffedoc("docker", "--build", "current-gpu-cuda13", "--cuda-arch", "75", "--engine",
                   "buildah", "--base-from-debootstrap", timeout=4 * 3600)  # fmt: skip
    print(f"\ncurrent-gpu-cuda13 image for sm_75: {time.monotonic() - start:.0f} s; {res.stdout}")
    log = (paths.cache_root() / "images" / "current-gpu-cuda13.log").read_text()
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}\n{log[-6000:]}"
    return res.stdout, log, before, wheel_cache()


@pytest.mark.caffe
@pytest.mark.skipif(not SLOW, reason="compiles CUDA Caffe for sm_75 cold in an image (beyond "
                    "CI's time): CAFFEDOC_SLOW_IMAGES=1 builds it")  # fmt: skip
def test_the_cuda13_image_builds_offline_for_one_target_and_proves_itself(image):
    said, log, before, after = image
    assert f"current-gpu-cuda13: built and verified as {TAG}" in said
    # Held strictly to the recipe in the build stage; checked strictly and trained on the
    # CPU in the final stage (a layer from buildah's cache was proved when it was made).
    proof = proof_steps(log)
    assert [s.split(" --python")[0] for s in proof["check"]] == [
        "RUN caffedoc check --strict --no-gpu"] * 2  # fmt: skip
    for what, words in (("check", "No problems found"), ("smoke", "smoke: passed on cpu")):
        for step in proof[what]:
            assert "--> Using cache" in step or words in step, step[-3000:]
    # NVIDIA's wheels came from the host's cache, mounted: the build stage's layers hold
    # no wheel (a download would have left it in the mount point, or in the host's cache)
    # and no unpacked toolkit, only the installed Caffe with the CUDA libraries it loads.
    assert after == before
    lib = f"{docker.PREFIX}/lib"
    # (buildah leaves a volume's mount point behind, empty: `wheels`, as the CA's file.)
    look = (f"find / -xdev -name 'nvidia_*.whl' | head -3; ls -A {docker.STEP_CACHE}; "
            f"ls -A {docker.WHEELS} | wc -l; "
            f"test -f {lib}/libcudnn.so.9 -a -f {lib}/libcublasLt.so.13 "
            "&& echo cuda-libs")  # fmt: skip
    out = run_in(build_stage_image(log), look)
    assert out.stdout.split() == ["wheels", "0", "cuda-libs"], out.stdout + out.stderr


@pytest.mark.caffe
@pytest.mark.skipif(not SLOW, reason="needs the image built above (CAFFEDOC_SLOW_IMAGES=1)")
def test_the_final_cuda13_image_is_sm75_only_and_trains_on_the_cpu(image):
    record = run_in(TAG, f"cat {docker.PREFIX}/.caffedoc-build.json")
    assert json.loads(record.stdout)["architectures"] == ["sm_75", "compute_75"]
    check = run_in(TAG, f"caffedoc check --strict --no-gpu --python {PYTHON}")
    assert check.returncode == 0 and "No problems found" in check.stdout, check.stdout
    assert "code for sm_75, compute_75" in check.stdout, check.stdout
    smoke = run_in(TAG, f"caffedoc smoke --python {PYTHON} --cpu")
    assert smoke.returncode == 0 and smoke.stdout.startswith("smoke: passed on cpu"), smoke
    # No compiler, no toolkit, no wheel, no host CA: Caffe's CUDA libraries are its own.
    out = run_in(TAG, "command -v nvcc gcc; find / -xdev -name 'nvidia_*.whl' | head -1; "
                 f"test ! -s {docker.HOST_CA} && echo no-ca; "
                 f"find {docker.STEP_CACHE} -type f 2>/dev/null | wc -l")  # fmt: skip
    assert out.stdout.split() == ["no-ca", "0"], out.stdout + out.stderr
    inspect = buildah("inspect", "--type", "image", TAG)
    assert "PIP_CERT=" not in json.dumps(json.loads(inspect.stdout)["OCIv1"]["config"])
