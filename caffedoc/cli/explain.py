"""`caffedoc explain`.

No `from __future__ import annotations` here: typer on Python 3.9 cannot read
`Annotated` options from string annotations (`--json` would become `--as-json`).
"""

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from caffedoc.errors import CaffedocError

WIDTH = 92


def explain(
    log: Annotated[
        str,
        typer.Argument(
            metavar="FILE|-",
            help="A build log, traceback or crash output; - reads standard input.",
            show_default=False,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
) -> None:
    """Name the known Caffe problem a log shows, quoting its lines, with the fix.

    Exit status: 0 a known problem recognized, 1 none recognized, 2 bad usage.
    """
    from caffedoc.explain import explain_stream

    if log == "-":
        result = explain_stream(sys.stdin.buffer)
    else:
        path = Path(log)
        try:
            with path.open("rb") as stream:
                result = explain_stream(stream)
        except FileNotFoundError:
            raise CaffedocError(f"{log}: no such file") from None
        except IsADirectoryError:
            raise CaffedocError(f"{log}: is a directory, not a log file") from None
        except OSError as exc:
            raise CaffedocError(f"{log}: cannot read: {exc.strerror or exc}") from None
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        typer.echo(_render(result, "standard input" if log == "-" else log))
    raise typer.Exit(0 if result.recognized else 1)


def _wrap(label: str, text: str, indent: str) -> str:
    from caffedoc import shellwords

    return shellwords.fill(text, WIDTH, f"{indent}{label:<6}", indent + " " * 6)


def _render(result, source: str) -> str:
    """People's view: the likeliest cause in full, the others in brief."""
    if not result.recognized:
        return (
            f"No known Caffe problem recognized in {source} ({result.lines} lines read).\n"
            "If Caffe fails on this machine, `caffedoc check` examines it directly."
        )
    top, *others = result.matches
    lines = [
        f"✗ {top.problem.title} [{top.problem.id}]",
        f"  confidence {top.confidence:.2f}, from these lines of {source}:",
    ]
    lines += [f"    {e}" for e in top.evidence]
    lines.append(_wrap("why:", top.problem.summary, "  "))
    lines.append(_wrap("fix:", top.problem.fix, "  "))
    if top.problem.references:
        lines.append("  see:  " + ", ".join(top.problem.references))
    if others:
        lines += ["", "Also possible:"]
        for m in others:
            lines.append(f"  · {m.problem.title} [{m.problem.id}], confidence {m.confidence:.2f}")
            lines += [f"      {e}" for e in m.evidence[:2]]
        lines.append(
            f"  (caffedoc explain --json {source if source != 'standard input' else '-'}"
            " gives every fix)"
        )
    return "\n".join(lines)
