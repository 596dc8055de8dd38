"""`caffedoc fix`."""

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from caffedoc import options
from caffedoc.errors import CaffedocError


def fix(
    python: Annotated[
        Optional[Path],
        typer.Option(help="Interpreter (or venv) that should import caffe; default: python3."),
    ] = None,
    caffe: Annotated[
        Optional[Path], typer.Option(help="A Caffe source, build or install tree to examine.")
    ] = None,
    only: Annotated[
        Optional[str], typer.Option("--only", help="Fix only this knowledge-base id.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    undo: Annotated[
        bool, typer.Option("--undo", help="Put back everything the last fix changed.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="With --undo: also over files changed since the fix."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Plan and result as JSON.")] = False,
    from_log: Annotated[
        Optional[str],
        typer.Option(
            "--from-log",
            metavar="LOG",
            help="Fix only the problem this log shows that the check also finds here.",
        ),
    ] = None,
) -> None:
    """Apply the known fix for each problem the check finds: plan, confirm, apply, re-check.

    Every change is journaled with a backup; `caffedoc fix --undo` reverses the last fix.
    Nothing changes without --yes (or a yes at the prompt on a terminal).
    """
    from caffedoc import knowledge
    from caffedoc.fix import render, runner
    from caffedoc.fix.plan import FixContext

    env = dict(os.environ)
    if force and not undo:
        raise CaffedocError("--force goes with --undo only")
    if undo:
        done = runner.undo_latest(env, force=force)
        if as_json:
            typer.echo(json.dumps({"undone": done.journal, "problems": done.problems}, indent=2))
        else:
            typer.echo(render.render_undone(done))
        raise typer.Exit(1 if done.problems else 0)
    if only is not None and only not in knowledge.entries():
        raise CaffedocError(f"--only {only}: no such problem id (see `caffedoc check --json`)")
    check = options.check_context(python, caffe, env)
    if from_log is not None:
        only = _from_log(from_log, only, check)
    ctx = FixContext(check=check, env=env)
    outcome = runner.fix(
        ctx,
        only,
        wanted=yes or (not as_json and sys.stdin.isatty()),
        show=lambda o: None if as_json else typer.echo(render.render_plan(o)),
        confirm=lambda: yes or _ask(),
    )
    if as_json:
        typer.echo(json.dumps(render.to_json(outcome), indent=2))
    elif outcome.status != "nothing-to-do":
        typer.echo("\n" + render.render_result(outcome))
    raise typer.Exit(outcome.exit_code)


def _from_log(log: str, only: Optional[str], check) -> str:
    """The id of the likeliest problem of the log that this machine's check finds too."""
    from caffedoc.check import run_check
    from caffedoc.cli.explain import read_log

    if only is not None:
        raise CaffedocError("--from-log and --only cannot be combined")
    both = read_log(log).on_this_machine(run_check(check).findings)
    if not both:
        raise CaffedocError(f"{log}: none of the problems it shows is found on this machine")
    return both[0].id


def _ask() -> bool:
    return typer.confirm("\nApply these changes?", default=False)
