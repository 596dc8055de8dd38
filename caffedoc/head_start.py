"""A whole `caffedoc check` starts its import children before the command line loads.

The children (`import caffe; import cv2` and the reverse, in the examined interpreter)
are a check's longest path; typer and every command's module take a tenth of it to
import. So the entry point reads a plain `check` command line itself, without typer,
and starts them (`probes.head_start`); the command then parses its options as usual and
its `gather` takes the children over when its context is the same. Anything this reader
does not know (`--help`, `--require`, a misspelled option, an interpreter that fails
validation) starts nothing here: the command line then does what it always did.
"""

from __future__ import annotations

import os
from pathlib import Path

# The options of `caffedoc check` a head start understands: those that take a value,
# and flags. `--require` is left out on purpose: its recipe is checked before anything
# runs, so a wrong one stops the command before a child would be wasted.
VALUED = ("--python", "--caffe", "--junit")
FLAGS = ("--json", "--strict", "--no-gpu")


def check_options(args: list[str]) -> dict[str, str] | None:
    """The valued options of a plain `check` command line, or None when it is not one."""
    if not args or args[0] != "check":
        return None
    found: dict[str, str] = {}
    rest = iter(args[1:])
    for arg in rest:
        name, eq, value = arg.partition("=")
        if arg in FLAGS:
            continue
        if name not in VALUED:
            return None
        if not eq:
            value = next(rest, None)
            if value is None:
                return None
        found[name] = value
    return found


def begin(args: list[str]) -> None:
    """Start the import children of the check `args` asks for, if it is a plain one."""
    found = check_options(args)
    if found is None:
        return
    from caffedoc import options, probes
    from caffedoc.errors import CaffedocError

    python, caffe = found.get("--python"), found.get("--caffe")
    try:
        ctx = options.check_context(
            Path(python) if python else None,
            Path(caffe) if caffe else None,
            dict(os.environ),
            gpu_expected="--no-gpu" not in args,
        )
    except (CaffedocError, OSError):
        return  # the command line says what is wrong, as always
    probes.head_start(ctx)
