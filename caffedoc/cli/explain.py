"""`caffedoc explain` (being written)."""

from __future__ import annotations

from caffedoc.errors import CaffedocError


def explain() -> None:
    """(being written)"""
    raise CaffedocError("caffedoc explain is not written yet")
