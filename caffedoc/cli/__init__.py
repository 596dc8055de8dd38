"""The `caffedoc` command line.

Each command lives in its own module here and imports its engine lazily, so
`caffedoc --help` stays fast. Errors a user can act on leave as one line.

Command modules do not use `from __future__ import annotations`: typer reads their
annotations at run time, and on Python 3.9 it would not see `Annotated` options.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from typing import NoReturn

# Plain click output: one-line usage errors, no boxes, and a faster start.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer

from caffedoc import __version__
from caffedoc.cli import build, check, docker, explain, fix, recipes, report, smoke
from caffedoc.errors import CaffedocError

EX_IOERR = 74  # sysexits.h: the output could not be written

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
app.command()(report.report)


class OutputError(OSError):
    """Standard output could not be written: a full device, a reader that went away."""


class _Stdout(io.RawIOBase):
    """File descriptor 1, whose write errors are told apart from every other file's."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        return os.isatty(self.fd)

    def write(self, data: bytes) -> int:
        try:
            return os.write(self.fd, data)
        except OSError as exc:
            raise OutputError(exc.errno, exc.strerror) from None


def main() -> None:
    _guard_stdout()
    try:
        _run()
    except CaffedocError as exc:
        typer.echo(f"caffedoc: error: {exc}", err=True)
        sys.exit(exc.code)
    except KeyboardInterrupt:
        typer.echo("caffedoc: interrupted", err=True)
        sys.exit(130)
    except OutputError as exc:
        _output_lost(exc)
    except Exception as exc:
        _internal(exc)


def _guard_stdout() -> None:
    """The real standard output, rewrapped so that its failures raise OutputError."""
    out = sys.stdout
    if out is None or out is not sys.__stdout__ or not hasattr(out, "buffer"):
        return
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(_Stdout(out.fileno())),
        encoding=out.encoding,
        errors=out.errors,
        line_buffering=out.line_buffering,
    )


def _run() -> None:
    try:
        app()
    finally:
        sys.stdout.flush()  # a full device shows here, not in the interpreter's exit


def _output_lost(exc: OSError) -> NoReturn:
    """One line (none for a reader that went away, as with `| head`); fd 1 then points at
    /dev/null, so what is still buffered cannot fail again at exit."""
    if exc.errno != errno.EPIPE:
        with contextlib.suppress(OSError):
            typer.echo(f"caffedoc: error: cannot write the output: {exc.strerror}", err=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(1 if exc.errno == errno.EPIPE else EX_IOERR)


def _internal(exc: Exception) -> NoReturn:
    if os.environ.get("CAFFEDOC_DEBUG"):
        raise exc
    typer.echo(
        f"caffedoc: internal error: {type(exc).__name__}: {exc} "
        "(set CAFFEDOC_DEBUG=1 for the traceback)",
        err=True,
    )
    sys.exit(3)
