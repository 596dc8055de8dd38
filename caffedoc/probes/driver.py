"""The NVIDIA driver and GPUs: nvidia-smi's account (each GPU's compute capability),
the kernel module's version, and where the loader finds the driver's libcuda.so.1.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from caffedoc import host
from caffedoc.elf import Elf, NoReadelf
from caffedoc.probes import Session, probe
from caffedoc.probes.loader import Needed, resolve


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


def _driver(session: Session) -> Driver:
    ctx = session.ctx
    smi_path = host.which_all("nvidia-smi", ctx.env.get("PATH", "") + os.pathsep + "/usr/bin")
    module = host.read_text("/proc/driver/nvidia/version")
    kernel_version = None
    if module and (m := re.search(r"Kernel Module\s+([\d.]+)", module)):
        kernel_version = m.group(1)
    libcuda = _libcuda(session)
    if not smi_path:
        return Driver(None, kernel_version, None, (), None, libcuda)
    smi = smi_path[0]
    fields = "index,name,compute_cap,driver_version"
    res = host.run(
        [smi, f"--query-gpu={fields}", "--format=csv,noheader"], timeout=ctx.limit(), env=ctx.env
    )
    if not res.ok and "compute_cap" in res.output:  # drivers before 510 lack the field
        fields = "index,name,driver_version"
        res = host.run(
            [smi, f"--query-gpu={fields}", "--format=csv,noheader"],
            timeout=ctx.limit(),
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
    header = host.run([smi], timeout=ctx.limit(), env=ctx.env)
    m = re.search(r"CUDA Version:\s*([\d.]+)", header.stdout)
    return Driver(smi, version, m.group(1) if m else None, tuple(gpus), None, libcuda)


def _libcuda(session: Session) -> Needed | None:
    """Where the loader finds the driver's libcuda.so.1 (the CUDA runtime dlopens it);
    None when the loader's view cannot be built (no readelf)."""
    try:
        return resolve(session, "libcuda.so.1", Elf(), Path.cwd())
    except NoReadelf:
        return None


@probe("driver", area=False, subject="the NVIDIA driver")
def gather(session: Session) -> Driver:
    return _driver(session)
