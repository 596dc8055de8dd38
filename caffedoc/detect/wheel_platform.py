"""A machine whose glibc is older than caffedoc's wheels need, where no Caffe is installed
yet: pip will refuse those wheels, so the way to a Caffe here is its release's recipe."""

from __future__ import annotations

import re
from collections.abc import Iterator

from caffedoc.detect import detects
from caffedoc.findings import Hit, Severity
from caffedoc.probes import Facts
from caffedoc.probes.caffe import CaffeFacts
from caffedoc.probes.system import SystemFacts
from caffedoc.recipes import BUILDABLE, load_all, version_match

# The tag `auditwheel` gives each recipe's CPU wheel (tests/test_wheel_cpu.py and
# tests/test_wheel_platforms.py check it): the oldest glibc it runs on.
WHEEL_TAGS = {"debian12-cpu": "manylinux_2_35", "debian13-cpu": "manylinux_2_39"}


def glibc(tag: str) -> tuple[int, int]:
    m = re.match(r"manylinux_(\d+)_(\d+)", tag)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


@detects("wheel-platform")
def too_old(facts: Facts) -> Iterator[Hit]:
    sf: SystemFacts | None = facts.get("system")
    cf: CaffeFacts | None = facts.get("caffe")
    if sf is None or sf.manylinux is None or cf is None:
        return
    if any(i.kind != "namespace" for i in cf.installs):
        return  # a Caffe is here already: how it got here is not a problem
    oldest = min(WHEEL_TAGS.items(), key=lambda kv: glibc(kv[1]))
    have = glibc(sf.manylinux)
    if have >= glibc(oldest[1]):
        return
    recipe = next(
        (r.name for r in load_all() if r.kind == "cpu" and r.status in BUILDABLE
         and any(d == sf.os_id and version_match(v, sf.os_version) for d, v in r.distros)),
        None,
    )  # fmt: skip
    build = f"caffedoc build --recipe {recipe}" if recipe else "caffedoc build --cpu-only"
    wheels = ", ".join(f"{name}: {tag}" for name, tag in sorted(WHEEL_TAGS.items()))
    yield Hit(
        Severity.WARNING,
        (
            f"glibc {have[0]}.{have[1]} here: pip accepts wheels up to {sf.manylinux} "
            "(packaging.tags)",
            f"caffedoc's CPU wheels need glibc {oldest[1].split('_', 1)[1].replace('_', '.')} "
            f"or newer ({wheels}): pip refuses them here",
        ),
        fix=f"Build Caffe here from this release's recipe: `{build}` (add --wheel for a wheel "
        "this release's machines accept).",
        detail=f"glibc {have[0]}.{have[1]}",
    )
