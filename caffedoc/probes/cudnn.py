"""cuDNN headers: their version (cudnn_version.h, else cudnn.h) in the toolkits'
include directories, CUDNN_HOME and kin, and the system's. What the libraries a
Caffe loads say of themselves is `binaries`' (it asks them in a child).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from caffedoc import host
from caffedoc.probes import Context, Session, probe
from caffedoc.probes.loader import multiarch
from caffedoc.probes.toolkits import Toolkit


@dataclass(frozen=True)
class CudnnHeader:
    path: Path
    version: str  # "7.6.5"


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


@probe("cudnn", ("toolkits",), area=False, subject="the cuDNN headers")
def gather(session: Session, toolkits: tuple[Toolkit, ...]) -> tuple[CudnnHeader, ...]:
    return tuple(_cudnn_headers(_include_dirs(session.ctx, toolkits)))
