"""The CUDA area: toolkits, driver and GPUs, cuDNN, the linker cache, Caffe's own libraries.

Each subject is its own probe (`toolkits`, `driver`, `cudnn`, `binaries`); this
one adds the loader's coverage of every directory holding CUDA libraries, and
puts the area together.

Why this much: a CUDA Caffe fails to load or run for reasons spread over several
places (a toolkit's version, a cuDNN header and library that disagree, a library
directory the dynamic loader never searches, a driver too old for the runtime).
The loader's view is reconstructed from the same inputs ld.so uses (ld.so.conf
and its includes, the cache as `ldconfig -p` prints it, LD_LIBRARY_PATH, each
library's RUNPATH), so a test can point all of them at a private configuration;
`loader` does the resolving, for the caffe area too.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from caffedoc import host
from caffedoc.probes import Context, Session, probe
from caffedoc.probes.binaries import CaffeBinaries, CaffeLibrary
from caffedoc.probes.cudnn import CudnnHeader
from caffedoc.probes.driver import Driver, Gpu
from caffedoc.probes.loader import (
    cache_lookup,
    conf_dirs,
    expand,
    ld_library_path,
    multiarch,
    read_cache,
    system_dirs,
)
from caffedoc.probes.toolkits import Toolkit

# Libraries of the toolkit and cuDNN that a CUDA build of Caffe links.
CUDA_LIB = re.compile(
    r"^lib(cudnn\w*|cudart|cublas|cublasLt|curand|cufft|cusparse|cusolver|nvrtc)\.so"
)


@dataclass(frozen=True)
class LibraryDir:
    """A directory holding CUDA libraries, and whether the loader would search it."""

    path: Path
    libraries: tuple[str, ...]
    # "ld.so.conf", "LD_LIBRARY_PATH", "system directory", "RUNPATH of libcaffe.so…" or None
    covered_by: str | None
    not_in_cache: tuple[str, ...]  # sonames here the cache lacks although the conf lists the dir


@dataclass(frozen=True)
class CudaFacts:
    toolkits: tuple[Toolkit, ...]
    driver: Driver
    cudnn_headers: tuple[CudnnHeader, ...]
    ld_so_conf: Path
    ld_so_cache: Path
    conf_dirs: tuple[Path, ...]
    conf_includes: tuple[str, ...]  # the `include` patterns, e.g. /etc/ld.so.conf.d/*.conf
    cache_error: str | None  # ldconfig could not read the cache
    elf_error: str | None  # readelf could not examine Caffe's libraries
    cache_cuda: dict[str, str]  # soname → path, CUDA libraries only
    ld_library_path: tuple[str, ...]
    library_dirs: tuple[LibraryDir, ...]
    caffe_libraries: tuple[CaffeLibrary, ...]
    caffe_source: Path | None  # a Caffe source tree's cudnn_conv_layer.cpp
    source_cudnn_calls: tuple[str, ...] = field(default_factory=tuple)
    gpu_expected: bool = True  # the user's word (check --no-gpu): see Context

    @property
    def gpus(self) -> tuple[Gpu, ...]:
        return self.driver.gpus


# ---------------------------------------------------------------- linker configuration


def _library_dirs(
    candidates: Iterable[Path],
    conf_dirs: list[Path],
    ld_library_path: list[str],
    cache: Mapping[str, list[tuple[str, str]]],
    runpaths: Mapping[str, str] | None = None,
) -> list[LibraryDir]:
    """`runpaths`: directory → the Caffe library whose RUNPATH names it (a relocatable
    install finds its CUDA libraries there, the loader's configuration aside)."""
    runpaths = runpaths or {}
    conf = {os.path.realpath(d) for d in conf_dirs}
    llp = {os.path.realpath(d) for d in ld_library_path if d}
    system = {os.path.realpath(d) for d in system_dirs()}
    cached = {
        os.path.realpath(p)
        for name, entries in cache.items()
        if CUDA_LIB.match(name)
        for _f, p in entries
    }
    out: list[LibraryDir] = []
    seen: set[str] = set()
    for d in candidates:
        real = os.path.realpath(d)
        if real in seen or not os.path.isdir(real):
            continue
        seen.add(real)
        try:
            names = sorted(e.name for e in os.scandir(real) if CUDA_LIB.match(e.name))
        except OSError:
            continue
        # Only names the loader asks for (libcudnn.so.7), not the link-time libcudnn.so.
        sonames = tuple(n for n in names if re.search(r"\.so\.\d", n))
        if not sonames:
            continue
        covered = (
            "ld.so.conf"
            if real in conf
            else "LD_LIBRARY_PATH"
            if real in llp
            else "system directory"
            if real in system
            else f"RUNPATH of {runpaths[real]}"
            if real in runpaths
            else None
        )
        missing = tuple(
            n
            for n in sonames
            if covered == "ld.so.conf" and os.path.realpath(os.path.join(real, n)) not in cached
        )
        out.append(LibraryDir(Path(real), sonames, covered, missing))
    return out


def _source_cudnn_calls(ctx: Context) -> tuple[Path | None, tuple[str, ...]]:
    if not ctx.caffe_dir:
        return None, ()
    source = ctx.caffe_dir / "src" / "caffe" / "layers" / "cudnn_conv_layer.cpp"
    text = host.read_text(source)
    if text is None:
        return None, ()
    return source, tuple(sorted(set(re.findall(r"\b(cudnn\w+)\s*\(", text))))


def _summarize(f: CudaFacts) -> list[str]:
    lines = []
    if f.toolkits:
        kits = "; ".join(
            f"{t.version or 'version unknown'} ({t.root or t.nvcc})" for t in f.toolkits
        )
        lines.append(f"CUDA toolkits: {kits}")
    else:
        lines.append("CUDA toolkits: none found")
    d = f.driver
    if d.gpus:
        gpus = ", ".join(
            f"GPU {g.index}: {g.name} (compute {g.compute_capability or '?'})" for g in d.gpus
        )
        lines.append(f"NVIDIA driver {d.version}, supports CUDA {d.cuda_version or '?'}; {gpus}")
    elif d.error:
        lines.append(f"NVIDIA driver: nvidia-smi failed: {d.error}")
    elif d.version:
        lines.append(f"NVIDIA kernel driver {d.version} is loaded, but there is no nvidia-smi")
    elif d.libcuda is not None and d.libcuda.path is not None:
        lines.append(f"no nvidia-smi, but the driver's libcuda.so.1 is here: {d.libcuda.path}")
    else:
        no_lib = "; libcuda.so.1 not found" if d.libcuda is not None else ""
        lines.append(
            f"No NVIDIA GPU or driver here (no nvidia-smi{no_lib}): Caffe can run in CPU mode only"
        )
    if f.cudnn_headers:
        heads = ", ".join(f"{h.version} ({h.path})" for h in f.cudnn_headers)
        libs = ", ".join(sorted(n for n in f.cache_cuda if n.startswith("libcudnn.so."))) or "none"
        lines.append(f"cuDNN headers: {heads}; libcudnn in the linker cache: {libs}")
    else:
        lines.append("cuDNN: no header found")
    if f.elf_error:
        lines.append(f"Caffe's libraries not examined: {f.elf_error}")
    if f.cache_error:
        lines.append(f"linker cache {f.ld_so_cache} unreadable: {f.cache_error}")
    for lib in f.caffe_libraries:
        kind = "GPU build" if lib.gpu_build else "CPU build"
        archs = (
            ", ".join(lib.architectures)
            if lib.architectures
            else (lib.architectures_note or "architectures unknown")
        )
        lines.append(
            f"{lib.path.name} ({lib.path}): {kind}" + (f"; {archs}" if lib.gpu_build else "")
        )
        runtimes = []
        if lib.cudnn:
            c = lib.cudnn
            said = c.error or f"{c.version}, built for CUDA {c.cuda or '?'}"
            runtimes.append(f"cuDNN {said} ({c.path})" if not c.error else f"{c.path}: {said}")
        if lib.cudart:
            r = lib.cudart
            said = r.error or (
                f"{r.version}, {r.devices} GPU(s)"
                if r.devices is not None
                else f"{r.version}, {r.status}"
            )
            runtimes.append(
                f"CUDA runtime {said} ({r.path})" if not r.error else f"{r.path}: {said}"
            )
        if runtimes:
            lines.append(f"{lib.path.name} loads " + "; ".join(runtimes))
    return lines


@probe("cuda", ("toolkits", "driver", "cudnn", "binaries"), _summarize)
def gather(
    session: Session,
    toolkits: tuple[Toolkit, ...],
    driver: Driver,
    headers: tuple[CudnnHeader, ...],
    binaries: CaffeBinaries,
) -> CudaFacts:
    ctx = session.ctx
    listed, includes = conf_dirs(ctx.ld_so_conf)
    cache, cache_error = read_cache(session)
    llp = ld_library_path(ctx.env)
    caffe_libs = binaries.libraries
    candidates: list[Path] = []
    for t in toolkits:
        if t.root:
            candidates += [t.root / "lib64", t.root / "lib"]
            candidates += [Path(p) for p in sorted(glob.glob(str(t.root / "targets/*/lib")))]
    for h in headers:
        prefix = h.path.parent.parent
        candidates += [prefix / "lib64", prefix / "lib", prefix / "lib" / multiarch()]
    for var in ("CUDNN_HOME", "CUDNN_ROOT", "CUDNN_PATH"):
        if ctx.env.get(var):
            candidates += [Path(ctx.env[var]) / "lib64", Path(ctx.env[var]) / "lib"]
    runpaths: dict[str, str] = {}
    for lib in caffe_libs:
        dirs = [expand(p, lib.path.parent) for p in lib.runpath]
        for d in dirs:
            runpaths.setdefault(os.path.realpath(d), lib.path.name)
        candidates += [*dirs, lib.path.parent]
    candidates += [Path(p) for p in llp] + listed + system_dirs()
    source, calls = _source_cudnn_calls(ctx)
    return CudaFacts(
        toolkits=toolkits,
        driver=driver,
        cudnn_headers=headers,
        ld_so_conf=ctx.ld_so_conf,
        ld_so_cache=ctx.ld_so_cache,
        conf_dirs=tuple(listed),
        conf_includes=tuple(includes),
        cache_error=cache_error,
        elf_error=binaries.elf_error,
        cache_cuda={
            name: p for name in cache if CUDA_LIB.match(name) and (p := cache_lookup(cache, name))
        },
        ld_library_path=tuple(llp),
        library_dirs=tuple(_library_dirs(candidates, listed, llp, cache, runpaths)),
        caffe_libraries=caffe_libs,
        gpu_expected=ctx.gpu_expected,
        caffe_source=source,
        source_cudnn_calls=calls,
    )
