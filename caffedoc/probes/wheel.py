"""Wheel installs: whether the winning `caffe` package was put there by a wheel, which one
and from which recipe (the build record `caffedoc build --wheel` packs inside it), and,
for a GPU wheel, NVIDIA's wheels it requires against those installed beside it.

Read from the files pip leaves (the dist-info's METADATA, RECORD and WHEEL), never by
importing anything: a wheel whose libraries do not load is described all the same.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from caffedoc import host
from caffedoc.layout import BuildRecord
from caffedoc.probes import Session, probe
from caffedoc.probes.interpreters import Interpreter

NVIDIA = "nvidia-"  # NVIDIA's CUDA and cuDNN wheels all start so


@dataclass(frozen=True)
class NvidiaWheel:
    """One of NVIDIA's wheels the caffe wheel requires, and what is installed of it."""

    name: str  # nvidia-cudnn-cu13
    wanted: str  # the specifier as the wheel states it: ==9.13.1.26
    installed: str | None  # the version on the interpreter's sys.path; None: not installed
    dist_info: str | None  # where that version was read

    @property
    def fits(self) -> bool:
        if self.installed is None:
            return False
        try:
            return Requirement(f"{self.name}{self.wanted}").specifier.contains(
                Version(self.installed), prereleases=True
            )
        except (InvalidRequirement, InvalidVersion):
            return False


@dataclass(frozen=True)
class WheelInstall:
    """The wheel that installed the winning caffe package."""

    dist_info: str
    version: str | None  # 1.0.0+current.gpu.cuda13
    tags: tuple[str, ...]  # from WHEEL: cp311-cp311-manylinux_2_35_x86_64
    record: BuildRecord | None  # caffe/.caffedoc-build.json: which recipe built it
    nvidia: tuple[NvidiaWheel, ...]

    @property
    def recipe(self) -> str | None:
        return self.record.recipe if self.record else None


def _fields(text: str, name: str) -> list[str]:
    """The values of a METADATA/WHEEL header field (email-style `Name: value` lines,
    headers only: the body after the first blank line is a description)."""
    head = text.split("\n\n", 1)[0]
    return [line.split(":", 1)[1].strip() for line in head.splitlines()
            if line.lower().startswith(name.lower() + ":")]  # fmt: skip


def _owner(entry: str, package: str) -> str | None:
    """The dist-info in `entry` whose RECORD lists `package`/__init__.py."""
    wanted = f"{os.path.basename(package)}/__init__.py,"
    for dist in sorted(glob.glob(os.path.join(entry, "*.dist-info"))):
        record = host.read_text(os.path.join(dist, "RECORD"), limit=1 << 22) or ""
        if any(line.startswith(wanted) for line in record.splitlines()):
            return dist
    return None


def _installed(name: str, sys_path: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(version, dist-info) of distribution `name` on sys.path, first entry first."""
    want = canonicalize_name(name)
    for entry in sys_path:
        for dist in sorted(glob.glob(os.path.join(entry or ".", "*.dist-info"))):
            stem = os.path.basename(dist)[: -len(".dist-info")]
            if canonicalize_name(stem.rsplit("-", 1)[0]) != want:
                continue
            meta = host.read_text(os.path.join(dist, "METADATA"), limit=1 << 20) or ""
            version = (_fields(meta, "Version") or [None])[0]
            if version:
                return version, dist
    return None, None


def _nvidia(metadata: str, sys_path: tuple[str, ...]) -> tuple[NvidiaWheel, ...]:
    out = []
    for line in _fields(metadata, "Requires-Dist"):
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name).startswith(NVIDIA):
            version, dist = _installed(req.name, sys_path)
            out.append(NvidiaWheel(req.name, str(req.specifier), version, dist))
    return tuple(out)


def summary_lines(w: WheelInstall | None) -> list[str]:
    """The caffe area's account of a wheel install (it shows these under its own)."""
    if w is None:
        return []
    made = f", recipe {w.recipe}" if w.recipe else ", no caffedoc build record in it"
    lines = [f"wheel caffe {w.version or '?'} ({', '.join(w.tags) or 'no tag'}){made}"]
    for n in w.nvidia:
        have = n.installed or "not installed"
        lines.append(f"  requires {n.name}{n.wanted}: {have}{'' if n.fits else ' ✗'}")
    return lines


@probe("wheel", ("target",), area=False, subject="the caffe wheel")
def gather(session: Session, target: Interpreter) -> WheelInstall | None:
    """The wheel behind the winning caffe package; None when no wheel installed it."""
    winner = target.winner("caffe")
    if winner is None or winner.kind != "package":
        return None
    dist = _owner(winner.entry or ".", winner.path)
    if dist is None:
        return None
    meta = host.read_text(os.path.join(dist, "METADATA"), limit=1 << 20) or ""
    tags = host.read_text(os.path.join(dist, "WHEEL"), limit=1 << 16) or ""
    return WheelInstall(
        dist_info=dist,
        version=(_fields(meta, "Version") or [None])[0],
        tags=tuple(_fields(tags, "Tag")),
        record=BuildRecord.read(Path(winner.path)),
        nvidia=_nvidia(meta, target.sys_path),
    )
