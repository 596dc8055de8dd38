"""`caffedoc recipes` (being written)."""

from __future__ import annotations

from caffedoc.errors import CaffedocError


def recipes() -> None:
    """(being written)"""
    raise CaffedocError("caffedoc recipes is not written yet")
