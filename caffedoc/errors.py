"""Errors that reach the user as one line."""

from __future__ import annotations


class CaffedocError(Exception):
    """A problem the user can act on; `code` is the exit status (2: bad usage)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code
