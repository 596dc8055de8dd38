"""Options and argument checks shared by several commands."""

from __future__ import annotations

import os
from pathlib import Path

from caffedoc import host
from caffedoc.errors import CaffedocError


def interpreter(path: Path | None) -> Path | None:
    """Validate `--python`: a Python executable or a venv directory."""
    if path is None:
        return None
    try:
        return _interpreter(path)
    except PermissionError:
        raise CaffedocError(f"--python {path}: permission denied") from None


def _interpreter(path: Path) -> Path:
    candidate = path
    if candidate.is_dir():
        for sub in ("bin/python3", "bin/python"):
            if (candidate / sub).exists():
                candidate = candidate / sub
                break
        else:
            raise CaffedocError(f"--python {path}: a directory, but not a virtual environment")
    if not candidate.exists():
        raise CaffedocError(f"--python {path}: no such file")
    if not os.access(candidate, os.X_OK):
        raise CaffedocError(f"--python {path}: not executable")
    res = host.run([candidate, "-c", "import sys; print(sys.hexversion)"], timeout=15)
    if not res.ok or not res.stdout.strip().isdigit():
        raise CaffedocError(f"--python {path}: not a Python interpreter ({res.describe()})")
    return Path(os.path.abspath(candidate))


def existing_dir(path: Path | None, flag: str) -> Path | None:
    if path is not None and not path.is_dir():
        raise CaffedocError(f"{flag} {path}: no such directory")
    return path.resolve() if path is not None else None
