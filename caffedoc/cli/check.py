"""`caffedoc check`.

No `from __future__ import annotations` here: typer reads these annotations at
run time, and on Python 3.9 it would not see the Annotated options.
"""

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from caffedoc import options


def check(
    python: Annotated[
        Optional[Path],
        typer.Option(help="Interpreter (or venv) to diagnose; default: python3 on PATH."),
    ] = None,
    caffe: Annotated[
        Optional[Path], typer.Option(help="A Caffe source, build or install tree to examine.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
    junit: Annotated[
        Optional[Path], typer.Option(metavar="FILE", help="Also write the report as JUnit XML.")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
    no_gpu: Annotated[
        bool,
        typer.Option(
            "--no-gpu",
            help="No GPU here by design (an image build, a CI runner): a CUDA build that "
            "cannot use one is a note, not a warning.",
        ),
    ] = False,
    require: Annotated[
        Optional[str],
        typer.Option(metavar="recipe=NAME", help="Fail unless this machine matches the recipe."),
    ] = None,
) -> None:
    """Inspect this machine (read-only) and report each Caffe problem with its known fix.

    Exit status: 0 no errors, 1 at least one error (or warning, with --strict; or a
    machine that differs from the --require recipe), 2 bad usage.
    """
    # What a check needs first, first: its import children start before the knowledge
    # base, the recipes and the renderer are even imported (they load meanwhile).
    from caffedoc.check import Report, run_check

    wanted = None
    if require is not None:
        from caffedoc import require as requirement
        from caffedoc.recipes import load_all

        wanted = requirement.find(load_all(), require)
    env = dict(os.environ)
    ctx = options.check_context(python, caffe, env, gpu_expected=not no_gpu)
    report = run_check(ctx)
    if wanted is not None:
        found = requirement.judge(wanted, report.facts, env)
        report = Report(report.facts, [*report.findings, found])
    if junit is not None:
        from caffedoc.junit import write

        write(report, junit, strict=strict)
    from caffedoc.render import render_text

    typer.echo(json.dumps(report.to_json(), indent=2) if as_json else render_text(report))
    raise typer.Exit(1 if strict and report.status == "warning" else report.exit_code)
