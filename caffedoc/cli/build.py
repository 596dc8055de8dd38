"""`caffedoc build` (being written)."""

from __future__ import annotations

from caffedoc.errors import CaffedocError


def build() -> None:
    """(being written)"""
    raise CaffedocError("caffedoc build is not written yet")
