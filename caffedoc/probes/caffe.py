"""Caffe installs: every caffe package the target interpreter can reach, which one
wins, whether its compiled module and the libraries behind it resolve, and what
a `--caffe` tree holds.

Each compiled module and library is examined by `binaries`, once for this area
and the cuda area alike.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

from caffedoc import host
from caffedoc.probes import Session, probe
from caffedoc.probes.binaries import CaffeBinaries, Extension, Linkage, extension, linkage
from caffedoc.probes.imports import ImportAttempt, ImportChildren, import_attempt
from caffedoc.probes.interpreters import Interpreter
from caffedoc.probes.wheel import WheelInstall, summary_lines


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
    wheel: WheelInstall | None = None  # the wheel that installed the winner, if one did

    @property
    def winner(self) -> Install | None:
        return next((i for i in self.installs if i.wins), None)


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


def _tree(session: Session, root: Path) -> Tree:
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
        libcaffe=linkage(session, real_libs[0]) if real_libs else None,
        extension=extension(session, exts[0]) if exts else None,
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
        lines += summary_lines(f.wheel)
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


@probe("caffe", ("target", "imports", "binaries", "wheel"), _summarize)
def gather(
    session: Session,
    target: Interpreter,
    children: ImportChildren,
    binaries: CaffeBinaries,
    wheel: WheelInstall | None,
) -> CaffeFacts:
    """Every caffe package the target reaches, which wins, and what `import caffe` does."""
    ctx = session.ctx
    winner = target.winner("caffe")
    root = str(ctx.caffe_dir) if ctx.caffe_dir else None
    installs = tuple(
        Install(
            path=loc.path,
            kind=loc.kind,
            entry=loc.entry,
            origin=loc.origin,
            wins=loc is winner,
            in_tree=_inside(loc.path, root),
            extension=binaries.extensions[loc.extensions[0]] if loc.extensions else None,
            pb2=loc.pb2,
        )
        for loc in target.caffe
    )
    return CaffeFacts(
        python=str(ctx.python),
        installs=installs,
        import_attempt=import_attempt(children, ctx.import_timeout),
        tree=_tree(session, ctx.caffe_dir) if ctx.caffe_dir else None,
        wheel=wheel,
    )
