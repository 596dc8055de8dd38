"""CUDA facts: toolkits, driver and GPUs, cuDNN, the linker cache, Caffe's own libraries.

Why this much: a CUDA Caffe fails to load or run for reasons spread over several
places (a toolkit's version, a cuDNN header and library that disagree, a library
directory the dynamic loader never searches, a driver too old for the runtime).
The loader's view is reconstructed from the same inputs ld.so uses (ld.so.conf
and its includes, the cache as `ldconfig -p` prints it, LD_LIBRARY_PATH, each
library's RUNPATH), so a test can point all of them at a private configuration.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from caffedoc import host
from caffedoc.probes import Context, probe
from caffedoc.probes.python import introspect

# Libraries of the toolkit and cuDNN that a CUDA build of Caffe links.
CUDA_LIB = re.compile(
    r"^lib(cudnn\w*|cudart|cublas|cublasLt|curand|cufft|cusparse|cusolver|nvrtc)\.so"
)
GPU_BUILD_LIB = re.compile(r"^lib(cudart|cublas|curand|cudnn)\.so")
SBIN = ("/usr/sbin", "/sbin")


@dataclass(frozen=True)
class Toolkit:
    root: Path | None  # None for an nvcc whose install tree could not be found
    version: str | None
    found_by: tuple[str, ...]  # "nvcc on PATH", "CUDA_HOME", "/usr/local/cuda*"…
    nvcc: Path | None


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    compute_capability: str | None  # "8.6"


@dataclass(frozen=True)
class Driver:
    nvidia_smi: Path | None
    version: str | None  # the kernel driver's version
    cuda_version: str | None  # the newest CUDA runtime this driver supports
    gpus: tuple[Gpu, ...]
    error: str | None  # nvidia-smi exists but failed: its own words


@dataclass(frozen=True)
class CudnnHeader:
    path: Path
    version: str  # "7.6.5"


@dataclass(frozen=True)
class LibraryDir:
    """A directory holding CUDA libraries, and whether the loader would search it."""

    path: Path
    libraries: tuple[str, ...]
    covered_by: str | None  # "ld.so.conf", "LD_LIBRARY_PATH", "system directory" or None
    not_in_cache: tuple[str, ...]  # sonames here the cache lacks although the conf lists the dir


@dataclass(frozen=True)
class Needed:
    soname: str
    path: Path | None  # where the loader finds it; None: it does not resolve
    how: str | None  # "RUNPATH", "ld.so.cache", "LD_LIBRARY_PATH", "loaded by the interpreter"…
    real_name: str | None  # the resolved file's real name: libcudnn.so.7.6.5

    @property
    def resolved(self) -> bool:
        return self.path is not None or self.how == "loaded by the interpreter"


@dataclass(frozen=True)
class CaffeLibrary:
    path: Path
    found_by: str  # "--caffe", "the interpreter's caffe package", "RUNPATH of _caffe.so"
    needed: tuple[Needed, ...]
    runpath: tuple[str, ...]
    gpu_build: bool
    cudnn_imports: tuple[str, ...]  # cuDNN functions the library calls (GPU builds)
    architectures: tuple[str, ...] | None  # sm_75 (code), compute_75 (PTX); None: unknown
    architectures_note: str | None

    @property
    def unresolved(self) -> tuple[str, ...]:
        return tuple(n.soname for n in self.needed if not n.resolved)


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

    @property
    def gpus(self) -> tuple[Gpu, ...]:
        return self.driver.gpus


# ---------------------------------------------------------------- toolkits


def _version_of_root(root: Path) -> str | None:
    """A toolkit's version from the files it ships (newest layout first)."""
    text = host.read_text(root / "version.json")
    if text:
        try:
            return json.loads(text)["cuda"]["version"]
        except (ValueError, KeyError, TypeError):
            pass
    text = host.read_text(root / "version.txt")
    if text and (m := re.search(r"CUDA Version\s+([\d.]+)", text)):
        return m.group(1)
    for header in ("include/cuda_runtime_api.h", "include/cuda.h"):
        text = host.read_text(root / header, limit=1 << 16)
        if text and (m := re.search(r"#define\s+CUDA(?:RT)?_VERSION\s+(\d+)", text)):
            n = int(m.group(1))
            return f"{n // 1000}.{n % 1000 // 10}"
    return None


def _nvcc_version(nvcc: Path, ctx: Context) -> str | None:
    res = host.run([nvcc, "--version"], timeout=ctx.timeout, env=ctx.env)
    m = re.search(r"release [\d.]+, V([\d.]+)", res.stdout)
    return m.group(1) if m else None


def _is_toolkit(root: Path) -> bool:
    return (root / "include" / "cuda_runtime_api.h").exists()


def _toolkits(ctx: Context) -> list[Toolkit]:
    found: dict[str, tuple[Path, list[str]]] = {}

    def add(root: Path, how: str) -> None:
        if _is_toolkit(root):
            key = os.path.realpath(root)
            found.setdefault(key, (root, []))[1].append(how)

    for var in ("CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"):
        if ctx.env.get(var):
            add(Path(ctx.env[var]), var)
    stray: list[Path] = []
    for nvcc in host.which_all("nvcc", ctx.env.get("PATH", "")):
        root = Path(os.path.realpath(nvcc)).parent.parent
        if _is_toolkit(root):
            add(root, "nvcc on PATH")
        else:  # a wrapper script: its version is all we can learn
            stray.append(nvcc)
    for root in sorted(glob.glob("/usr/local/cuda*")) + sorted(glob.glob("/opt/cuda*")):
        add(Path(root), root)
    out = []
    for root, how in found.values():
        nvcc = root / "bin" / "nvcc"
        version = _version_of_root(root)
        if version is None and nvcc.exists():
            version = _nvcc_version(nvcc, ctx)
        out.append(Toolkit(root, version, tuple(how), nvcc if nvcc.exists() else None))
    known = {_release(t.version) for t in out}
    for nvcc in stray:  # a wrapper for one of the toolkits above adds nothing
        version = _nvcc_version(nvcc, ctx)
        if version is None or _release(version) not in known:
            out.append(Toolkit(None, version, ("nvcc on PATH",), nvcc))
    return out


def _release(version: str | None) -> str | None:
    """12.4.131 → 12.4"""
    return ".".join(version.split(".")[:2]) if version else None


# ---------------------------------------------------------------- driver


def _driver(ctx: Context) -> Driver:
    smi_path = host.which_all("nvidia-smi", ctx.env.get("PATH", "") + os.pathsep + "/usr/bin")
    module = host.read_text("/proc/driver/nvidia/version")
    kernel_version = None
    if module and (m := re.search(r"Kernel Module\s+([\d.]+)", module)):
        kernel_version = m.group(1)
    if not smi_path:
        return Driver(None, kernel_version, None, (), None)
    smi = smi_path[0]
    fields = "index,name,compute_cap,driver_version"
    res = host.run(
        [smi, f"--query-gpu={fields}", "--format=csv,noheader"], timeout=ctx.timeout, env=ctx.env
    )
    if not res.ok and "compute_cap" in res.output:  # drivers before 510 lack the field
        fields = "index,name,driver_version"
        res = host.run(
            [smi, f"--query-gpu={fields}", "--format=csv,noheader"],
            timeout=ctx.timeout,
            env=ctx.env,
        )
    if not res.ok:
        said = (res.output.strip().splitlines() or [res.describe()])[0]
        return Driver(smi, kernel_version, None, (), said)
    gpus, version = [], kernel_version
    for line in res.stdout.splitlines():
        cols = dict(zip(fields.split(","), (c.strip() for c in line.split(","))))
        if "index" not in cols or not cols["index"].isdigit():
            continue
        cc = cols.get("compute_cap")
        gpus.append(
            Gpu(int(cols["index"]), cols.get("name", "?"), cc if cc and cc[0].isdigit() else None)
        )
        version = cols.get("driver_version") or version
    header = host.run([smi], timeout=ctx.timeout, env=ctx.env)
    m = re.search(r"CUDA Version:\s*([\d.]+)", header.stdout)
    return Driver(smi, version, m.group(1) if m else None, tuple(gpus), None)


# ---------------------------------------------------------------- cuDNN headers


def _multiarch() -> str:
    return getattr(sys.implementation, "_multiarch", "") or ""


def _include_dirs(ctx: Context, toolkits: Iterable[Toolkit]) -> list[Path]:
    dirs = []
    for t in toolkits:
        if t.root:
            dirs.append(t.root / "include")
            dirs += [Path(p) for p in sorted(glob.glob(str(t.root / "targets" / "*" / "include")))]
    for var in ("CUDNN_HOME", "CUDNN_ROOT", "CUDNN_PATH"):
        if ctx.env.get(var):
            dirs.append(Path(ctx.env[var]) / "include")
    dirs += [Path("/usr/include"), Path("/usr/include") / _multiarch(), Path("/usr/local/include")]
    return dirs


def _cudnn_headers(dirs: Iterable[Path]) -> list[CudnnHeader]:
    out: list[CudnnHeader] = []
    seen: set[str] = set()
    for d in dirs:
        for name in ("cudnn_version.h", "cudnn.h"):
            path = d / name
            real = os.path.realpath(path)
            if real in seen:
                continue
            text = host.read_text(path, limit=1 << 16)
            if not text:
                continue
            parts = [
                re.search(rf"#define\s+CUDNN_{p}\s+(\d+)", text)
                for p in ("MAJOR", "MINOR", "PATCHLEVEL")
            ]
            if parts[0]:
                seen.add(real)
                out.append(CudnnHeader(path, ".".join(m.group(1) for m in parts if m)))
                break  # cudnn.h of cuDNN ≥ 8 only includes cudnn_version.h
    return out


# ---------------------------------------------------------------- linker configuration


def _conf_dirs(conf: Path, seen: set[str] | None = None) -> tuple[list[Path], list[str]]:
    """Directories an ld.so.conf lists, `include` lines followed (relative to the file)."""
    seen = set() if seen is None else seen
    dirs: list[Path] = []
    includes: list[str] = []
    real = os.path.realpath(conf)
    if real in seen:
        return dirs, includes
    seen.add(real)
    for raw in (host.read_text(conf) or "").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("hwcap "):
            continue
        if line.startswith("include "):
            for pattern in line.split()[1:]:
                pattern = str(conf.parent / pattern) if not os.path.isabs(pattern) else pattern
                includes.append(pattern)
                for inc in sorted(glob.glob(pattern)):
                    more, nested = _conf_dirs(Path(inc), seen)
                    dirs += more
                    includes += nested
            continue
        dirs += [Path(d.split("=", 1)[0]) for d in re.split(r"[\s:,]+", line) if d]
    return dirs, includes


def _ldconfig(ctx: Context) -> Path | None:
    found = host.which_all("ldconfig", ctx.env.get("PATH", "") + os.pathsep + os.pathsep.join(SBIN))
    return found[0] if found else None


def _read_cache(ctx: Context) -> tuple[dict[str, list[tuple[str, str]]], str | None]:
    """soname → [(flags, path)] as `ldconfig -p -C CACHE` prints them."""
    ldconfig = _ldconfig(ctx)
    if ldconfig is None:
        return {}, "ldconfig not found"
    res = host.run([ldconfig, "-p", "-C", ctx.ld_so_cache], timeout=ctx.timeout, env=ctx.env)
    if not res.ok:
        return {}, f"{res.describe()}: {res.stderr.strip()[:200]}"
    cache: dict[str, list[tuple[str, str]]] = {}
    for line in res.stdout.splitlines():
        m = re.match(r"^\s+(\S+) \(([^)]*)\).* => (.+)$", line)
        if m:
            cache.setdefault(m.group(1), []).append((m.group(2), m.group(3).strip()))
    return cache, None


def _cache_lookup(cache: Mapping[str, list[tuple[str, str]]], soname: str) -> str | None:
    entries = cache.get(soname, [])
    wide = [p for flags, p in entries if "64" in flags]
    return (wide or [p for _f, p in entries] or [None])[0]


def _system_dirs() -> list[Path]:
    arch = _multiarch()
    dirs = [Path("/lib") / arch, Path("/usr/lib") / arch] if arch else []
    return [*dirs, Path("/lib64"), Path("/usr/lib64"), Path("/lib"), Path("/usr/lib")]


def _library_dirs(
    candidates: Iterable[Path],
    conf_dirs: list[Path],
    ld_library_path: list[str],
    cache: Mapping[str, list[tuple[str, str]]],
) -> list[LibraryDir]:
    conf = {os.path.realpath(d) for d in conf_dirs}
    llp = {os.path.realpath(d) for d in ld_library_path if d}
    system = {os.path.realpath(d) for d in _system_dirs()}
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
            else None
        )
        missing = tuple(
            n
            for n in sonames
            if covered == "ld.so.conf" and os.path.realpath(os.path.join(real, n)) not in cached
        )
        out.append(LibraryDir(Path(real), sonames, covered, missing))
    return out


# ---------------------------------------------------------------- Caffe's libraries


class _NoReadelf(Exception):
    """readelf (binutils) is missing: Caffe's libraries cannot be examined."""


@dataclass
class _Elf:
    needed: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    device_code: bool = False  # a .nv_fatbin section: kernels compiled by nvcc


def _readelf_dynamic(paths: list[Path], ctx: Context) -> dict[str, _Elf]:
    """DT_NEEDED, RUNPATH, RPATH and CUDA code of each file, from one `readelf` run."""
    if not paths:
        return {}
    res = host.run(["readelf", "-W", "-d", "-S", *paths], timeout=ctx.timeout, env=ctx.env)
    if res.error:
        raise _NoReadelf(res.describe())
    out: dict[str, _Elf] = {}
    current = _Elf() if len(paths) == 1 else None
    if current is not None:
        out[str(paths[0])] = current
    for line in res.stdout.splitlines():
        if line.startswith("File: "):
            current = out.setdefault(line[6:].strip(), _Elf())
            continue
        if current is not None and " .nv_fatbin " in line:
            current.device_code = True
        m = re.search(r"\((NEEDED|RUNPATH|RPATH)\)\s+[^\[]*\[(.*)\]", line)
        if not m or current is None:
            continue
        kind, value = m.groups()
        if kind == "NEEDED":
            current.needed.append(value)
        else:
            getattr(current, kind.lower()).extend(p for p in value.split(":") if p)
    return out


def _dyn_imports(path: Path, ctx: Context, prefix: str) -> list[str]:
    """Undefined dynamic symbols starting with `prefix`: the functions it calls elsewhere."""
    res = host.run(["readelf", "-W", "--dyn-syms", path], timeout=ctx.timeout, env=ctx.env)
    names = set()
    for line in res.stdout.splitlines():
        if prefix in line and " UND " in line:
            name = line.split()[-1].split("@")[0]
            if name.startswith(prefix):
                names.add(name)
    return sorted(names)


def _architectures(
    path: Path, ctx: Context, toolkits: Iterable[Toolkit]
) -> tuple[tuple[str, ...] | None, str | None]:
    tools = [t.root / "bin" / "cuobjdump" for t in toolkits if t.root]
    tools = [t for t in tools if t.exists()] + host.which_all("cuobjdump", ctx.env.get("PATH", ""))
    if not tools:
        return None, "unknown: cuobjdump not found"
    res = host.run([tools[0], "--list-elf", "--list-ptx", path], timeout=ctx.timeout, env=ctx.env)
    if not res.ok and not res.stdout:
        return None, f"unknown: {res.describe()}"
    archs = []
    for line in res.stdout.splitlines():
        m = re.search(r"(ELF|PTX) file\s+\d+:.*?\bsm_(\d+\w?)", line)
        if m:
            name = ("sm_" if m.group(1) == "ELF" else "compute_") + m.group(2)
            if name not in archs:
                archs.append(name)
    return tuple(archs), None if archs else "no CUDA code in the library"


def _expand(entry: str, origin: Path) -> Path:
    return Path(entry.replace("$ORIGIN", str(origin)).replace("${ORIGIN}", str(origin)))


def _resolve(
    soname: str,
    elf: _Elf,
    origin: Path,
    ld_library_path: list[str],
    cache: Mapping[str, list[tuple[str, str]]],
    preloaded: set[str],
) -> Needed:
    """Where ld.so would find `soname` for this object, in ld.so's own order."""
    if "/" in soname:
        return Needed(soname, Path(soname) if os.path.exists(soname) else None, "path", None)
    if soname in preloaded:
        return Needed(soname, None, "loaded by the interpreter", None)
    searches: list[tuple[str, list[Path]]] = []
    if not elf.runpath:
        searches.append(("RPATH", [_expand(p, origin) for p in elf.rpath]))
    searches.append(("LD_LIBRARY_PATH", [Path(p) for p in ld_library_path if p]))
    searches.append(("RUNPATH", [_expand(p, origin) for p in elf.runpath]))
    for how, dirs in searches:
        for d in dirs:
            if (d / soname).exists():
                return _needed(soname, d / soname, how)
    hit = _cache_lookup(cache, soname)
    if hit and os.path.exists(hit):
        return _needed(soname, Path(hit), "ld.so.cache")
    for d in _system_dirs():
        if (d / soname).exists():
            return _needed(soname, d / soname, "system directory")
    return Needed(soname, None, None, None)


def _needed(soname: str, path: Path, how: str) -> Needed:
    return Needed(soname, path, how, Path(os.path.realpath(path)).name)


def _caffe_candidates(ctx: Context) -> list[tuple[Path, str]]:
    """libcaffe/_caffe files of the --caffe tree and of the interpreter's caffe package."""
    out: list[tuple[Path, str]] = []
    if ctx.caffe_dir:
        patterns = (
            "libcaffe*.so*",
            "lib*/libcaffe*.so*",
            "build/lib/libcaffe*.so*",
            ".build_release/lib/libcaffe*.so*",
            "distribute/lib/libcaffe*.so*",
            "python/caffe/_caffe*.so",
            "lib/python*/site-packages/caffe/_caffe*.so",
            "caffe/_caffe*.so",
        )
        for pattern in patterns:
            out += [(Path(p), "--caffe") for p in sorted(glob.glob(str(ctx.caffe_dir / pattern)))]
    # The python area has already asked the interpreter where `import caffe` comes from.
    winner = introspect(ctx, ctx.python).winner("caffe")
    if winner is not None:
        out += [(Path(p), "the interpreter's caffe package") for p in winner.extensions]
    unique: dict[str, tuple[Path, str]] = {}
    for path, how in sorted(out, key=lambda c: c[0].is_symlink()):  # real names first
        unique.setdefault(os.path.realpath(path), (path, how))
    return list(unique.values())


def _caffe_libraries(
    ctx: Context,
    toolkits: list[Toolkit],
    ld_library_path: list[str],
    cache: Mapping[str, list[tuple[str, str]]],
) -> list[CaffeLibrary]:
    todo = _caffe_candidates(ctx)
    if not todo:
        return []
    interpreter = Path(os.path.realpath(ctx.python))
    elves = _readelf_dynamic([interpreter] + [p for p, _ in todo], ctx)
    preloaded = set(elves.get(str(interpreter), _Elf()).needed)
    done: dict[str, CaffeLibrary] = {}
    while todo:
        path, how = todo.pop(0)
        elf = elves.get(str(path))
        if elf is None:
            continue
        needs = [
            _resolve(n, elf, path.parent, ld_library_path, cache, preloaded) for n in elf.needed
        ]
        gpu = elf.device_code or any(GPU_BUILD_LIB.match(n) for n in elf.needed)
        archs, note = (
            _architectures(path, ctx, toolkits) if gpu else (None, "CPU build: no CUDA code")
        )
        done[os.path.realpath(path)] = CaffeLibrary(
            path=path,
            found_by=how,
            needed=tuple(needs),
            runpath=tuple(elf.runpath or elf.rpath),
            gpu_build=gpu,
            cudnn_imports=tuple(_dyn_imports(path, ctx, "cudnn")) if gpu else (),
            architectures=archs,
            architectures_note=note,
        )
        # _caffe.so → libcaffe.so found through its RUNPATH: examine that one too.
        for n in needs:
            if (
                n.path
                and n.soname.startswith("libcaffe")
                and (os.path.realpath(n.path) not in done)
            ):
                more = _readelf_dynamic([n.path], ctx)
                elves[str(n.path)] = next(iter(more.values()), _Elf())
                todo.append((n.path, f"needed by {path.name}"))
    return list(done.values())


def _source_cudnn_calls(ctx: Context) -> tuple[Path | None, tuple[str, ...]]:
    if not ctx.caffe_dir:
        return None, ()
    source = ctx.caffe_dir / "src" / "caffe" / "layers" / "cudnn_conv_layer.cpp"
    text = host.read_text(source)
    if text is None:
        return None, ()
    return source, tuple(sorted(set(re.findall(r"\b(cudnn\w+)\s*\(", text))))


# ---------------------------------------------------------------- the probe


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
    else:
        lines.append("No NVIDIA GPU or driver here (no nvidia-smi): Caffe can run in CPU mode only")
    if f.cudnn_headers:
        heads = ", ".join(f"{h.version} ({h.path})" for h in f.cudnn_headers)
        libs = ", ".join(sorted(n for n in f.cache_cuda if n.startswith("libcudnn.so."))) or "none"
        lines.append(f"cuDNN headers: {heads}; libcudnn in the linker cache: {libs}")
    else:
        lines.append("cuDNN: no header found")
    if f.elf_error:
        lines.append(f"Caffe's libraries not examined: {f.elf_error} (install binutils)")
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
    return lines


@probe("cuda", _summarize)
def gather(ctx: Context) -> CudaFacts:
    toolkits = _toolkits(ctx)
    conf_dirs, includes = _conf_dirs(ctx.ld_so_conf)
    cache, cache_error = _read_cache(ctx)
    ld_library_path = [p for p in ctx.env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    headers = _cudnn_headers(_include_dirs(ctx, toolkits))
    try:
        caffe_libs, elf_error = _caffe_libraries(ctx, toolkits, ld_library_path, cache), None
    except _NoReadelf as exc:
        caffe_libs, elf_error = [], str(exc)
    candidates: list[Path] = []
    for t in toolkits:
        if t.root:
            candidates += [t.root / "lib64", t.root / "lib"]
            candidates += [Path(p) for p in sorted(glob.glob(str(t.root / "targets/*/lib")))]
    for h in headers:
        prefix = h.path.parent.parent
        candidates += [prefix / "lib64", prefix / "lib", prefix / "lib" / _multiarch()]
    for var in ("CUDNN_HOME", "CUDNN_ROOT", "CUDNN_PATH"):
        if ctx.env.get(var):
            candidates += [Path(ctx.env[var]) / "lib64", Path(ctx.env[var]) / "lib"]
    for lib in caffe_libs:
        candidates += [_expand(p, lib.path.parent) for p in lib.runpath]
        candidates.append(lib.path.parent)
    candidates += [Path(p) for p in ld_library_path] + conf_dirs + _system_dirs()
    source, calls = _source_cudnn_calls(ctx)
    return CudaFacts(
        toolkits=tuple(toolkits),
        driver=_driver(ctx),
        cudnn_headers=tuple(headers),
        ld_so_conf=ctx.ld_so_conf,
        ld_so_cache=ctx.ld_so_cache,
        conf_dirs=tuple(conf_dirs),
        conf_includes=tuple(includes),
        cache_error=cache_error,
        elf_error=elf_error,
        cache_cuda={
            name: p for name in cache if CUDA_LIB.match(name) and (p := _cache_lookup(cache, name))
        },
        ld_library_path=tuple(ld_library_path),
        library_dirs=tuple(_library_dirs(candidates, conf_dirs, ld_library_path, cache)),
        caffe_libraries=tuple(caffe_libs),
        caffe_source=source,
        source_cudnn_calls=calls,
    )
