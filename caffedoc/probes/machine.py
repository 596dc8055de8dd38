"""This machine as recipe resolution sees it: the system, toolkit, driver and cuDNN facts.

`caffedoc build` chooses its recipe from these; it runs only the probes they need
(no interpreter is examined), through the same graph as `caffedoc check`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from caffedoc.probes import Context, gather
from caffedoc.probes.cudnn import CudnnHeader
from caffedoc.probes.driver import Driver
from caffedoc.probes.system import SystemFacts
from caffedoc.probes.toolkits import Toolkit
from caffedoc.resolution import HostFacts, compute_seen

NEEDED = ("system", "toolkits", "driver", "cudnn")


def host_facts() -> HostFacts:
    facts = gather(Context(python=Path(sys.executable), env=dict(os.environ)), only=NEEDED)
    sysf: SystemFacts = facts.get("system")
    toolkits: tuple[Toolkit, ...] = facts.get("toolkits")
    driver: Driver = facts.get("driver")
    headers: tuple[CudnnHeader, ...] = facts.get("cudnn")
    toolkit, cudnn, arches = compute_seen(
        (t.version for t in toolkits),
        (h.version for h in headers),
        (g.compute_capability for g in driver.gpus),
    )
    return HostFacts(
        distro=sysf.os_id,
        version=sysf.os_version,
        machine=sysf.machine,
        cuda=toolkit,
        cudnn=cudnn,
        gpu_arches=arches,
        cuda_roots=tuple(t.root for t in toolkits if t.root),
    )
