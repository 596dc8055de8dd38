"""`caffedoc explain`.

No `from __future__ import annotations` here: typer on Python 3.9 cannot read
`Annotated` options from string annotations (`--json` would become `--as-json`).
"""

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from caffedoc import options
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
    here: Annotated[
        bool,
        typer.Option(
            "--here",
            help="Also examine this machine (as `caffedoc check` does, read-only) and name the "
            "problem both the log and the machine show, with the machine's exact fix.",
        ),
    ] = False,
    python: Annotated[
        Optional[Path],
        typer.Option(help="With --here: the interpreter (or venv) that imports caffe."),
    ] = None,
    caffe: Annotated[
        Optional[Path], typer.Option(help="With --here: a Caffe source, build or install tree.")
    ] = None,
) -> None:
    """Name the known Caffe problem a log shows, quoting its lines, with the fix.

    Exit status: 0 a known problem recognized, 1 none recognized, 2 bad usage.
    """
    if not here and (python is not None or caffe is not None):
        raise CaffedocError("--python and --caffe go with --here only")
    context = options.check_context(python, caffe, dict(os.environ)) if here else None
    result = read_log(log)
    source = "standard input" if log == "-" else log
    if context is None:
        if as_json:
            typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        else:
            typer.echo(_render(result, source))
        raise typer.Exit(0 if result.recognized else 1)
    from caffedoc.check import run_check

    both = result.on_this_machine(run_check(context).findings)
    if as_json:
        data = {**result.to_json(), "here": [f.to_json() for f in both]}
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        typer.echo(_render(result, source))
        typer.echo("\n" + _render_here(both))
    raise typer.Exit(0 if result.recognized or both else 1)


def read_log(log: str):
    """The explanation of a log file (`-`: standard input); an unreadable one is bad usage."""
    from caffedoc.explain import explain_stream

    if log == "-":
        return explain_stream(sys.stdin.buffer)
    try:
        with Path(log).open("rb") as stream:
            return explain_stream(stream)
    except FileNotFoundError:
        raise CaffedocError(f"{log}: no such file") from None
    except IsADirectoryError:
        raise CaffedocError(f"{log}: is a directory, not a log file") from None
    except OSError as exc:
        raise CaffedocError(f"{log}: cannot read: {exc.strerror or exc}") from None


def _render_here(both) -> str:
    """What this machine shows of the log's problems: its evidence and its exact fix."""
    if not both:
        return (
            "On this machine: `caffedoc check` finds none of these problems here "
            "(the log may come from another machine or an earlier state)."
        )
    lines = ["On this machine (`caffedoc check` finds it too):"]
    for f in both:
        lines.append(f"✗ {f.title} [{f.id}]")
        lines += [_wrap("seen:", e, "  ") for e in f.evidence]
        lines.append(_wrap("fix:", f.fix, "  "))
    lines.append("`caffedoc fix --from-log LOG` applies it, with a plan first and an undo.")
    return "\n".join(lines)


def _wrap(label: str, text: str, indent: str) -> str:
    from caffedoc import shellwords

    return shellwords.fill(text, WIDTH, f"{indent}{label:<6}", indent + " " * 6)


def _render(result, source: str) -> str:
    """People's view: the likeliest cause in full, the others in brief."""
    from caffedoc.knowledge import forks

    if not result.recognized:
        text = f"No known Caffe problem recognized in {source} ({result.lines} lines read).\n"
        if result.candidate is not None:
            c = result.candidate
            text += (
                f"Closest, too weak to name: {c.problem.title} [{c.problem.id}], "
                f"confidence {c.confidence:.2f} ({c.evidence[0]}).\n"
            )
        return text + "If Caffe fails on this machine, `caffedoc check` examines it directly."
    top, *others = result.matches
    lines = [
        f"✗ {top.problem.title} [{top.problem.id}]",
        f"  confidence {top.confidence:.2f}, from these lines of {source}:",
    ]
    lines += [f"    {e}" for e in top.evidence]
    if top.detail:
        label = "fork:" if top.problem.id == forks.PROBLEM else "hint:"
        lines.append(_wrap(label, top.detail, "  "))
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
