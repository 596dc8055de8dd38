"""`caffedoc report`.

No `from __future__ import annotations` here: typer reads these annotations at
run time, and on Python 3.9 it would not see the Annotated options.
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from caffedoc.errors import CaffedocError


def report(
    reports: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE|DIR...",
            help="`caffedoc check --json` reports, or directories of them (*.json).",
            show_default=False,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable fleet view.")] = False,
    html: Annotated[
        Optional[Path],
        typer.Option(metavar="FILE", help="Also write one self-contained HTML page."),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
) -> None:
    """Merge many machines' `check --json` reports: each host's status and findings, each
    finding's hosts, and the facts on which hosts differ (the odd ones out named).

    A file that is not a report this caffedoc can read is named on stderr; the rest still
    show. Exit status: 0 every report read and no host has an error, 1 a host with an error
    (or a warning, with --strict) or a report not read, 2 bad usage or no report read.
    """
    from caffedoc.fleet import html as page
    from caffedoc.fleet import text
    from caffedoc.fleet.load import expand, load
    from caffedoc.fleet.merge import merge

    if not list(expand(reports)):
        raise CaffedocError(f"no *.json report in {', '.join(map(str, reports))}")
    fleet = merge(load(reports))
    for name, why in fleet.unreadable:
        typer.echo(f"caffedoc: error: {name}: {why} (skipped)", err=True)
    if not fleet.hosts:
        raise CaffedocError("no report could be read")
    if html is not None:
        _write(html, page.render(fleet))
    typer.echo(json.dumps(fleet.to_json(), indent=2) if as_json else text.render(fleet))
    failed = fleet.status == "error" or (strict and fleet.status == "warning")
    raise typer.Exit(1 if failed else 0)


def _write(path: Path, content: str) -> None:
    """All or nothing: a temporary beside the page, renamed over it."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise CaffedocError(f"--html {path}: is a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
    except OSError as exc:
        raise CaffedocError(f"--html {path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise CaffedocError(f"--html {path}: cannot write: {exc.strerror or exc}") from None
