"""Caffe's binaries, examined once for every area that reads them.

Two sets of files: each `_caffe` module of the target's caffe packages (what it
loads, whether that resolves, the Python and numpy it was built for: the caffe
area's installs), and the libraries a CUDA check looks at (the `--caffe` tree's
libcaffe and _caffe, the winning package's _caffe and the libcaffe it loads):
CPU or GPU build, the GPU targets in its fatbinary, the cuDNN functions it calls,
what the cuDNN and CUDA runtime it loads say of themselves (in a child), and
its install's build record. Library resolution is the loader's own search,
reconstructed by `loader` from the context's linker configuration and cache and
the user's LD_LIBRARY_PATH, once per file and check however many areas ask.
What a compiled module was built for is read from its bytes: the init symbol
(`PyInit__caffe` is Python 3, `init_caffe` Python 2), the Boost.Python/libpython
it links, and the numpy C-API import it embeds (numpy 2 headers import
`numpy._core`).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from caffedoc import host
from caffedoc.elf import NoReadelf
from caffedoc.layout import BuildRecord, record_of
from caffedoc.probes import Context, Session, fatbin, probe
from caffedoc.probes.interpreters import SCRIPTS, Interpreter
from caffedoc.probes.loader import Needed, ReadelfHung, closure

GPU_BUILD_LIB = re.compile(r"^lib(cudart|cublas|curand|cudnn)\.so")
# Libraries worth naming in a report, by what they say about the build.
NOTABLE = re.compile(
    r"^lib(caffe|protobuf|python\d|boost_python|cudart|cublas|curand|cudnn|nccl|opencv_core"
    r"|glog|gflags|hdf5|openblas|blas|cblas|mkl_rt|lmdb|leveldb)[\w.+-]*\.so"
)
SCAN_LIMIT = 64 << 20  # bytes of a compiled module read to learn what it was built for


@dataclass(frozen=True)
class Linkage:
    """What the dynamic loader makes of one shared object."""

    path: str
    missing: tuple[str, ...] = ()  # sonames that resolve nowhere (itself or what it loads)
    libraries: dict[str, str] = field(default_factory=dict)  # notable soname → resolved path
    error: str | None = None  # the file is no shared object the loader could load
    unknown: str | None = None  # why it could not be examined (no readelf here)

    def find(self, prefix: str) -> tuple[str, str] | None:
        for name, path in self.libraries.items():
            if name.startswith(prefix):
                return name, path
        return None


@dataclass(frozen=True)
class Extension:
    """A `_caffe` compiled module and what it was built for."""

    path: str
    linkage: Linkage
    python_major: int | None  # from its init symbol
    python_version: str | None  # from the Boost.Python/libpython it links, or its file name
    numpy_headers: str | None  # "1.x" or "2.x": the numpy C API it was compiled against
    gpu: bool  # links the CUDA runtime (directly or through libcaffe)


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
    record: BuildRecord | None = None  # its install's record, when caffedoc built it

    @property
    def unresolved(self) -> tuple[str, ...]:
        return tuple(n.soname for n in self.needed if not n.resolved)


@dataclass(frozen=True)
class CaffeBinaries:
    """Every Caffe binary examined, for the areas that read them."""

    extensions: dict[str, Extension]  # the target's caffe packages' _caffe modules, by path
    libraries: tuple[CaffeLibrary, ...]  # what a CUDA check looks at
    elf_error: str | None  # readelf could not examine the libraries


def _linkage(session: Session, path: str) -> Linkage:
    try:
        seen = closure(session, path)
    except ReadelfHung as exc:
        return Linkage(path, unknown=str(exc))
    except NoReadelf as exc:
        return Linkage(path, unknown=f"readelf is missing (install binutils): {exc}")
    if seen.error:
        return Linkage(path, error=seen.error)
    libs = {n.soname: str(n.path) for n in seen.loaded if n.path and NOTABLE.match(n.soname)}
    return Linkage(path, seen.missing, libs)


def linkage(session: Session, path: str | os.PathLike[str]) -> Linkage:
    """What one shared object loads, resolved as the loader would; once per check."""
    p = str(path)
    return session.once(("linkage", p), lambda: _linkage(session, p))


def _built_for(path: str, link: Linkage) -> tuple[int | None, str | None, str | None]:
    """(Python major, Python version, numpy header generation) read from the module."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(SCAN_LIMIT)
    except OSError:
        data = b""
    major = 3 if b"PyInit__caffe\0" in data else 2 if b"\0init_caffe\0" in data else None
    version = None
    m = re.search(r"\.cpython-(\d)(\d+)", os.path.basename(path))
    if m:
        version = f"{m.group(1)}.{m.group(2)}"
    for name in link.libraries:
        m = re.match(r"libboost_python-?(?:py)?(\d)(\d+)", name) or re.match(
            r"libpython(\d)\.(\d+)", name
        )
        if m:
            version = f"{m.group(1)}.{m.group(2)}"
    numpy = None
    if b"numpy._core._multiarray_umath" in data:
        numpy = "2.x"
    elif b"numpy.core._multiarray_umath" in data or b"numpy.core.multiarray" in data:
        numpy = "1.x"
    return major, version, numpy


def extension(session: Session, path: str) -> Extension:
    """A `_caffe` module: what it loads and what it was built for; once per check."""
    return session.once(("extension", path), lambda: _extension(session, path))


def _extension(session: Session, path: str) -> Extension:
    link = linkage(session, path)
    major, version, numpy = _built_for(path, link)
    gpu = any(n.startswith("libcudart") for n in (*link.libraries, *link.missing))
    return Extension(path, link, major, version, numpy, gpu)


def _dyn_imports(path: Path, ctx: Context, prefix: str) -> list[str]:
    """Undefined dynamic symbols starting with `prefix`: the functions it calls elsewhere."""
    res = host.run(["readelf", "-W", "--dyn-syms", path], timeout=ctx.limit(), env=ctx.env)
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


def _version_number(n: int, base: int) -> str:
    """cuDNN 91301 (base 10000, cuDNN ≥ 9) → 9.13.1; 7605 (base 1000) → 7.6.5."""
    return f"{n // base}.{n % base // 100}.{n % 100}"


def _cuda_number(n: int) -> str:
    """13000 → 13.0, 12090 → 12.9 (CUDA's major * 1000 + minor * 10)."""
    return f"{n // 1000}.{n % 1000 // 10}"


def _ask(session: Session, kind: str, path: Path) -> tuple[dict, str | None]:
    """Run scripts/ask_cuda_library.py on `path` in a child, once per real file;
    (its answers, why none)."""

    ctx = session.ctx

    def ask() -> tuple[dict, str | None]:
        script = (SCRIPTS / "ask_cuda_library.py").read_text(encoding="utf-8")
        # -I: caffedoc's own interpreter, without a user's PYTHONPATH or sitecustomize.
        argv = [sys.executable, "-I", "-c", script, kind, path]
        res = host.run(argv, timeout=ctx.limit(), env=ctx.env)
        ended = res.describe().replace(script, "<caffedoc/probes/scripts/ask_cuda_library.py>")
        if res.ok:
            try:
                return json.loads(res.stdout.strip().splitlines()[-1]), None
            except (ValueError, IndexError):
                return {}, f"{ended} but printed no answer"
        said = [line.strip() for line in res.stderr.splitlines() if line.strip()]
        return {}, f"{ended}: {' / '.join(said[-2:])}" if said else ended

    return session.once((f"ask {kind}", os.path.realpath(path)), ask)


def _loaded(needed: tuple[Needed, ...], prefix: str) -> tuple[str, Path] | None:
    """(soname, path) of the resolved library whose soname starts with `prefix`."""
    return next(((n.soname, n.path) for n in needed if n.soname.startswith(prefix) and n.path),
                None)  # fmt: skip


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def _cudnn_runtime(session: Session, needed: tuple[Needed, ...]) -> CudnnRuntime | None:
    found = _loaded(needed, "libcudnn.so.")
    if found is None:
        return None
    soname, path = found
    got, error = _ask(session, "cudnn", path)
    number = _positive(got.get("cudnnGetVersion"))
    cudart = _positive(got.get("cudnnGetCudartVersion"))
    version = _version_number(number, 10000 if number >= 90000 else 1000) if number else None
    cuda = _cuda_number(cudart) if cudart else None
    return CudnnRuntime(soname, path, version, cuda, error)


def _cuda_runtime(session: Session, needed: tuple[Needed, ...]) -> CudaRuntime | None:
    found = _loaded(needed, "libcudart.so.")
    if found is None:
        return None
    soname, path = found
    got, error = _ask(session, "cudart", path)
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


def _caffe_candidates(ctx: Context, target: Interpreter) -> list[tuple[Path, str]]:
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
    winner = target.winner("caffe")
    if winner is not None:
        out += [(Path(p), "the interpreter's caffe package") for p in winner.extensions]
    unique: dict[str, tuple[Path, str]] = {}
    for path, how in sorted(out, key=lambda c: c[0].is_symlink()):  # real names first
        unique.setdefault(os.path.realpath(path), (path, how))
    return list(unique.values())


def _caffe_libraries(session: Session, target: Interpreter) -> list[CaffeLibrary]:
    ctx = session.ctx
    todo = _caffe_candidates(ctx, target)
    done: dict[str, CaffeLibrary] = {}
    while todo:
        path, how = todo.pop(0)
        seen = closure(session, path)
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
            cudnn=_cudnn_runtime(session, seen.direct) if gpu else None,
            cudart=_cuda_runtime(session, seen.direct) if gpu else None,
            record=record_of(path),
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


@probe("binaries", ("target",), area=False, subject="Caffe's binaries")
def gather(session: Session, target: Interpreter) -> CaffeBinaries:
    exts = {e: extension(session, e) for loc in target.caffe for e in loc.extensions}
    try:
        libraries, elf_error = tuple(_caffe_libraries(session, target)), None
    except ReadelfHung as exc:
        libraries, elf_error = (), str(exc)
    except NoReadelf as exc:
        libraries, elf_error = (), f"{exc} (install binutils)"
    return CaffeBinaries(exts, libraries, elf_error)
