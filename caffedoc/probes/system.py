"""The basics a person asks first: OS, compiler, CPU and memory."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import psutil
from packaging import tags

from caffedoc import host
from caffedoc.distribution import os_release
from caffedoc.fix import journal
from caffedoc.probes import Session, probe


@dataclass(frozen=True)
class SystemFacts:
    os_id: str  # distro id: debian, ubuntu…
    os_version: str  # 12, 18.04…
    os_codename: str
    os_name: str  # human-readable
    machine: str  # x86_64, aarch64
    kernel: str
    cores: int
    memory_gb: float
    available_gb: float
    compiler: str | None  # first line of `c++ --version`
    cmake: str | None
    is_root: bool
    interrupted_fix: str | None = None  # a `caffedoc fix` left half-done, in one line
    manylinux: str | None = None  # the newest manylinux tag pip accepts here (its glibc)


def _first_line(result: host.Result) -> str | None:
    return result.stdout.splitlines()[0].strip() if result.ok and result.stdout else None


def _summarize(f: SystemFacts) -> list[str]:
    return [
        f"{f.os_name} ({f.machine}), {f.cores} cores, {f.memory_gb:.0f} GB memory",
        f"compiler: {f.compiler or 'none found'}; cmake: {f.cmake or 'none found'}",
    ]


@probe("system", (), _summarize)
def gather(session: Session) -> SystemFacts:
    ctx = session.ctx
    mem = psutil.virtual_memory()
    os_info = os_release()
    return SystemFacts(
        os_id=os_info.id(),
        os_version=os_info.version(),
        os_codename=os_info.codename(),
        os_name=os_info.name(pretty=True),
        machine=platform.machine(),
        kernel=platform.release(),
        cores=psutil.cpu_count() or 1,
        memory_gb=round(mem.total / 2**30, 1),
        available_gb=round(mem.available / 2**30, 1),
        compiler=_first_line(host.run(["c++", "--version"], timeout=ctx.limit(), env=ctx.env)),
        cmake=_first_line(host.run(["cmake", "--version"], timeout=ctx.limit(), env=ctx.env)),
        is_root=os.geteuid() == 0,
        interrupted_fix=journal.interrupted_fix(ctx.env),
        manylinux=newest_manylinux(),
    )


def newest_manylinux() -> str | None:
    """packaging.tags' answer (pip's own): the first manylinux tag is the newest accepted."""
    return next((t for t in tags.platform_tags() if t.startswith("manylinux_")), None)
