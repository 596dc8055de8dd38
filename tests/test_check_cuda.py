"""`caffedoc check` on CUDA/cuDNN set-ups built for real: compiled libraries with the
sonames of CUDA 10.x and cuDNN 7/8, a Caffe-like library linked against them, and a
private ld.so.conf and cache made by ldconfig."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import caffedoc
from tests.fixtures.native import install_copy

NO_GPU = shutil.which("nvidia-smi") is None


def check(py, caffe_dir, env) -> dict:
    res = caffedoc("check", "--json", "--python", str(py), "--caffe", str(caffe_dir), env=env)
    assert res.returncode in (0, 1), res.stderr
    assert not res.stderr.strip(), res.stderr
    return json.loads(res.stdout)


def findings(report: dict, fid: str) -> list[dict]:
    return [f for f in report["findings"] if f["id"] == fid]


def load_error(lib, env) -> str:
    """What the real dynamic loader says when it loads `lib` with every symbol bound."""
    code = "import ctypes, os, sys; ctypes.CDLL(sys.argv[1], os.RTLD_NOW)"
    res = subprocess.run(
        [sys.executable, "-c", code, str(lib)], capture_output=True, text=True, env=env
    )
    return res.stderr if res.returncode else ""


@pytest.fixture
def cuda10(tmp_path, cuda_install, caffe_like, linker_config):
    """CUDA 10.0 + cuDNN 7.3.1 (a pairing that works) under tmp, and a Caffe linked to it."""
    built = cuda_install("10.0.130", "7.3.1")
    root = install_copy(built, tmp_path / "cuda-10.0")
    caffe = install_copy(caffe_like(built), tmp_path / "caffe")
    env = linker_config.env()
    env["CUDA_HOME"] = str(root)
    return root, caffe, env


def test_cudnn_in_a_directory_the_loader_does_not_search(cuda10, linker_config, target_python):
    root, caffe, env = cuda10
    lib64 = root / "lib64"
    assert "libcudnn.so.7" not in linker_config.rebuild()
    # The real loader agrees (the machine's own cache lacks the directory too).
    assert "libcudnn.so.7: cannot open shared object file" in load_error(
        caffe / "lib" / "libcaffe.so.1.0.0", env
    )

    report = check(target_python.python, caffe, env)

    hits = findings(report, "cuda-library-path")
    errors = [f for f in hits if f["severity"] == "error"]
    assert len(errors) == 1, report["findings"]  # one finding for the library, both sonames
    text = json.dumps(errors)
    assert "libcudnn.so.7" in text and str(lib64) in text
    assert "libcudart.so.10.0" in text
    # The fix is the exact ld.so.conf.d entry, then ldconfig on that configuration.
    fix = errors[0]["fix"]
    assert f"printf '%s\\n' {lib64} | sudo tee {linker_config.confd}/caffedoc-cuda.conf" in fix
    assert "ldconfig" in fix
    assert report["status"] == "error"
    # The known-good pairing raises nothing else in the area.
    assert not findings(report, "cudnn-version")
    # The caffe area sees the same missing library, and leaves it to cuda-library-path:
    # one missing libcudnn, one finding.
    assert "libcudnn.so.7" in report["facts"]["caffe"]["tree"]["libcaffe"]["missing"]
    assert not findings(report, "caffe-library-missing"), report["findings"]


def test_listed_and_cached_directory_is_clean(cuda10, linker_config, target_python):
    root, caffe, env = cuda10
    linker_config.list_dir(root / "lib64")
    printed = linker_config.rebuild()
    assert f"libcudnn.so.7 (libc6,x86-64) => {root / 'lib64'}" in printed

    report = check(target_python.python, caffe, env)

    # (The machine's own toolkits, outside this private configuration, may be noted.)
    mine = [f for f in findings(report, "cuda-library-path") if str(root) in json.dumps(f)]
    assert not mine, mine
    assert all(f["severity"] == "info" for f in findings(report, "cuda-library-path"))
    needed = {
        n["soname"]: n for lib in report["facts"]["cuda"]["caffe_libraries"] for n in lib["needed"]
    }
    assert needed["libcudnn.so.7"]["how"] == "ld.so.cache"
    assert needed["libcudnn.so.7"]["real_name"] == "libcudnn.so.7.3.1"
    # The caffe area resolves through the same private cache, although the machine's own
    # loader (and so `ldd`) still cannot find libcudnn.so.7.
    assert "libcudnn.so.7: cannot open shared object file" in load_error(
        caffe / "lib" / "libcaffe.so.1.0.0", dict(os.environ)
    )
    libcaffe = report["facts"]["caffe"]["tree"]["libcaffe"]
    assert libcaffe["missing"] == [], libcaffe
    assert libcaffe["libraries"]["libcudnn.so.7"] == str(root / "lib64" / "libcudnn.so.7")
    assert not findings(report, "caffe-library-missing"), report["findings"]


def test_listed_directory_with_a_stale_cache_says_run_ldconfig(
    tmp_path, cuda_install, caffe_like, linker_config, target_python
):
    built = cuda_install("10.0.130", "7.3.1")
    lib64 = tmp_path / "cuda-10.0" / "lib64"
    lib64.mkdir(parents=True)
    linker_config.list_dir(lib64)
    linker_config.rebuild()  # before the libraries are installed: the seed's libcudnn story
    shutil.rmtree(tmp_path / "cuda-10.0")
    root = install_copy(built, tmp_path / "cuda-10.0")
    caffe = install_copy(caffe_like(built), tmp_path / "caffe")
    env = linker_config.env()
    env["CUDA_HOME"] = str(root)

    report = check(target_python.python, caffe, env)

    errors = [f for f in findings(report, "cuda-library-path") if f["severity"] == "error"]
    assert errors, report["findings"]
    text = json.dumps(errors)
    assert f"{lib64}, which {linker_config.conf} lists" in text
    assert errors[0]["fix"].startswith("Refresh the linker cache")
    assert "tee" not in errors[0]["fix"]


def test_cuda_10_2_with_cudnn_7_6_5_is_a_known_bad_pair(
    tmp_path, cuda_install, caffe_like, linker_config, target_python
):
    built = cuda_install("10.2.89", "7.6.5")
    root = install_copy(built, tmp_path / "cuda-10.2")
    caffe = install_copy(caffe_like(built), tmp_path / "caffe")
    linker_config.list_dir(root / "lib64")
    linker_config.rebuild()
    env = linker_config.env()
    env["CUDA_HOME"] = str(root)

    report = check(target_python.python, caffe, env)

    bad = findings(report, "cudnn-version")
    assert [f["severity"] for f in bad] == ["error"], report["findings"]
    assert "CUDA 10.2 + cuDNN 7.6.5" in bad[0]["title"]
    text = json.dumps(bad[0]["evidence"])
    assert str(root / "include" / "cudnn.h") in text
    assert "libcudnn.so.7.6.5" in text  # the library Caffe actually loads says so too
    assert all(f["severity"] == "info" for f in findings(report, "cuda-library-path"))
    assert report["facts"]["cuda"]["toolkits"][0]["version"] == "10.2.89"


def test_upstream_caffe_api_with_cudnn_8(
    tmp_path, cuda_install, caffe_like, linker_config, target_python
):
    """Caffe's cuDNN 7 calls, linked where cuDNN 8 is installed: it cannot even load."""
    old = cuda_install("10.0.130", "7.3.1")
    new = cuda_install("11.8.89", "8.9.7")
    root = install_copy(new, tmp_path / "cuda-11.8")
    caffe = install_copy(caffe_like(old, libs=new), tmp_path / "caffe")
    linker_config.list_dir(root / "lib64")
    linker_config.rebuild()
    env = linker_config.env()
    env["CUDA_HOME"] = str(root)
    loader_env = dict(env, LD_LIBRARY_PATH=str(root / "lib64"))
    said = load_error(caffe / "lib" / "libcaffe.so.1.0.0", loader_env)
    assert "undefined symbol: cudnnGetConvolutionForwardAlgorithm" in said

    report = check(target_python.python, caffe, env)

    bad = findings(report, "cudnn-version")
    assert bad and bad[0]["severity"] == "error", report["findings"]
    text = json.dumps(bad)
    assert "cudnnGetConvolutionForwardAlgorithm" in text
    assert "libcudnn.so.8" in text
    assert str(root / "include" / "cudnn_version.h") in text
    assert report["facts"]["cuda"]["cudnn_headers"][0]["version"] == "8.9.7"


def test_cudnn_8_header_beside_a_caffe_built_for_cudnn_7_warns(
    tmp_path, cuda_install, caffe_like, linker_config, target_python
):
    old = cuda_install("10.0.130", "7.3.1")
    new = cuda_install("11.8.89", "8.9.7")
    install_copy(old, tmp_path / "cuda-10.0")
    root = install_copy(new, tmp_path / "cuda-11.8")
    caffe = install_copy(caffe_like(old), tmp_path / "caffe")
    linker_config.list_dir(tmp_path / "cuda-10.0" / "lib64")
    linker_config.rebuild()
    env = linker_config.env()
    env["CUDA_HOME"] = str(root)

    report = check(target_python.python, caffe, env)

    bad = {f["title"].split(": ", 1)[1]: f for f in findings(report, "cudnn-version")}
    assert {f["severity"] for f in bad.values()} == {"warning"}, report["findings"]
    api = bad["upstream Caffe's cuDNN 7 API with cuDNN ≥ 8"]
    assert "cudnnGetConvolutionForwardAlgorithm" in json.dumps(api["evidence"])
    assert "8.9.7" in json.dumps(api["evidence"])
    # The cuDNN 8 header disagrees with the only libcudnn the loader knows.
    assert "libcudnn.so.7" in json.dumps(bad["header and library disagree"]["evidence"])


@pytest.mark.skipif(not NO_GPU, reason="this machine has an NVIDIA driver")
def test_no_gpu_is_plain_and_not_an_error(tmp_path, target_python):
    """On this machine as it is (its own linker configuration), with no Caffe build."""
    empty = tmp_path / "nothing"
    empty.mkdir()
    res = caffedoc("check", "--python", str(target_python.python), "--caffe", str(empty))
    assert res.returncode in (0, 1), res.stderr
    assert "No NVIDIA GPU or driver here" in res.stdout
    report = check(target_python.python, empty, None)
    cuda = [f for f in report["findings"] if f["area"] == "cuda"]
    assert all(f["severity"] == "info" for f in cuda), cuda
    assert not findings(report, "gpu-driver")
    assert report["facts"]["cuda"]["driver"]["gpus"] == []


@pytest.mark.skipif(not NO_GPU, reason="this machine has an NVIDIA driver")
def test_gpu_build_without_a_driver_warns(cuda10, linker_config, target_python):
    root, caffe, env = cuda10
    linker_config.list_dir(root / "lib64")
    linker_config.rebuild()

    report = check(target_python.python, caffe, env)

    hits = findings(report, "gpu-driver")
    assert [f["severity"] for f in hits] == ["warning"], report["findings"]
    assert "GPU build" in hits[0]["evidence"][0]
    libs = report["facts"]["cuda"]["caffe_libraries"]
    assert libs and libs[0]["gpu_build"] is True


def test_unreadable_cache_is_reported_not_a_crash(tmp_path, target_python, linker_config):
    junk = tmp_path / "junk.cache"
    junk.write_bytes(b"not a linker cache\n")
    env = linker_config.env()
    env["CAFFEDOC_LD_SO_CACHE"] = str(junk)
    res = caffedoc("check", "--json", "--python", str(target_python.python), env=env)
    assert res.returncode in (0, 1), res.stderr
    assert "Traceback" not in res.stderr
    facts = json.loads(res.stdout)["facts"]["cuda"]
    assert facts["cache_error"]


# The rules that need a GPU's facts, judged on the facts nvidia-smi and cuobjdump give on
# GPU machines (this project's machines have no GPU; the probes' parts are tested above).


def gpu_facts(cc: str, toolkits=("13.0",), archs=None, runtime=None, driver_cuda="13.0"):
    from caffedoc.probes import Facts
    from caffedoc.probes.binaries import CaffeLibrary
    from caffedoc.probes.cuda import CudaFacts
    from caffedoc.probes.driver import Driver, Gpu
    from caffedoc.probes.loader import Needed
    from caffedoc.probes.toolkits import Toolkit

    needed = (Needed(f"libcudart.so.{runtime}", None, None, None),) if runtime else ()
    lib = CaffeLibrary(
        path=Path("/opt/caffe/lib/libcaffe.so.1.0.0"),
        found_by="--caffe",
        needed=needed,
        runpath=(),
        gpu_build=True,
        cudnn_imports=(),
        architectures=archs,
        architectures_note=None,
    )
    cuda = CudaFacts(
        toolkits=tuple(Toolkit(Path(f"/usr/local/cuda-{v}"), v, ("glob",), None) for v in toolkits),
        driver=Driver(
            Path("/usr/bin/nvidia-smi"), "550.54", driver_cuda, (Gpu(0, "GPU", cc),), None
        ),
        cudnn_headers=(),
        ld_so_conf=Path("/etc/ld.so.conf"),
        ld_so_cache=Path("/etc/ld.so.cache"),
        conf_dirs=(),
        conf_includes=(),
        cache_error=None,
        elf_error=None,
        cache_cuda={},
        ld_library_path=(),
        library_dirs=(),
        caffe_libraries=(lib,),
        caffe_source=None,
    )
    return Facts(areas={"cuda": cuda})


@pytest.mark.parametrize(
    ("cc", "toolkit", "bad"),
    [
        ("7.0", "13.0", True),  # CUDA 13 builds sm_75 and newer
        ("7.5", "13.0", False),
        ("3.7", "12.4", True),  # CUDA 12 dropped Kepler
        ("8.6", "10.2", True),  # CUDA 10 stops at sm_75
        ("8.6", "11.8", False),
        ("3.0", "8.0", False),
    ],
)
def test_toolkit_against_the_gpu_architecture(cc, toolkit, bad):
    from caffedoc.detect.cuda import cuda_arch

    hits = list(cuda_arch(gpu_facts(cc, toolkits=(toolkit,))))
    assert bool(hits) == bad, hits
    if bad:
        assert hits[0].severity.value == "error"
        assert f"CUDA {toolkit}" in hits[0].evidence[0]


@pytest.mark.parametrize(
    ("archs", "cc", "runs"),
    [
        (("sm_61",), "8.6", False),
        (("sm_61", "compute_61"), "8.6", True),  # PTX is compiled at load time
        (("sm_80",), "8.6", True),  # same major, newer minor
        (("sm_86",), "8.0", False),
        (("sm_75",), "9.0", False),
    ],
)
def test_library_code_against_the_gpu(archs, cc, runs):
    from caffedoc.detect.cuda import cuda_arch

    hits = [h for h in cuda_arch(gpu_facts(cc, toolkits=(), archs=archs)) if "kernels" in h.detail]
    assert (not hits) == runs, hits


def test_driver_too_old_for_the_runtime():
    from caffedoc.detect.cuda import gpu_driver

    hits = list(gpu_driver(gpu_facts("8.6", runtime="12.4", driver_cuda="11.4")))
    assert len(hits) == 1 and hits[0].severity.value == "error"
    assert "CUDA 12.4 runtime; driver 550.54 supports CUDA 11.4" in hits[0].evidence[0]
    assert not list(gpu_driver(gpu_facts("8.6", runtime="11.4", driver_cuda="12.2")))


@pytest.fixture(scope="module")
def upstream_caffe_source(tmp_path_factory):
    """The upstream BVLC/caffe tree the recipes build (fetched and verified once, cached)."""
    from caffedoc import recipes
    from caffedoc.build import paths, source

    src = recipes.load(recipes.recipes_dir() / "debian12-cpu.toml").source
    tarball = paths.sources_dir() / src.tarball
    if not tarball.is_file():
        if not (src.apt_package and src.apt_suite):
            pytest.skip(f"no {src.tarball} and no way to fetch it")
        log = tmp_path_factory.mktemp("fetch") / "apt.log"
        source.apt_source(src.apt_package, src.apt_suite, src.tarball, tarball, log)
    source.verify_tarball(tarball, src)
    tree = tmp_path_factory.mktemp("upstream") / "caffe"
    source.extract(tarball, tree)
    return tree


def test_upstream_source_does_not_build_with_cudnn_8(
    tmp_path, cuda_install, upstream_caffe_source, linker_config, target_python
):
    root = install_copy(cuda_install("11.8.89", "8.9.7"), tmp_path / "cuda-11.8")
    env = linker_config.env()
    env["CUDA_HOME"] = str(root)

    report = check(target_python.python, upstream_caffe_source, env)

    bad = [f for f in findings(report, "cudnn-version") if "does not build" in f["title"]]
    assert len(bad) == 1 and bad[0]["severity"] == "error", report["findings"]
    text = "\n".join(bad[0]["evidence"])
    assert "src/caffe/layers/cudnn_conv_layer.cpp calls cudnnGetConvolution" in text
    assert "8.9.7" in text


def test_upstream_source_with_cudnn_7_is_fine(
    tmp_path, cuda_install, upstream_caffe_source, linker_config, target_python
):
    root = install_copy(cuda_install("10.0.130", "7.3.1"), tmp_path / "cuda-10.0")
    env = linker_config.env()
    env["CUDA_HOME"] = str(root)

    report = check(target_python.python, upstream_caffe_source, env)

    assert not findings(report, "cudnn-version"), report["findings"]
    assert "cudnnGetConvolutionForwardAlgorithm" in report["facts"]["cuda"]["source_cudnn_calls"]


def test_architectures_of_a_gpu_build(tmp_path, gpu_caffe_like, target_python):
    """Device code nvcc really compiled, read from the library's own fatbinary."""
    caffe = install_copy(gpu_caffe_like, tmp_path / "caffe")

    report = check(target_python.python, caffe, None)

    libs = report["facts"]["cuda"]["caffe_libraries"]
    assert len(libs) == 1 and libs[0]["gpu_build"] is True
    assert libs[0]["architectures"] == ["sm_75", "compute_80"]
    text = caffedoc("check", "--python", str(target_python.python), "--caffe", str(caffe))
    assert "libcaffe.so.1.0.0" in text.stdout and "GPU build; sm_75, compute_80" in text.stdout
