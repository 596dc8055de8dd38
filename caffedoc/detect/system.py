"""The machine as caffedoc itself left it: a fix that never finished."""

from __future__ import annotations

from collections.abc import Iterator

from caffedoc.detect import detects
from caffedoc.findings import Hit, Severity
from caffedoc.probes import Facts
from caffedoc.probes.system import SystemFacts


@detects("fix-interrupted")
def interrupted(facts: Facts) -> Iterator[Hit]:
    """Half of a fix may be in place: every other finding is about a machine in between."""
    sf: SystemFacts | None = facts.get("system")
    if sf is not None and sf.interrupted_fix:
        yield Hit(Severity.ERROR, (sf.interrupted_fix,))
