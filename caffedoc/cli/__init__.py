"""The `caffedoc` command line.

Each command lives in its own module here and imports its engine lazily, so
`caffedoc --help` stays fast. Errors a user can act on leave as one line.

Command modules do not use `from __future__ import annotations`: typer reads their
annotations at run time, and on Python 3.9 it would not see `Annotated` options.
"""

from __future__ import annotations

import os
import sys

# Plain click output: one-line usage errors, no boxes, and a faster start.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer

from caffedoc import __version__
from caffedoc.cli import build, check, docker, explain, fix, recipes, smoke
from caffedoc.errors import CaffedocError

app = typer.Typer(
    help="Make the Caffe deep-learning framework work on this machine, and prove that it does.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"caffedoc {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """caffedoc: diagnose, build, prove and fix Caffe installs."""


app.command()(check.check)
app.command()(explain.explain)
app.command()(build.build)
app.command()(recipes.recipes)
app.command()(smoke.smoke)
app.command()(fix.fix)
app.command()(docker.docker)


def main() -> None:
    try:
        app()
    except CaffedocError as exc:
        typer.echo(f"caffedoc: error: {exc}", err=True)
        sys.exit(exc.code)
    except KeyboardInterrupt:
        typer.echo("caffedoc: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("CAFFEDOC_DEBUG"):
            raise
        typer.echo(
            f"caffedoc: internal error: {type(exc).__name__}: {exc} "
            "(set CAFFEDOC_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(3)
