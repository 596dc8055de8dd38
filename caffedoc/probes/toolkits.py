"""CUDA toolkits: every install tree (CUDA_HOME and kin, nvcc on PATH, /usr/local/cuda*,
/opt/cuda*) and its version, read from the files it ships before asking its nvcc.
`caffedoc build` reads them too, to choose a recipe.
"""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from caffedoc import host
from caffedoc.probes import Context, Session, probe


@dataclass(frozen=True)
class Toolkit:
    root: Path | None  # None for an nvcc whose install tree could not be found
    version: str | None
    found_by: tuple[str, ...]  # "nvcc on PATH", "CUDA_HOME", "/usr/local/cuda*"…
    nvcc: Path | None


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
    res = host.run([nvcc, "--version"], timeout=ctx.limit(), env=ctx.env)
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


@probe("toolkits", area=False, subject="the CUDA toolkits")
def gather(session: Session) -> tuple[Toolkit, ...]:
    return tuple(_toolkits(session.ctx))
