"""`caffedoc smoke` (being written)."""

from __future__ import annotations

from caffedoc.errors import CaffedocError


def smoke() -> None:
    """(being written)"""
    raise CaffedocError("caffedoc smoke is not written yet")
