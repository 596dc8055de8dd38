"""The check side of CUDA 13 + cuDNN 9 builds, on real libraries: what device code a
library holds (its fatbinary, read without cuobjdump, NVIDIA's cuobjdump as the
oracle), a CUDA build on a machine without a GPU, and the cuDNN a build really loads
(NVIDIA's cuDNN wheels) against the one it was compiled with.

The "Caffe-like" library is a small nvcc-built stand-in (tests/fixtures/cuda_libs.py):
real device code, real DT_NEEDED libcudnn.so.9 and libcudart.so.13, in a prefix laid
out as `caffedoc build` installs one. It is not Caffe.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from caffedoc.probes import fatbin
from tests.conftest import caffedoc
from tests.fixtures import cuda_libs
from tests.fixtures.cuda_libs import CUDNN_8, CUDNN_12, CUDNN_13, CUDNN_13_OLDER

# No driver at all: the gpu-driver wording below is this case's.
NO_DRIVER = shutil.which("nvidia-smi") is None and not any(
    Path(d, "libcuda.so.1").exists()
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/lib/x86_64-linux-gnu", "/usr/lib")
)
RECORD = {"recipe": "cuda13", "cuda": "13.0", "cudnn": "9.13.1",
          "architectures": ["sm_75", "compute_120"]}  # fmt: skip

# nvcc -gencode sets and exactly the targets each puts in the library.
VARIANTS = {
    "sm75": (("-gencode", "arch=compute_75,code=sm_75"), ("sm_75",)),
    "mixed": (
        ("-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
         "-gencode", "arch=compute_120,code=compute_120"),
        ("sm_80", "sm_90", "compute_120"),
    ),
    "uncompressed": (
        ("-no-compress", "-gencode", "arch=compute_80,code=sm_80",
         "-gencode", "arch=compute_120,code=compute_120"),
        ("sm_80", "compute_120"),
    ),
    "compressed": (
        ("--compress-mode=size", "-gencode", "arch=compute_80,code=sm_80",
         "-gencode", "arch=compute_120,code=compute_120"),
        ("sm_80", "compute_120"),
    ),
    "specific": (
        ("-gencode", "arch=compute_90a,code=sm_90a", "-gencode", "arch=compute_100f,code=sm_100f",
         "-gencode", "arch=compute_100a,code=compute_100a"),
        ("sm_90a", "sm_100f", "compute_100a"),
    ),
}  # fmt: skip


def library(variant: str) -> Path:
    return cuda_libs.nvcc_library(variant, VARIANTS[variant][0])


# ---------------------------------------------------------------- fatbin


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fatbin_lists_exactly_the_targets_compiled(variant):
    assert fatbin.targets(library(variant)) == VARIANTS[variant][1]


def test_compression_is_seen_and_needs_no_decompression():
    plain = fatbin.entries(library("uncompressed"))
    small = fatbin.entries(library("compressed"))
    assert plain and not any(e.compressed for e in plain)
    assert small and all(e.compressed for e in small)
    # The same targets, smaller payloads.
    assert [e.name for e in plain] == [e.name for e in small]
    assert sum(e.payload for e in small) < sum(e.payload for e in plain)


def test_a_library_holds_one_container_per_compilation_unit_and_link_step():
    """nvcc -shared writes the cubins twice (compile and device-link containers); the
    targets are listed once each."""
    names = [e.name for e in fatbin.entries(library("mixed"))]
    assert names.count("sm_80") == 2 and names.count("compute_120") == 1
    assert fatbin.targets(library("mixed")) == ("sm_80", "sm_90", "compute_120")


def _listed_by_cuobjdump(tool: Path, lib: Path) -> set[str]:
    res = subprocess.run(
        [tool, "--list-elf", "--list-ptx", lib], capture_output=True, text=True, timeout=60
    )
    found = set()
    for m in re.finditer(r"(ELF|PTX) file\s+\d+: \S+\.(sm_\d+[af]?)\.(?:cubin|ptx)", res.stdout):
        kind, arch = m.groups()
        found.add(arch if kind == "ELF" else arch.replace("sm_", "compute_"))
    assert found, res.stdout + res.stderr
    return found


@pytest.mark.parametrize("variant", ["sm75", "mixed", "compressed", "uncompressed"])
def test_fatbin_agrees_with_nvidia_cuobjdump(variant):
    """NVIDIA's own cuobjdump, from the nvidia-cuda-cuobjdump wheel, as the oracle."""
    tool = cuda_libs.cuobjdump()
    lib = library(variant)
    assert set(fatbin.targets(lib)) == _listed_by_cuobjdump(tool, lib)


def test_arch_specific_targets_agree_with_cuobjdump():
    # cuobjdump names sm_90a and compute_100a as such; a family target (sm_100f) it
    # prints as sm_100, which is what the flag marks beside the same arch number.
    listed = _listed_by_cuobjdump(cuda_libs.cuobjdump(), library("specific"))
    assert listed == {"sm_90a", "sm_100", "compute_100a"}
    assert fatbin.targets(library("specific")) == ("sm_90a", "sm_100f", "compute_100a")


def test_without_section_headers_the_file_is_scanned(tmp_path):
    """A library whose section header table is gone (e_shoff = e_shnum = 0; the loader
    needs only the program headers): its fatbin containers are found by scanning."""
    lib = tmp_path / "libstripped.so"
    shutil.copy2(library("mixed"), lib)
    data = bytearray(lib.read_bytes())
    struct.pack_into("<Q", data, 0x28, 0)  # e_shoff
    struct.pack_into("<HHH", data, 0x3A, 0, 0, 0)  # e_shentsize, e_shnum, e_shstrndx
    lib.write_bytes(bytes(data))
    sections = subprocess.run(["readelf", "-S", lib], capture_output=True, text=True)
    assert ".nv_fatbin" not in sections.stdout
    assert fatbin.targets(lib) == ("sm_80", "sm_90", "compute_120")


def test_libraries_without_device_code_and_files_that_are_not_elf(tmp_path):
    assert fatbin.targets(cuda_libs.CUDA / "lib64" / "libcudart.so.13") == ()
    text = tmp_path / "notes.txt"
    text.write_text("not a library at all, but long enough to have an ELF header's size\n" * 2)
    with pytest.raises(fatbin.NotElf):
        fatbin.targets(text)
    cut = tmp_path / "libcut.so"
    cut.write_bytes(library("mixed").read_bytes()[:4096])  # the section table is gone
    with pytest.raises(fatbin.NotElf, match="section header table"):
        fatbin.targets(cut)


def test_parse_time_is_negligible():
    lib = library("mixed")
    start = time.perf_counter()
    for _ in range(20):
        fatbin.targets(lib)
    assert (time.perf_counter() - start) / 20 < 0.05


# ---------------------------------------------------------------- check on a CUDA build


def check(py, caffe_dir, env=None) -> dict:
    res = caffedoc("check", "--json", "--python", str(py), "--caffe", str(caffe_dir), env=env)
    assert res.returncode in (0, 1), res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    return json.loads(res.stdout)


def findings(report: dict, fid: str) -> list[dict]:
    return [f for f in report["findings"] if f["id"] == fid]


def libcaffe(report: dict) -> dict:
    libs = [
        lib
        for lib in report["facts"]["cuda"]["caffe_libraries"]
        if lib["path"].endswith("libcaffe.so.1.0.0")
    ]
    assert len(libs) == 1, report["facts"]["cuda"]["caffe_libraries"]
    return libs[0]


@pytest.fixture
def env():
    e = dict(os.environ)
    e.pop("LD_LIBRARY_PATH", None)
    return e


def test_cuda_build_facts_from_the_libraries_themselves(tmp_path, target_python, env):
    prefix = cuda_libs.caffe_prefix(tmp_path / "caffe", cuda_libs.cudnn_lib(CUDNN_13), RECORD)

    report = check(target_python.python, prefix, env)

    lib = libcaffe(report)
    assert lib["gpu_build"] is True
    assert lib["architectures"] == ["sm_75", "compute_120"]
    # cuDNN answers for itself, in a child process, through the RUNPATH the loader uses.
    assert lib["cudnn"] == {
        "soname": "libcudnn.so.9",
        "path": str(prefix / "lib" / "libcudnn.so.9"),
        "version": "9.13.1",
        "cuda": "13.0",
        "error": None,
    }
    assert lib["cudart"]["version"] == "13.0"
    assert lib["record"]["cudnn"] == "9.13.1"
    assert lib["record"]["path"] == str(prefix / ".caffedoc-build.json")
    # The matching pair raises nothing; the prefix's lib/ is Caffe's own RUNPATH.
    assert not findings(report, "cudnn-version"), report["findings"]
    assert not [f for f in findings(report, "cuda-library-path") if str(prefix) in str(f)]


@pytest.mark.skipif(not NO_DRIVER, reason="this machine has an NVIDIA driver")
def test_cuda_build_without_a_gpu_names_its_architectures_and_why(tmp_path, target_python, env):
    prefix = cuda_libs.caffe_prefix(
        tmp_path / "caffe", cuda_libs.cudnn_lib(CUDNN_13), RECORD, pycaffe=True
    )

    report = check(target_python.python, prefix, env)

    hits = findings(report, "gpu-driver")
    assert [f["severity"] for f in hits] == ["warning"], report["findings"]  # one for both
    hit = hits[0]
    assert "CUDA build, no usable GPU (no NVIDIA driver)" in hit["title"]
    evidence = "\n".join(hit["evidence"])
    assert (
        f"{prefix / 'lib' / 'libcaffe.so.1.0.0'} is a GPU build (CUDA): CUDA 13.0 runtime; "
        "cuDNN 9.13.1; code for sm_75, compute_120 (in its fatbinary)"
    ) in evidence
    # pycaffe's module links no CUDA library itself; the libcaffe it loads makes it one.
    module = prefix / "python" / "caffe" / "_caffe.so"
    assert f"{module} is a GPU build (CUDA): no device code of its own" in evidence
    pycaffe = next(
        x for x in report["facts"]["cuda"]["caffe_libraries"] if x["path"] == str(module)
    )
    assert pycaffe["gpu_build"] is True and pycaffe["architectures"] == []
    assert pycaffe["record"]["path"] == str(prefix / ".caffedoc-build.json")
    assert "cuDNN 9.13.1" in evidence
    assert "the loader finds no libcuda.so.1" in evidence
    assert "no nvidia-smi" in evidence
    # The CUDA runtime Caffe loads says the same, in its own words.
    assert "cudaErrorInsufficientDriver" in evidence
    assert "set_mode_cpu" in hit["fix"]
    assert report["facts"]["cuda"]["driver"]["libcuda"]["path"] is None
    text = caffedoc("check", "--python", str(target_python.python), "--caffe", str(prefix), env=env)
    assert "GPU build; sm_75, compute_120" in text.stdout
    assert "libcuda.so.1 not found" in text.stdout


def test_cudnn_of_an_older_minor_than_compiled_against_warns(tmp_path, target_python, env):
    """Caffe recorded as built against cuDNN 9.14.0; the loader gives it the real 9.13.1."""
    record = dict(RECORD, cudnn="9.14.0")
    prefix = cuda_libs.caffe_prefix(tmp_path / "caffe", cuda_libs.cudnn_lib(CUDNN_13), record)

    report = check(target_python.python, prefix, env)

    hits = findings(report, "cudnn-version")
    assert [f["severity"] for f in hits] == ["warning"], report["findings"]
    evidence = "\n".join(hits[0]["evidence"])
    assert (
        f"{prefix / '.caffedoc-build.json'} says Caffe was compiled against cuDNN 9.14.0"
        in evidence
    )
    assert f"older cuDNN 9.13.1 ({prefix / 'lib' / 'libcudnn.so.9'})" in evidence
    assert "9.14 or a newer 9.x" in hits[0]["fix"]


@pytest.mark.parametrize(
    ("loaded", "compiled"),
    [(CUDNN_13_OLDER, "9.13.1"), (CUDNN_13, "9.13.0"), (CUDNN_13, "9.12.0")],
)
def test_cudnn_of_another_patch_or_a_newer_minor_is_fine(
    tmp_path, target_python, env, loaded, compiled
):
    """Patch releases are compatible both ways (the real 9.13.0 under a 9.13.1 build),
    newer minors with code built against older ones."""
    record = dict(RECORD, cudnn=compiled)
    prefix = cuda_libs.caffe_prefix(tmp_path / "caffe", cuda_libs.cudnn_lib(loaded), record)
    report = check(target_python.python, prefix, env)
    assert libcaffe(report)["cudnn"]["version"] == loaded.split("==")[1].rsplit(".", 1)[0]
    assert not findings(report, "cudnn-version"), report["findings"]


def test_cudnn_for_another_cuda_major_is_an_error(tmp_path, target_python, env):
    """The cu12 wheel's libcudnn.so.9 where a CUDA 13 Caffe finds it."""
    prefix = cuda_libs.caffe_prefix(tmp_path / "caffe", cuda_libs.cudnn_lib(CUDNN_12), None)

    report = check(target_python.python, prefix, env)

    assert libcaffe(report)["cudnn"]["cuda"] == "12.9"
    hits = findings(report, "cudnn-version")
    assert [f["severity"] for f in hits] == ["error"], report["findings"]
    assert "cuDNN for CUDA 12 with a CUDA 13 Caffe" in hits[0]["title"]
    evidence = hits[0]["evidence"][0]
    assert "built for CUDA 12.9 (cudnnGetCudartVersion)" in evidence
    assert "links libcudart.so.13" in evidence
    assert "nvidia-cudnn-cu13" in hits[0]["fix"]
    assert report["status"] == "error"


def test_cudnn_of_another_major_behind_the_soname_is_an_error(tmp_path, target_python, env):
    """libcudnn.so.9 a link to the real cuDNN 8.9.7 (for CUDA 12): a hand-made link of the
    kind that makes the loader content and Caffe fail at its first cuDNN call."""
    prefix = cuda_libs.caffe_prefix(tmp_path / "caffe", cuda_libs.cudnn_lib(CUDNN_8), RECORD)
    (prefix / "lib" / "libcudnn.so.9").symlink_to("libcudnn.so.8")

    report = check(target_python.python, prefix, env)

    cudnn = libcaffe(report)["cudnn"]
    assert (cudnn["version"], cudnn["cuda"]) == ("8.9.7", "12.2")
    hits = {f["title"].split(": ", 1)[1]: f for f in findings(report, "cudnn-version")}
    assert set(hits) == {
        "libcudnn.so.9 is cuDNN 8.9.7",
        "cuDNN for CUDA 12 with a CUDA 13 Caffe",
    }, report["findings"]
    assert {f["severity"] for f in hits.values()} == {"error"}
    evidence = hits["libcudnn.so.9 is cuDNN 8.9.7"]["evidence"][0]
    assert f"the loader gives it {prefix / 'lib' / 'libcudnn.so.9'}" in evidence


def test_cudnn_that_aborts_becomes_a_finding(tmp_path, target_python, env):
    """The real cuDNN 9 front library without libcudnn_graph aborts at its first call."""
    prefix = cuda_libs.caffe_prefix(
        tmp_path / "caffe", cuda_libs.cudnn_lib(CUDNN_13), RECORD, graph=False
    )

    report = check(target_python.python, prefix, env)

    assert "SIGABRT" in libcaffe(report)["cudnn"]["error"]
    hits = findings(report, "cudnn-version")
    assert [f["severity"] for f in hits] == ["error"], report["findings"]
    assert "libcudnn.so.9 is incomplete" in hits[0]["title"]
    evidence = hits[0]["evidence"][0]
    assert "killed by SIGABRT" in evidence and "libcudnn_graph.so.9" in evidence
    assert "<caffedoc/probes/scripts/ask_cuda_library.py>" not in evidence


def test_cudnn_that_hangs_becomes_a_finding(tmp_path, target_python, env):
    """A library with cuDNN's soname whose cudnnGetVersion never returns (gcc-built)."""
    from caffedoc.detect.cudnn_version import cudnn_version
    from caffedoc.probes import Context, Facts, gather

    prefix = cuda_libs.caffe_prefix(tmp_path / "caffe", cuda_libs.hanging_cudnn().parent, RECORD)
    ctx = Context(python=target_python.python, caffe_dir=prefix, env=env, timeout=2)

    start = time.monotonic()
    facts = gather(ctx, only=("cuda",)).get("cuda")
    assert time.monotonic() - start < 15

    lib = next(x for x in facts.caffe_libraries if x.path.name == "libcaffe.so.1.0.0")
    assert lib.cudnn is not None and "did not finish within 2 s" in lib.cudnn.error
    hits = list(cudnn_version(Facts(areas={"cuda": facts})))
    assert [h.severity.value for h in hits] == ["warning"], hits
    assert "libcudnn.so.9 did not answer" in hits[0].detail
    assert "did not finish within 2 s" in hits[0].evidence[0]


# ---------------------------------------------------------------- the rules' arithmetic
# On the facts GPU machines give (this project's machines have none; the probes that
# gather these facts are exercised above on real libraries).


CUDART = Path("/opt/caffe/lib/libcudart.so.13")


def gpu_facts(status=None, devices=None, archs=None, record_archs=None, driver_cuda="13.0"):
    from caffedoc.layout import BuildRecord
    from caffedoc.probes import Facts
    from caffedoc.probes.binaries import CaffeLibrary, CudaRuntime
    from caffedoc.probes.cuda import CudaFacts
    from caffedoc.probes.driver import Driver, Gpu
    from caffedoc.probes.loader import Needed

    lib = CaffeLibrary(
        path=Path("/opt/caffe/lib/libcaffe.so.1.0.0"),
        found_by="--caffe",
        needed=(Needed("libcudart.so.13", CUDART, "RUNPATH", None),),
        runpath=("$ORIGIN",),
        gpu_build=True,
        cudnn_imports=(),
        architectures=archs,
        architectures_note=None if archs is not None else "unknown: not an ELF file",
        cudart=CudaRuntime(
            "libcudart.so.13", CUDART, "13.0", driver_cuda,
            devices, status, None,
        ),
        record=BuildRecord(cuda="13.0", cudnn="9.13.1", architectures=record_archs,
                           path=Path("/opt/caffe/.caffedoc-build.json")),
    )  # fmt: skip
    cuda = CudaFacts(
        toolkits=(),
        driver=Driver(Path("/usr/bin/nvidia-smi"), "580.65", driver_cuda,
                      (Gpu(0, "NVIDIA H100", "9.0"),), None),
        cudnn_headers=(), ld_so_conf=Path("/etc/ld.so.conf"), ld_so_cache=Path("/etc/ld.so.cache"),
        conf_dirs=(), conf_includes=(), cache_error=None, elf_error=None, cache_cuda={},
        ld_library_path=(), library_dirs=(), caffe_libraries=(lib,), caffe_source=None,
    )  # fmt: skip
    return Facts(areas={"cuda": cuda})


def test_a_listed_gpu_the_runtime_cannot_use_is_an_error():
    from caffedoc.detect.cuda import gpu_driver

    hits = list(gpu_driver(gpu_facts(status="cudaErrorNoDevice: no CUDA-capable device")))
    assert [h.severity.value for h in hits] == ["error"], hits
    assert hits[0].detail == "Caffe's CUDA runtime cannot use the GPU (cudaErrorNoDevice)"
    assert "nvidia-smi lists GPU 0 (NVIDIA H100)" in hits[0].evidence[0]
    assert not list(gpu_driver(gpu_facts(devices=1)))


def test_driver_too_old_quotes_the_runtime():
    from caffedoc.detect.cuda import gpu_driver

    said = "cudaErrorInsufficientDriver: CUDA driver version is insufficient"
    hits = list(gpu_driver(gpu_facts(status=said, driver_cuda="12.4")))
    assert [h.detail for h in hits] == ["driver 580.65 too old for CUDA 13"]
    assert said in hits[0].evidence[1]


def test_architectures_from_the_record_when_the_binary_cannot_be_read():
    from caffedoc.detect.cuda import cuda_arch

    hits = list(cuda_arch(gpu_facts(record_archs=("sm_75", "sm_80"))))  # the GPU is sm_90
    assert len(hits) == 1 and "as /opt/caffe/.caffedoc-build.json records" in hits[0].evidence[0]
    assert not list(cuda_arch(gpu_facts(record_archs=("sm_75", "compute_75"))))  # PTX: JIT
    assert not list(cuda_arch(gpu_facts(archs=("sm_90",), record_archs=("sm_75",))))


@pytest.mark.parametrize(
    ("archs", "cc", "runs"),
    [
        (("sm_90a",), 90, True),
        (("sm_90a",), 100, False),  # arch-specific code runs on that one GPU only
        (("compute_90a",), 100, False),
        (("sm_100f",), 103, True),  # a family's cubin: its major, equal or newer minor
        (("compute_100f",), 120, False),  # a family's PTX stays in the family
        (("compute_100",), 120, True),
        (("sm_75", "compute_120"), 120, True),
        (("sm_75", "compute_120"), 86, False),
    ],
)
def test_architecture_suffixes(archs, cc, runs):
    from caffedoc.detect.cuda import _runs_on

    assert _runs_on(archs, cc) == runs
