"""Caffe installs: every caffe package the target interpreter can reach, which one
wins, whether its compiled module and the libraries behind it resolve, and what
a `--caffe` tree holds.

Library resolution is the loader's own search, reconstructed by `loader` from
the context's linker configuration and cache and the user's LD_LIBRARY_PATH (the
cuda area resolves the same way, so both agree). What a compiled module
was built for is read from its bytes: the init symbol (`PyInit__caffe` is
Python 3, `init_caffe` Python 2), the Boost.Python/libpython it links, and the
numpy C-API import it embeds (numpy 2 headers import `numpy._core`).
"""

from __future__ import annotations

import concurrent.futures
import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from caffedoc import host
from caffedoc.probes import Context, probe
from caffedoc.probes.loader import NoReadelf, closure
from caffedoc.probes.python import (
    ImportAttempt,
    Interpreter,
    import_attempt,
    introspect,
    once,
    start_imports,
)

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
class Install:
    """One caffe package the target interpreter can reach."""

    path: str
    kind: str
    entry: str
    origin: str
    wins: bool
    in_tree: bool  # inside the --caffe tree
    extension: Extension | None
    pb2: str | None


@dataclass(frozen=True)
class Tree:
    """What a `--caffe` source, build or install tree holds."""

    root: str
    packages: tuple[str, ...]  # python/caffe and the like
    libraries: tuple[str, ...]  # libcaffe.so*
    libcaffe: Linkage | None
    extension: Extension | None  # the first package's _caffe.so
    pb_h: str | None  # the generated caffe.pb.h
    proto: str | None  # src/caffe/proto/caffe.proto
    cmake: dict[str, str]  # selected CMakeCache.txt entries


@dataclass(frozen=True)
class CaffeFacts:
    python: str
    installs: tuple[Install, ...]
    import_attempt: ImportAttempt
    tree: Tree | None

    @property
    def winner(self) -> Install | None:
        return next((i for i in self.installs if i.wins), None)


def _linkage(ctx: Context, path: str) -> Linkage:
    try:
        seen = closure(ctx, path)
    except NoReadelf as exc:
        return Linkage(path, unknown=f"readelf is missing (install binutils): {exc}")
    if seen.error:
        return Linkage(path, error=seen.error)
    libs = {n.soname: str(n.path) for n in seen.loaded if n.path and NOTABLE.match(n.soname)}
    return Linkage(path, seen.missing, libs)


def linkage(ctx: Context, path: str | os.PathLike[str]) -> Linkage:
    """What one shared object loads, resolved as the loader would; once per context."""
    p = str(path)
    return once(ctx, ("linkage", p), lambda: _linkage(ctx, p))


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


def extension(ctx: Context, path: str) -> Extension:
    link = linkage(ctx, path)
    major, version, numpy = _built_for(path, link)
    gpu = any(n.startswith("libcudart") for n in (*link.libraries, *link.missing))
    return Extension(path, link, major, version, numpy, gpu)


def _inside(path: str, root: str | None) -> bool:
    if not root:
        return False
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base + os.sep)


PACKAGE_GLOBS = (
    "python/caffe",
    "lib/python*/site-packages/caffe",
    "lib/python*/dist-packages/caffe",
    "lib64/python*/site-packages/caffe",
    "*/install/python/caffe",
)
LIBRARY_GLOBS = (
    "lib/libcaffe*.so*",
    "lib64/libcaffe*.so*",
    "build/lib/libcaffe*.so*",
    ".build_release/lib/libcaffe*.so*",
    ".build_debug/lib/libcaffe*.so*",
    "*/install/lib/libcaffe*.so*",
)
PB_H_GLOBS = (
    "include/caffe/proto/caffe.pb.h",
    "build/include/caffe/proto/caffe.pb.h",
    ".build_release/src/caffe/proto/caffe.pb.h",
    "*/install/include/caffe/proto/caffe.pb.h",
)
CMAKE_KEYS = re.compile(
    r"^(CPU_ONLY|USE_CUDNN|BLAS|python_version|PYTHON_EXECUTABLE|Protobuf_INCLUDE_DIR"
    r"|PROTOBUF_INCLUDE_DIR|Protobuf_PROTOC_EXECUTABLE|PROTOBUF_PROTOC_EXECUTABLE"
    r"|Protobuf_LIBRARY|PROTOBUF_LIBRARY|CMAKE_INSTALL_PREFIX):[A-Z]+=(.*)$"
)


def _globs(root: str, patterns: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for pattern in patterns:
        for p in sorted(glob.glob(os.path.join(root, pattern))):
            if p not in found:
                found.append(p)
    return found


def _tree(ctx: Context, root: Path) -> Tree:
    r = str(root)
    packages = [
        p for p in _globs(r, PACKAGE_GLOBS) if os.path.isfile(os.path.join(p, "__init__.py"))
    ]
    libraries = _globs(r, LIBRARY_GLOBS)
    real_libs = [p for p in libraries if not os.path.islink(p)] or libraries
    pb_h = next(iter(_globs(r, PB_H_GLOBS)), None)
    proto = os.path.join(r, "src", "caffe", "proto", "caffe.proto")
    cmake: dict[str, str] = {}
    for cache in _globs(r, ("CMakeCache.txt", "build/CMakeCache.txt")):
        for line in (host.read_text(cache) or "").splitlines():
            m = CMAKE_KEYS.match(line)
            if m and m.group(2):
                cmake.setdefault(m.group(1), m.group(2))
    exts = [e for p in packages for e in sorted(glob.glob(os.path.join(p, "_caffe*.so")))]
    return Tree(
        root=r,
        packages=tuple(packages),
        libraries=tuple(libraries),
        libcaffe=linkage(ctx, real_libs[0]) if real_libs else None,
        extension=extension(ctx, exts[0]) if exts else None,
        pb_h=pb_h,
        proto=proto if os.path.isfile(proto) else None,
        cmake=cmake,
    )


def _summarize(f: CaffeFacts) -> list[str]:
    lines = []
    w = f.winner
    if w is None:
        lines.append(f"no caffe package on {f.python}'s sys.path")
    else:
        build = ""
        if w.extension:
            build = " (GPU build)" if w.extension.gpu else " (CPU build)"
        lines.append(f"imports {w.path}{build}, from {w.origin}")
        if len(f.installs) > 1:
            lines.append(f"{len(f.installs) - 1} other caffe package(s) on sys.path")
        if w.extension and w.extension.linkage.unknown:
            lines.append(f"its libraries not examined: {w.extension.linkage.unknown}")
    a = f.import_attempt
    if a.ok:
        lines.append("`import caffe` works")
    elif w is not None:
        first = (a.error or "").splitlines()[0] if a.error else ""
        lines.append(f"`import caffe` fails: {a.error_type or a.crashed}: {first}")
    if f.tree:
        libs = ", ".join(os.path.basename(p) for p in f.tree.libraries) or "no libcaffe"
        lines.append(f"--caffe {f.tree.root}: {libs}")
    return lines


@probe("caffe", _summarize)
def gather(ctx: Context) -> CaffeFacts:
    """The caffe area's facts, once per context (the protobuf probe reads them too)."""
    return once(ctx, ("caffe",), lambda: _gather(ctx))


def _gather(ctx: Context) -> CaffeFacts:
    start_imports(ctx)
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        attempt = pool.submit(import_attempt, ctx)
        tree = pool.submit(_tree, ctx, ctx.caffe_dir) if ctx.caffe_dir else None
        target: Interpreter = introspect(ctx, ctx.python)
        winner = target.winner("caffe")
        exts = {e: pool.submit(extension, ctx, e) for loc in target.caffe for e in loc.extensions}
        root = str(ctx.caffe_dir) if ctx.caffe_dir else None
        installs = tuple(
            Install(
                path=loc.path,
                kind=loc.kind,
                entry=loc.entry,
                origin=loc.origin,
                wins=loc is winner,
                in_tree=_inside(loc.path, root),
                extension=exts[loc.extensions[0]].result() if loc.extensions else None,
                pb2=loc.pb2,
            )
            for loc in target.caffe
        )
        return CaffeFacts(
            python=str(ctx.python),
            installs=installs,
            import_attempt=attempt.result(),
            tree=tree.result() if tree else None,
        )
