"""Rules about the GPU itself: a CUDA that cannot target it, a Caffe with no code for
it, and a driver that is missing or too old for the runtime Caffe uses.

No GPU is not a problem in itself: a CPU build of Caffe needs none of this, so
the rules speak only when something that is there (a GPU build, a GPU, a cuDNN)
meets something that does not fit it. cuDNN and the loader's path have their own
modules (cudnn_version, cuda_library_path).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from packaging.version import Version

from caffedoc import knowledge
from caffedoc.detect import detects
from caffedoc.detect.cudafacts import architectures, cuda_facts, runtime_of, version
from caffedoc.findings import Hit, Severity
from caffedoc.probes import Facts
from caffedoc.probes.cuda import CaffeLibrary, CudaFacts, Driver


def target_ranges() -> dict[int, tuple[int, int | None]]:
    """Compute capabilities each CUDA major release builds for, (lowest, highest or None),
    from the cuda-arch entry's `[detect] targets` table (data, so a new CUDA is one line)."""
    table = knowledge.get("cuda-arch").detect["targets"]
    return {
        int(major): (span[0], span[1] if len(span) > 1 else None) for major, span in table.items()
    }


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
    cuda = cuda_facts(facts)
    if cuda is None:
        return
    ranges = target_ranges()
    for gpu in cuda.gpus:
        cc = _arch_number(gpu.compute_capability or "")
        if cc is None:
            continue
        used = {runtime_of(lib) for lib in cuda.caffe_libraries} - {None}
        for t in cuda.toolkits:
            v = version(t.version)
            if v is None or v.major not in ranges:
                continue
            low, high = ranges[v.major]
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
            archs, where = architectures(lib)
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
    runtime = (lib.cudart and lib.cudart.version) or runtime_of(lib)
    holds = [f"CUDA {runtime} runtime"] if runtime else []
    if lib.cudnn and lib.cudnn.version:
        holds.append(f"cuDNN {lib.cudnn.version}")
    archs, where = architectures(lib)
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
    runtimes = sorted({r for lib in libs if (r := runtime_of(lib))})
    # Where no GPU is meant to be, CPU mode working is the whole verdict: a note.
    if not cuda.gpu_expected:
        evidence.append("--no-gpu: no GPU is expected on this machine")
    return Hit(
        Severity.WARNING if cuda.gpu_expected else Severity.INFO,
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
    cuda = cuda_facts(facts)
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
    supports = version(d.cuda_version)
    told: set[str] = set()  # what a runtime said, once for all the libraries sharing it
    for lib in gpu_builds:
        runtime = version(runtime_of(lib))
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
