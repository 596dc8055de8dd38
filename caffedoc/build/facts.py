"""This machine as recipe resolution sees it, from the system and CUDA probes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from caffedoc.probes import Context
from caffedoc.recipes import HostFacts


def host_facts() -> HostFacts:
    from caffedoc.probes import cuda, system

    ctx = Context(python=Path(sys.executable), env=dict(os.environ))
    sysf = system.gather(ctx)
    cudaf = cuda.gather(ctx)
    toolkit = next((t.version for t in cudaf.toolkits if t.version), None)
    cudnn = next((h.version for h in cudaf.cudnn_headers), None)
    arches = tuple(
        sorted({g.compute_capability.replace(".", "") for g in cudaf.gpus if g.compute_capability})
    )
    return HostFacts(
        distro=sysf.os_id,
        version=sysf.os_version,
        machine=sysf.machine,
        cuda=".".join(toolkit.split(".")[:2]) if toolkit else None,
        cudnn=cudnn,
        gpu_arches=arches,
        cuda_roots=tuple(t.root for t in cudaf.toolkits if t.root),
    )
