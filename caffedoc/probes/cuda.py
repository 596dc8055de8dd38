"""CUDA facts: toolkits, driver and GPUs, cuDNN, the linker cache, Caffe's own libraries.

Why this much: a CUDA Caffe fails to load or run for reasons spread over several
places (a toolkit's version, a cuDNN header and library that disagree, a library
directory the dynamic loader never searches, a driver too old for the runtime).
The loader's view is reconstructed from the same inputs ld.so uses (ld.so.conf
and its includes, the cache as `ldconfig -p` prints it, LD_LIBRARY_PATH, each
library's RUNPATH), so a test can point all of them at a private configuration;
`loader` does the resolving, for the caffe area too.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from caffedoc import host
from caffedoc.build.install import RECORD, read_record
from caffedoc.probes import Context, fatbin, probe
from caffedoc.probes.loader import (
    Elf,
    Needed,
    NoReadelf,
    cache_lookup,
    closure,
    conf_dirs,
    expand,
    ld_library_path,
    multiarch,
    read_cache,
    resolve,
    system_dirs,
)
from caffedoc.probes.python import SCRIPTS, introspect, once

# Libraries of the toolkit and cuDNN that a CUDA build of Caffe links.
CUDA_LIB = re.compile(
    r"^lib(cudnn\w*|cudart|cublas|cublasLt|curand|cufft|cusparse|cusolver|nvrtc)\.so"
)
GPU_BUILD_LIB = re.compile(r"^lib(cudart|cublas|curand|cudnn)\.so")


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
    libcuda: Needed | None = None  # where the loader finds the driver's libcuda.so.1


@dataclass(frozen=True)
class CudnnHeader:
    path: Path
    version: str  # "7.6.5"


@dataclass(frozen=True)
class LibraryDir:
    """A directory holding CUDA libraries, and whether the loader would search it."""

    path: Path
    libraries: tuple[str, ...]
    # "ld.so.conf", "LD_LIBRARY_PATH", "system directory", "RUNPATH of libcaffe.so…" or None
    covered_by: str | None
    not_in_cache: tuple[str, ...]  # sonames here the cache lacks although the conf lists the dir


@dataclass(frozen=True)
class CudnnRuntime:
    """The cuDNN a Caffe library loads, and what it says of itself (in a child process)."""

    soname: str  # libcudnn.so.9, as the Caffe library needs it
    path: Path  # the file the loader picks
    version: str | None  # 9.13.1, from cudnnGetVersion()
    cuda: str | None  # 13.0, from cudnnGetCudartVersion(): the CUDA it was built for
    error: str | None  # the child could not ask: how it ended, in its own words


@dataclass(frozen=True)
class CudaRuntime:
    """The libcudart a Caffe library loads, and what it says (in a child process)."""

    soname: str  # libcudart.so.13
    path: Path
    version: str | None  # 13.0, from cudaRuntimeGetVersion()
    driver: str | None  # from cudaDriverGetVersion(): the CUDA the driver supports; "none"
    devices: int | None  # cudaGetDeviceCount(), None when it failed
    status: str | None  # cudaGetDeviceCount()'s error: "cudaErrorInsufficientDriver: CUDA …"
    error: str | None  # the child could not ask: how it ended


@dataclass(frozen=True)
class BuildRecord:
    """What caffedoc's build wrote into its install prefix (.caffedoc-build.json)."""

    path: Path
    cuda: str | None  # "13.0"
    cudnn: str | None  # "9.13.1"
    architectures: tuple[str, ...] | None  # ("sm_75", "compute_75")


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
    cudnn: CudnnRuntime | None = None
    cudart: CudaRuntime | None = None
    record: BuildRecord | None = None

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
    libcuda = _libcuda(ctx)
    if not smi_path:
        return Driver(None, kernel_version, None, (), None, libcuda)
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
        return Driver(smi, kernel_version, None, (), said, libcuda)
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
    return Driver(smi, version, m.group(1) if m else None, tuple(gpus), None, libcuda)


def _libcuda(ctx: Context) -> Needed | None:
    """Where the loader finds the driver's libcuda.so.1 (the CUDA runtime dlopens it);
    None when the loader's view cannot be built (no readelf)."""
    try:
        return resolve(ctx, "libcuda.so.1", Elf(), Path.cwd())
    except NoReadelf:
        return None


# ---------------------------------------------------------------- cuDNN headers


def _include_dirs(ctx: Context, toolkits: Iterable[Toolkit]) -> list[Path]:
    dirs = []
    for t in toolkits:
        if t.root:
            dirs.append(t.root / "include")
            dirs += [Path(p) for p in sorted(glob.glob(str(t.root / "targets" / "*" / "include")))]
    for var in ("CUDNN_HOME", "CUDNN_ROOT", "CUDNN_PATH"):
        if ctx.env.get(var):
            dirs.append(Path(ctx.env[var]) / "include")
    dirs += [Path("/usr/include"), Path("/usr/include") / multiarch(), Path("/usr/local/include")]
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


# ---------------------------------------------------------------- Caffe's libraries


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


def _architectures(path: Path) -> tuple[tuple[str, ...] | None, str | None]:
    """The targets in the library's fatbinary (fatbin.py), and a note when there is none."""
    try:
        archs = fatbin.targets(path)
    except (OSError, fatbin.NotElf) as exc:
        return None, f"unknown: {getattr(exc, 'strerror', None) or exc}"
    return archs, None if archs else "no CUDA code in the library"


# ---------------------------------------------------------------- asking CUDA libraries


def _version_number(n: int, base: int) -> str:
    """cuDNN 91301 (base 10000, cuDNN ≥ 9) → 9.13.1; 7605 (base 1000) → 7.6.5."""
    return f"{n // base}.{n % base // 100}.{n % 100}"


def _cuda_number(n: int) -> str:
    """13000 → 13.0, 12090 → 12.9 (CUDA's major * 1000 + minor * 10)."""
    return f"{n // 1000}.{n % 1000 // 10}"


def _ask(ctx: Context, kind: str, path: Path) -> tuple[dict, str | None]:
    """Run scripts/ask_cuda_library.py on `path` in a child, once per real file;
    (its answers, why none)."""

    def ask() -> tuple[dict, str | None]:
        script = (SCRIPTS / "ask_cuda_library.py").read_text(encoding="utf-8")
        # -I: caffedoc's own interpreter, without a user's PYTHONPATH or sitecustomize.
        argv = [sys.executable, "-I", "-c", script, kind, path]
        res = host.run(argv, timeout=ctx.timeout, env=ctx.env)
        ended = res.describe().replace(script, "<caffedoc/probes/scripts/ask_cuda_library.py>")
        if res.ok:
            try:
                return json.loads(res.stdout.strip().splitlines()[-1]), None
            except (ValueError, IndexError):
                return {}, f"{ended} but printed no answer"
        said = [line.strip() for line in res.stderr.splitlines() if line.strip()]
        return {}, f"{ended}: {' / '.join(said[-2:])}" if said else ended

    return once(ctx, (f"ask {kind}", os.path.realpath(path)), ask)


def _loaded(needed: tuple[Needed, ...], prefix: str) -> tuple[str, Path] | None:
    """(soname, path) of the resolved library whose soname starts with `prefix`."""
    return next(((n.soname, n.path) for n in needed if n.soname.startswith(prefix) and n.path),
                None)  # fmt: skip


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def _cudnn_runtime(ctx: Context, needed: tuple[Needed, ...]) -> CudnnRuntime | None:
    found = _loaded(needed, "libcudnn.so.")
    if found is None:
        return None
    soname, path = found
    got, error = _ask(ctx, "cudnn", path)
    number = _positive(got.get("cudnnGetVersion"))
    cudart = _positive(got.get("cudnnGetCudartVersion"))
    version = _version_number(number, 10000 if number >= 90000 else 1000) if number else None
    cuda = _cuda_number(cudart) if cudart else None
    return CudnnRuntime(soname, path, version, cuda, error)


def _cuda_runtime(ctx: Context, needed: tuple[Needed, ...]) -> CudaRuntime | None:
    found = _loaded(needed, "libcudart.so.")
    if found is None:
        return None
    soname, path = found
    got, error = _ask(ctx, "cudart", path)
    runtime, driver = _positive(got.get("cudaRuntimeGetVersion")), got.get("cudaDriverGetVersion")
    status = None
    if got.get("status"):
        name = got.get("cudaGetErrorName") or f"error {got['status']}"
        words = got.get("cudaGetErrorString")
        status = f"{name}: {words}" if words else name
    supported = None  # the CUDA the driver supports; "none" when it reports 0 (no driver)
    if isinstance(driver, int):
        supported = _cuda_number(driver) if driver > 0 else "none"
    return CudaRuntime(
        soname=soname,
        path=path,
        version=_cuda_number(runtime) if runtime else None,
        driver=supported,
        devices=got.get("cudaGetDeviceCount"),
        status=status,
        error=error,
    )


def _build_record(path: Path) -> BuildRecord | None:
    """The record of the caffedoc install `path` belongs to: <prefix>/lib/libcaffe.so or
    <prefix>/python/caffe/_caffe.so, the record in <prefix>."""
    for prefix in (path.parent.parent, path.parent.parent.parent):
        data = read_record(prefix)
        if not isinstance(data, dict):
            continue
        archs = data.get("architectures")
        return BuildRecord(
            path=Path(os.path.normpath(prefix / RECORD)),
            cuda=str(data["cuda"]) if data.get("cuda") else None,
            cudnn=str(data["cudnn"]) if data.get("cudnn") else None,
            architectures=tuple(map(str, archs)) if isinstance(archs, list) else None,
        )
    return None


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


def _caffe_libraries(ctx: Context) -> list[CaffeLibrary]:
    todo = _caffe_candidates(ctx)
    done: dict[str, CaffeLibrary] = {}
    while todo:
        path, how = todo.pop(0)
        seen = closure(ctx, path)
        if seen.error:
            continue
        elf = seen.elf
        gpu = elf.device_code or any(GPU_BUILD_LIB.match(n) for n in elf.needed)
        archs, note = _architectures(path) if gpu else (None, "CPU build: no CUDA code")
        done[os.path.realpath(path)] = CaffeLibrary(
            path=path,
            found_by=how,
            needed=seen.direct,
            runpath=tuple(elf.runpath or elf.rpath),
            gpu_build=gpu,
            cudnn_imports=tuple(_dyn_imports(path, ctx, "cudnn")) if gpu else (),
            architectures=archs,
            architectures_note=note,
            cudnn=_cudnn_runtime(ctx, seen.direct) if gpu else None,
            cudart=_cuda_runtime(ctx, seen.direct) if gpu else None,
            record=_build_record(path),
        )
        # _caffe.so → libcaffe.so found through its RUNPATH: examine that one too.
        for n in seen.direct:
            if (
                n.path
                and n.soname.startswith("libcaffe")
                and (os.path.realpath(n.path) not in done)
            ):
                # $ORIGIN/../../lib: its directory resolved, the file's own name kept
                where = Path(os.path.realpath(n.path.parent)) / n.path.name
                todo.append((where, f"needed by {path.name}"))
    # pycaffe's _caffe.so may link no CUDA library itself: the libcaffe it loads decides.
    for key, lib in done.items():
        gpu_caffe = [
            n.soname
            for n in lib.needed
            if n.path and (c := done.get(os.path.realpath(n.path))) is not None and c.gpu_build
        ]
        if gpu_caffe and not lib.gpu_build:
            done[key] = dataclasses.replace(
                lib,
                gpu_build=True,
                architectures=(),
                architectures_note=f"no device code of its own; it loads {gpu_caffe[0]}",
            )
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


@probe("cuda", _summarize)
def gather(ctx: Context) -> CudaFacts:
    toolkits = _toolkits(ctx)
    listed, includes = conf_dirs(ctx.ld_so_conf)
    cache, cache_error = read_cache(ctx)
    llp = ld_library_path(ctx)
    headers = _cudnn_headers(_include_dirs(ctx, toolkits))
    try:
        caffe_libs, elf_error = _caffe_libraries(ctx), None
    except NoReadelf as exc:
        caffe_libs, elf_error = [], str(exc)
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
        toolkits=tuple(toolkits),
        driver=_driver(ctx),
        cudnn_headers=tuple(headers),
        ld_so_conf=ctx.ld_so_conf,
        ld_so_cache=ctx.ld_so_cache,
        conf_dirs=tuple(listed),
        conf_includes=tuple(includes),
        cache_error=cache_error,
        elf_error=elf_error,
        cache_cuda={
            name: p for name in cache if CUDA_LIB.match(name) and (p := cache_lookup(cache, name))
        },
        ld_library_path=tuple(llp),
        library_dirs=tuple(_library_dirs(candidates, listed, llp, cache, runpaths)),
        caffe_libraries=tuple(caffe_libs),
        caffe_source=source,
        source_cudnn_calls=calls,
    )
