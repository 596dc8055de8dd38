"""`caffedoc smoke`."""

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from caffedoc import options
from caffedoc.errors import CaffedocError

# The step takes seconds, a slow import minutes; a day bounds a typo (1e7 s is 115 days)
# and keeps the wait a number the timers take (inf and nan are no timeout at all).
MAX_TIMEOUT = 86400


def smoke(
    python: Annotated[
        Optional[Path],
        typer.Option(
            help="Interpreter (or venv) whose Caffe to prove; "
            "default: the one the last `caffedoc build` pinned, else python3 on PATH."
        ),
    ] = None,
    gpu: Annotated[
        Optional[int], typer.Option("--gpu", metavar="N", help="Train on GPU N.")
    ] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="Train on the CPU.")] = False,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds before the step counts as hung (1 to 86400, a day)."),
    ] = 120,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
) -> None:
    """Train a tiny net from memory (MemoryData) through pycaffe and check that it learns.

    Runs in its own process with a timeout: import, solver, training until the loss
    falls, a test pass with the trained weights, a snapshot reloaded into a fresh net.
    Without --gpu or --cpu it uses a GPU when one is usable and says which it chose.

    Exit status: 0 passed, 1 failed (with the likely cause), 2 bad usage.
    """
    from caffedoc.smoke import render_text, run_smoke

    if cpu and gpu is not None:
        raise CaffedocError("--cpu and --gpu: choose one")
    if not 1 <= timeout <= MAX_TIMEOUT:  # false for nan too
        raise CaffedocError(f"--timeout {timeout:g}: expected 1 to {MAX_TIMEOUT} seconds (a day)")
    env = dict(os.environ)
    interpreter = options.interpreter(python) or _default_python(env)
    result = run_smoke(
        interpreter,
        mode="cpu" if cpu else "gpu" if gpu is not None else "auto",
        gpu=gpu,
        timeout=timeout,
        env=env,
    )
    typer.echo(json.dumps(result.to_json(), indent=2) if as_json else render_text(result))
    raise typer.Exit(0 if result.passed else 1)


def _default_python(env: dict[str, str]) -> Path:
    """The interpreter the last `caffedoc build` pinned, else python3 on PATH."""
    from caffedoc.layout import last_built_python
    from caffedoc.probes import default_python

    return last_built_python() or default_python(env)
