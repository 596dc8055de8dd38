"""Rules about CUDA, cuDNN, the GPU driver and the dynamic loader's path.

No GPU is not a problem in itself: a CPU build of Caffe needs none of this, so
the rules speak only when something that is there (a GPU build, a GPU, a cuDNN)
meets something that does not fit it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from packaging.version import InvalidVersion, Version

from caffedoc.detect import detects
from caffedoc.findings import Hit, Severity
from caffedoc.probes import Facts
from caffedoc.probes.cuda import CUDA_LIB, CaffeLibrary, CudaFacts, Driver, LibraryDir
from caffedoc.shellwords import AND, PIPE, cmd

# Compute capabilities each CUDA major release builds for: (lowest, highest or None).
ARCH_RANGES: dict[int, tuple[int, int | None]] = {
    8: (20, 62),
    9: (30, 72),
    10: (30, 75),
    11: (35, None),
    12: (50, None),
    13: (75, None),
}

# CUDA + cuDNN pairs known not to work with Caffe, and where that was learned.
BAD_PAIRS: tuple[tuple[str, str, str], ...] = (
    (
        "10.2",
        "7.6.5",
        "the field log's CUDA 10.2 + cuDNN 7.6.5 fails; CUDA 10.0 + cuDNN 7.3.1 works",
    ),
)

# Functions upstream Caffe calls that cuDNN 8 removed (BVLC/caffe#6970).
REMOVED_IN_CUDNN_8 = frozenset(
    {
        "cudnnGetConvolutionForwardAlgorithm",
        "cudnnGetConvolutionBackwardFilterAlgorithm",
        "cudnnGetConvolutionBackwardDataAlgorithm",
    }
)

DEFAULT_CONF = Path("/etc/ld.so.conf")
DEFAULT_CACHE = Path("/etc/ld.so.cache")


def _cuda(facts: Facts) -> CudaFacts | None:
    return facts.get("cuda")


def _version(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def _major_minor(text: str | None) -> str | None:
    v = _version(text)
    return f"{v.major}.{v.minor}" if v else None


def _soname_version(soname: str) -> str | None:
    m = re.search(r"\.so\.(\d+(?:\.\d+)*)$", soname)
    return m.group(1) if m else None


def _runtime_of(lib: CaffeLibrary) -> str | None:
    """The CUDA runtime a Caffe library was linked with, from libcudart's soname."""
    for n in lib.needed:
        if n.soname.startswith("libcudart.so."):
            return _soname_version(n.soname)
    return None


def _architectures(lib: CaffeLibrary) -> tuple[tuple[str, ...] | None, str]:
    """The targets in the library, else those its build record names; and the source."""
    if lib.architectures is None and lib.record and lib.record.architectures:
        return lib.record.architectures, f"as {lib.record.path} records"
    return lib.architectures, "in its fatbinary"


def _ldconfig_command(cuda: CudaFacts) -> list[str]:
    if cuda.ld_so_conf == DEFAULT_CONF and cuda.ld_so_cache == DEFAULT_CACHE:
        return ["sudo", "ldconfig"]
    return ["sudo", "ldconfig", "-f", str(cuda.ld_so_conf), "-C", str(cuda.ld_so_cache)]


def _refresh(cuda: CudaFacts) -> str:
    return f"Refresh the linker cache: {cmd(*_ldconfig_command(cuda))}."


def _conf_line_fix(cuda: CudaFacts, directories: list[Path]) -> str:
    """The exact ld.so.conf.d entry for `directories` (one a line), then the cache refresh."""
    confd = next((Path(p).parent for p in cuda.conf_includes if p.endswith(".conf")), None)
    if confd is None:
        tee = ["sudo", "tee", "-a", str(cuda.ld_so_conf)]
    else:
        tee = ["sudo", "tee", str(confd / "caffedoc-cuda.conf")]
    add = cmd("printf", "%s\\n", *map(str, directories), PIPE, *tee, AND, *_ldconfig_command(cuda))
    # The evidence names the directories: prose here could hold a path's backtick.
    them = "it" if len(directories) == 1 else "them"
    return (
        f"Let the dynamic loader search {them}: {add}. "
        "LD_LIBRARY_PATH works for one shell only, not for services or other users."
    )


def _where(d: LibraryDir, cuda: CudaFacts) -> str:
    if d.covered_by == "ld.so.conf":
        return (
            f"which {cuda.ld_so_conf} lists, but the cache {cuda.ld_so_cache} has no entry "
            f"for {', '.join(d.not_in_cache)}: ldconfig was not rerun after they were installed"
        )
    return f"which neither {cuda.ld_so_conf} (with its includes) nor LD_LIBRARY_PATH lists"


@detects("cuda-library-path")
def library_path(facts: Facts) -> Iterator[Hit]:
    cuda = _cuda(facts)
    if cuda is None:
        return
    explained: set[Path] = set()
    for lib in cuda.caffe_libraries:
        # Other libraries that do not resolve are the caffe area's (caffe-library-missing).
        missing = [n for n in lib.unresolved if CUDA_LIB.match(n)]
        if not missing:
            continue
        evidence = [
            f"{lib.path} needs {', '.join(missing)}; the loader finds "
            f"{'it' if len(missing) == 1 else 'them'} nowhere (RUNPATH: "
            f"{', '.join(lib.runpath) or 'none'}; LD_LIBRARY_PATH: "
            f"{':'.join(cuda.ld_library_path) or 'unset'}; cache: {cuda.ld_so_cache})"
        ]
        stale: list[Path] = []
        uncovered: list[Path] = []
        nowhere: list[str] = []
        for soname in missing:
            homes = [
                d
                for d in cuda.library_dirs
                if soname in d.libraries and d.covered_by in (None, "ld.so.conf")
            ]
            evidence += [f"{soname} is in {d.path}, {_where(d, cuda)}" for d in homes]
            for d in homes:
                bucket = stale if d.covered_by else uncovered
                if d.path not in bucket:
                    bucket.append(d.path)
            if not homes:
                nowhere.append(soname)
        explained.update(stale + uncovered)
        fixes = []
        if uncovered:
            fixes.append(_conf_line_fix(cuda, uncovered))
        elif stale:
            fixes.append(_refresh(cuda))
        if nowhere:
            fixes.append(
                f"No {', '.join(nowhere)} was found on this machine: install the CUDA/cuDNN "
                "release it belongs to, or rebuild Caffe against the CUDA that is installed."
            )
        yield Hit(Severity.ERROR, tuple(evidence), " ".join(fixes), detail=", ".join(missing))
    for d in cuda.library_dirs:
        if d.path in explained:
            continue
        if d.covered_by is None or d.not_in_cache:
            yield Hit(
                Severity.INFO,
                (f"{d.path} holds {', '.join(d.libraries)}, {_where(d, cuda)}",),
                _refresh(cuda) if d.not_in_cache else _conf_line_fix(cuda, [d.path]),
                detail=str(d.path),
            )


def _cuda_for(cuda: CudaFacts, header: Path | None) -> str | None:
    """The CUDA release a cuDNN belongs with: the toolkit it sits in, else the only one."""
    for lib in cuda.caffe_libraries:
        if runtime := _runtime_of(lib):
            return runtime
    if header is not None:
        for t in cuda.toolkits:
            if t.root and t.root in header.parents:
                return t.version
    versions = {_major_minor(t.version) for t in cuda.toolkits if t.version}
    return versions.pop() if len(versions) == 1 else None


def _cudnn_versions(cuda: CudaFacts) -> list[tuple[str, str, Path | None]]:
    """(cuDNN version, where it was seen, header path) for headers and loaded libraries."""
    out = [(h.version, f"header {h.path}", h.path) for h in cuda.cudnn_headers]
    for lib in cuda.caffe_libraries:
        for n in lib.needed:
            if n.soname.startswith("libcudnn.so") and n.real_name:
                v = _soname_version(n.real_name)
                if v and v.count(".") >= 2:
                    out.append((v, f"{n.path} → {n.real_name}, loaded by {lib.path.name}", None))
    return out


@detects("cudnn-version")
def cudnn_version(facts: Facts) -> Iterator[Hit]:
    cuda = _cuda(facts)
    if cuda is None:
        return
    for bad_cuda, bad_cudnn, why in BAD_PAIRS:
        evidence = [
            f"cuDNN {cudnn} ({where}) with CUDA {bad_cuda}"
            for cudnn, where, header in _cudnn_versions(cuda)
            if cudnn == bad_cudnn and _major_minor(_cuda_for(cuda, header)) == bad_cuda
        ]
        if evidence:
            yield Hit(
                Severity.ERROR,
                (*evidence, f"known bad: {why}"),
                detail=f"CUDA {bad_cuda} + cuDNN {bad_cudnn}",
            )
    header_majors = {
        _version(h.version).major: h for h in cuda.cudnn_headers if _version(h.version)
    }
    new = [h for major, h in sorted(header_majors.items()) if major >= 8]
    for lib in cuda.caffe_libraries:
        removed = sorted(REMOVED_IN_CUDNN_8 & set(lib.cudnn_imports))
        if not removed:
            continue
        loaded = [n for n in lib.needed if n.soname.startswith("libcudnn.so.")]
        too_new = [
            n
            for n in loaded
            if (_version(_soname_version(n.soname)) or Version("0")) >= Version("8")
        ]
        if too_new or new:
            evidence = [f"{lib.path} calls {', '.join(removed)}, which cuDNN 8 removed"]
            evidence += [f"it links {n.soname} ({n.path or 'not found'})" for n in too_new]
            evidence += [f"the cuDNN header here is {h.version} ({h.path})" for h in new]
            yield Hit(
                Severity.ERROR if too_new else Severity.WARNING,
                tuple(evidence),
                detail="upstream Caffe's cuDNN 7 API with cuDNN ≥ 8",
            )
    removed_src = sorted(REMOVED_IN_CUDNN_8 & set(cuda.source_cudnn_calls))
    if removed_src and new:
        yield Hit(
            Severity.ERROR,
            (
                f"{cuda.caffe_source} calls {', '.join(removed_src)}, which cuDNN 8 removed",
                *(f"the cuDNN header a build would use is {h.version} ({h.path})" for h in new),
            ),
            detail="this Caffe source does not build with cuDNN ≥ 8",
        )
    for lib in cuda.caffe_libraries:
        yield from _cudnn_loaded(lib)
    lib_majors = {
        v.split(".")[0]
        for name in cuda.cache_cuda
        if name.startswith("libcudnn.so.") and (v := _soname_version(name))
    }
    for major, h in sorted(header_majors.items()):
        if lib_majors and str(major) not in lib_majors:
            yield Hit(
                Severity.WARNING,
                (
                    f"{h.path} says cuDNN {h.version}, but the linker cache "
                    f"{cuda.ld_so_cache} has only "
                    + ", ".join(sorted(n for n in cuda.cache_cuda if n.startswith("libcudnn.so."))),
                ),
                "Install the cuDNN library of the same release as the header (or the header "
                "of the library's release), then rebuild Caffe.",
                detail="header and library disagree",
            )


def _cudnn_loaded(lib: CaffeLibrary) -> Iterator[Hit]:
    """The cuDNN the library really loads, as it answers for itself, against the cuDNN
    the build was compiled with, the soname it asks for and its own CUDA runtime."""
    c = lib.cudnn
    if c is None:
        return
    if c.error:
        # cuDNN 9's and 8's words when a sub-library is missing beside the front one.
        incomplete = any(w in c.error for w in ("Unable to load any of", "Could not load library"))
        yield Hit(
            Severity.ERROR if incomplete else Severity.WARNING,
            (
                f"{lib.path} loads {c.soname} from {c.path}; asked its version "
                f"(cudnnGetVersion) in a child process: {c.error.split('` ', 1)[-1]}",
            ),
            "Reinstall cuDNN whole: every libcudnn_*.so of one release in one directory "
            "(cuDNN 9 loads libcudnn_graph, _ops, _cnn… beside libcudnn.so at run time)."
            if incomplete
            else None,
            detail=f"{c.path.name} is incomplete"
            if incomplete
            else f"{c.path.name} did not answer",
        )
        return
    loaded = _version(c.version)
    if loaded is None:
        return
    wanted = _version(_soname_version(c.soname))
    misnamed = wanted is not None and loaded.major != wanted.major
    if misnamed:
        yield Hit(
            Severity.ERROR,
            (
                f"{lib.path} needs {c.soname}; the loader gives it {c.path}, "
                f"which says it is cuDNN {c.version}",
            ),
            f"Point {c.soname} at a cuDNN {wanted.major} library (the one Caffe was built "
            "with), or rebuild Caffe against this cuDNN.",
            detail=f"{c.soname} is cuDNN {c.version}",
        )
    record = lib.record
    built = _version(record.cudnn) if record else None
    if record and built is not None:
        if loaded.major != built.major:
            if not misnamed:  # else the soname's finding tells the same story
                yield Hit(
                    Severity.ERROR,
                    (
                        f"{record.path} says Caffe was compiled against cuDNN {record.cudnn}; "
                        f"{lib.path} loads cuDNN {c.version} ({c.path})",
                    ),
                    f"Install cuDNN {built.major}.x (at least {record.cudnn}) where Caffe finds "
                    f"{c.soname}, or rebuild Caffe against cuDNN {loaded.major}.",
                    detail=f"compiled with cuDNN {record.cudnn}, loads {c.version}",
                )
        elif (loaded.major, loaded.minor) < (built.major, built.minor):
            # Patch releases are compatible both ways; a minor release only with code
            # built against the same or an older minor (NVIDIA's API compatibility).
            yield Hit(
                Severity.WARNING,
                (
                    f"{record.path} says Caffe was compiled against cuDNN {record.cudnn}; "
                    f"{lib.path} loads the older cuDNN {c.version} ({c.path})",
                    f"cuDNN {loaded.major}.{loaded.minor} is not guaranteed to run code built "
                    f"against {built.major}.{built.minor}: a minor release is compatible only "
                    "with code built against the same or an older minor",
                ),
                f"Install cuDNN {built.major}.{built.minor} or a newer {built.major}.x where "
                f"Caffe finds {c.soname} (it loads {c.path} now), or rebuild Caffe against "
                f"cuDNN {c.version}.",
                detail=f"compiled with cuDNN {record.cudnn}, loads the older {c.version}",
            )
    runtime = _runtime_of(lib)
    source = f"{lib.path} links libcudart.so.{runtime}"
    if runtime is None and record and record.cuda:
        runtime, source = record.cuda, f"{record.path} says Caffe was built with CUDA {record.cuda}"
    ours, theirs = _version(runtime), _version(c.cuda)
    if ours is not None and theirs is not None and ours.major != theirs.major:
        yield Hit(
            Severity.ERROR,
            (
                f"{c.path} is cuDNN {c.version} built for CUDA {c.cuda} "
                f"(cudnnGetCudartVersion); {source} (CUDA {ours.major})",
            ),
            f"Install the cuDNN {loaded.major} build for CUDA {ours.major} (e.g. the "
            f"nvidia-cudnn-cu{ours.major} wheel) where Caffe finds {c.soname}.",
            detail=f"cuDNN for CUDA {theirs.major} with a CUDA {ours.major} Caffe",
        )


def _arch_number(cc: str) -> int | None:
    m = re.match(r"(\d+)\.(\d+)$", cc.strip())
    return int(m.group(1)) * 10 + int(m.group(2)) if m else None


def _runs_on(archs: tuple[str, ...], cc: int) -> bool:
    """Whether a binary with these targets has code for a GPU of capability `cc` (86 = 8.6)."""
    for a in archs:
        kind, _, num = a.partition("_")
        digits = re.match(r"(\d+)([af]?)$", num)
        if not digits:
            continue
        n, suffix = int(digits.group(1)), digits.group(2)
        if suffix == "a" and n != cc:
            continue  # sm_90a, compute_90a: that one GPU only
        if kind == "sm" and n // 10 == cc // 10 and n <= cc:
            return True  # cubins run on the same major, equal or newer minor
        if kind == "compute" and n <= cc and (suffix != "f" or n // 10 == cc // 10):
            return True  # PTX is compiled for newer GPUs at load time (a family's: its own)
    return False


@detects("cuda-arch")
def cuda_arch(facts: Facts) -> Iterator[Hit]:
    cuda = _cuda(facts)
    if cuda is None:
        return
    for gpu in cuda.gpus:
        cc = _arch_number(gpu.compute_capability or "")
        if cc is None:
            continue
        used = {_runtime_of(lib) for lib in cuda.caffe_libraries} - {None}
        for t in cuda.toolkits:
            v = _version(t.version)
            if v is None or v.major not in ARCH_RANGES:
                continue
            low, high = ARCH_RANGES[v.major]
            if low <= cc and (high is None or cc <= high):
                continue
            span = f"sm_{low} to sm_{high}" if high else f"sm_{low} and newer"
            only = len(cuda.toolkits) == 1 or any(u.split(".")[0] == str(v.major) for u in used)
            yield Hit(
                Severity.ERROR if only else Severity.WARNING,
                (
                    f"GPU {gpu.index} ({gpu.name}) is compute capability {gpu.compute_capability} "
                    f"(sm_{cc}); CUDA {t.version} at {t.root or t.nvcc} builds for {span}",
                ),
                detail=f"CUDA {t.version} cannot target sm_{cc}",
            )
        for lib in cuda.caffe_libraries:
            archs, where = _architectures(lib)
            if archs and not _runs_on(archs, cc):
                yield Hit(
                    Severity.ERROR,
                    (
                        f"{lib.path} holds code for {', '.join(archs)} ({where}); GPU "
                        f"{gpu.index} ({gpu.name}) needs sm_{cc} or PTX for ≤ compute_{cc}",
                    ),
                    "Rebuild Caffe for this GPU: -DCUDA_ARCH_NAME=Manual "
                    f'-DCUDA_ARCH_BIN="{gpu.compute_capability}" '
                    f'-DCUDA_ARCH_PTX="{gpu.compute_capability}" with a CUDA that supports it.',
                    detail=f"no kernels for {gpu.name}",
                )


def _holds(lib: CaffeLibrary) -> str:
    """What a GPU build carries: "CUDA 13.0 runtime; cuDNN 9.13.1; code for sm_75 (…)"."""
    runtime = (lib.cudart and lib.cudart.version) or _runtime_of(lib)
    holds = [f"CUDA {runtime} runtime"] if runtime else []
    if lib.cudnn and lib.cudnn.version:
        holds.append(f"cuDNN {lib.cudnn.version}")
    archs, where = _architectures(lib)
    if archs:
        holds.append(f"code for {', '.join(archs)} ({where})")
    elif archs is None:
        holds.append(f"architectures {lib.architectures_note or 'unknown'}")
    elif lib.architectures_note:  # pycaffe's _caffe.so: "no device code of its own; …"
        holds.append(lib.architectures_note)
    return f"{lib.path} is a GPU build (CUDA)" + (f": {'; '.join(holds)}" if holds else "")


def _runtime_says(lib: CaffeLibrary) -> str | None:
    r = lib.cudart
    if r is None or r.error:
        return None
    if r.status:
        return f"Caffe's CUDA runtime ({r.path}) says: cudaGetDeviceCount() → {r.status}"
    if r.devices is not None:
        return f"Caffe's CUDA runtime ({r.path}) counts {r.devices} GPU(s)"
    return None


def _no_gpu(cuda: CudaFacts, d: Driver, libs: list[CaffeLibrary]) -> Hit:
    """CUDA builds on a machine where no GPU can be used: what they hold, and why not."""
    evidence = [_holds(lib) for lib in sorted(libs, key=lambda lib: not lib.architectures)]
    driverless = d.libcuda is not None and d.libcuda.path is None
    if driverless:
        evidence.append(
            "no NVIDIA driver: the loader finds no libcuda.so.1 (LD_LIBRARY_PATH: "
            f"{':'.join(cuda.ld_library_path) or 'unset'}; cache: {cuda.ld_so_cache}; "
            "the system directories)"
        )
    elif d.libcuda is not None and d.libcuda.path is not None:
        evidence.append(f"the driver's libcuda.so.1 is {d.libcuda.path} ({d.libcuda.how})")
    evidence.append(
        "no nvidia-smi on PATH"
        + (f"; kernel driver {d.version} loaded" if d.version else "; no NVIDIA kernel module")
    )
    evidence += list(dict.fromkeys(s for lib in libs if (s := _runtime_says(lib))))
    runtimes = sorted({r for lib in libs if (r := _runtime_of(lib))})
    return Hit(
        Severity.WARNING,
        tuple(evidence),
        "CPU mode works here (caffe.set_mode_cpu(), or solver_mode: CPU); GPU mode needs an "
        "NVIDIA GPU with a driver for CUDA "
        + (", ".join(runtimes) if runtimes else "this build's version")
        + " or newer (nvidia-smi then lists it). For a machine that never has a GPU, "
        "build a CPU-only Caffe: `caffedoc build --cpu-only`.",
        detail="CUDA build, no usable GPU" + (" (no NVIDIA driver)" if driverless else ""),
    )


@detects("gpu-driver")
def gpu_driver(facts: Facts) -> Iterator[Hit]:
    cuda = _cuda(facts)
    if cuda is None:
        return
    d = cuda.driver
    gpu_builds = [lib for lib in cuda.caffe_libraries if lib.gpu_build]
    if d.error:
        yield Hit(Severity.ERROR, (f"`{d.nvidia_smi}` failed: {d.error}",))
        return
    if d.nvidia_smi is None:
        if gpu_builds:
            yield _no_gpu(cuda, d, gpu_builds)
        return
    if not d.gpus:
        yield Hit(Severity.ERROR, (f"`{d.nvidia_smi}` ran but lists no GPU",))
    supports = _version(d.cuda_version)
    told: set[str] = set()  # what a runtime said, once for all the libraries sharing it
    for lib in gpu_builds:
        runtime = _version(_runtime_of(lib))
        says = _runtime_says(lib)
        if supports and runtime and Version(f"{runtime.major}.{runtime.minor}") > supports:
            yield Hit(
                Severity.ERROR,
                (
                    f"{lib.path} uses the CUDA {runtime} runtime; driver {d.version} "
                    f"supports CUDA {d.cuda_version} at most",
                    *([says] if says and lib.cudart and lib.cudart.status else []),
                ),
                detail=f"driver {d.version} too old for CUDA {runtime}",
            )
        elif d.gpus and says and lib.cudart and lib.cudart.status and says not in told:
            # nvidia-smi lists GPUs, yet the runtime Caffe loads cannot use them.
            told.add(says)
            gpus = ", ".join(f"GPU {g.index} ({g.name})" for g in d.gpus)
            error = lib.cudart.status.split(":")[0]
            yield Hit(
                Severity.ERROR,
                (f"nvidia-smi lists {gpus} (driver {d.version})", _holds(lib), says),
                detail=f"Caffe's CUDA runtime cannot use the GPU ({error})",
            )
