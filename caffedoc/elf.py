"""What an ELF file asks of the dynamic loader, read with one `readelf` run per batch.

Both halves need it: the probes resolve Caffe's libraries the way ld.so would, and
the build finds the CUDA libraries an install must carry. It lives below both so
neither imports the other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from caffedoc import host

ELF_MAGIC = b"\x7fELF"


class NoReadelf(Exception):
    """readelf (binutils) is missing: libraries cannot be examined."""


@dataclass
class Elf:
    needed: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    device_code: bool = False  # a .nv_fatbin section: kernels compiled by nvcc


def not_elf(path: Path) -> str | None:
    """Why `path` is no ELF object, or None when it is one."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None if head == ELF_MAGIC else "not an ELF file"


def readelf_dynamic(
    paths: list[Path], timeout: float, env: Mapping[str, str] | None = None
) -> dict[str, Elf]:
    """DT_NEEDED, RUNPATH, RPATH and CUDA code of each file, from one `readelf` run."""
    if not paths:
        return {}
    res = host.run(["readelf", "-W", "-d", "-S", *paths], timeout=timeout, env=env)
    if res.error:
        raise NoReadelf(res.describe())
    out: dict[str, Elf] = {}
    current = Elf() if len(paths) == 1 else None
    if current is not None:
        out[str(paths[0])] = current
    for line in res.stdout.splitlines():
        if line.startswith("File: "):
            current = out.setdefault(line[6:].strip(), Elf())
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
