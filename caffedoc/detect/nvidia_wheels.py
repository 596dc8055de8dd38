"""nvidia-wheels: a GPU wheel of Caffe without the NVIDIA wheels it was built against.

The wheel bundles no CUDA library: it requires NVIDIA's wheels at the versions its
recipe pinned and loads them from site-packages. pip installs them with it, but a
later `pip install` or `pip uninstall` can replace or remove one without touching
caffe (pip only warns). What the libraries then load is judged by cuda's and cudnn's
rules; this one names the wheel that differs and the pip line that restores it.
"""

from __future__ import annotations

from collections.abc import Iterator

from caffedoc.detect import detects
from caffedoc.findings import Hit, Severity
from caffedoc.probes import Facts
from caffedoc.probes.caffe import CaffeFacts
from caffedoc.shellwords import cmd


@detects("nvidia-wheels")
def nvidia_wheels(facts: Facts) -> Iterator[Hit]:
    cf: CaffeFacts | None = facts.get("caffe")
    w = cf.wheel if cf else None
    if w is None:
        return
    off = [n for n in w.nvidia if not n.fits]
    if not off:
        return
    caffe = f"caffe {w.version} ({w.dist_info})"
    evidence = tuple(
        f"{caffe} requires {n.name}{n.wanted}; "
        + (f"{n.installed} is installed ({n.dist_info})" if n.installed else "it is not installed")
        for n in off
    )
    missing = [n.name for n in off if n.installed is None]
    fix = (
        f"Install exactly what the wheel requires with that interpreter's own pip: "
        f"{cmd(cf.python, '-m', 'pip', 'install', *(f'{n.name}{n.wanted}' for n in off))}"
        " (add --find-links DIR where the wheels are kept offline)."
    )
    detail = ", ".join(f"{n.name} {'missing' if n.installed is None else n.installed}" for n in off)
    yield Hit(Severity.ERROR if missing else Severity.WARNING, evidence, fix, detail)
