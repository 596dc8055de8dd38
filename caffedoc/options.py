"""Options and argument checks shared by several commands (outside `caffedoc.cli`, so
that a check's head start can use them before typer is imported)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from caffedoc import host
from caffedoc.errors import CaffedocError

if TYPE_CHECKING:
    from caffedoc.probes import Context


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
    owner = host.code_owner(candidate) if host.can_switch_user() else None  # not as root
    # -E -S: only whether it is a Python (2.7 too), in a third of the time; the check's
    # probes then run it as it is, environment and site included.
    argv = [candidate, "-E", "-S", "-c", "import sys; print(sys.hexversion)"]
    res = host.run(argv, timeout=15, user=owner)
    if not res.ok or not res.stdout.strip().isdigit():
        raise CaffedocError(f"--python {path}: not a Python interpreter ({res.describe()})")
    return Path(os.path.abspath(candidate))


def existing_dir(path: Path | None, flag: str) -> Path | None:
    if path is not None and not path.is_dir():
        raise CaffedocError(f"{flag} {path}: no such directory")
    return path.resolve() if path is not None else None


def check_context(
    python: Path | None, caffe: Path | None, env: dict[str, str], *, gpu_expected: bool = True
) -> Context:
    """What `check` (and `fix`, which re-checks) examines, from the shared options."""
    from caffedoc.probes import Context, default_python

    return Context(
        python=interpreter(python) or default_python(env),
        caffe_dir=existing_dir(caffe, "--caffe"),
        env=env,
        # Tests point these at a private linker configuration and cache.
        ld_so_conf=Path(env.get("CAFFEDOC_LD_SO_CONF", "/etc/ld.so.conf")),
        ld_so_cache=Path(env.get("CAFFEDOC_LD_SO_CACHE", "/etc/ld.so.cache")),
        gpu_expected=gpu_expected,
    )
