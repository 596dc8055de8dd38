"""`caffedoc recipes`."""

import json
from typing import Annotated

import typer


def recipes(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable list.")] = False,
) -> None:
    """List the recipes and what each one's status rests on: verified (built and smoked by
    caffedoc's own tests: which, and where), reported (field reports only), unverified,
    blocked, or bad (and why)."""
    from caffedoc.recipes import load_all

    found = load_all()
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in found], indent=2))
        return
    width = max(len(r.name) for r in found)
    pad = " " * (width + 13)
    for r in found:
        mark = "BAD" if r.status == "bad" else r.status
        typer.echo(f"{r.name:<{width}}  {mark:<10}  {r.summary}")
        if r.verified:
            typer.echo(f"{pad}by: {r.verified[0]}, on {r.verified[1]}")
        else:
            alt = f" (use {r.alternative})" if r.alternative else ""
            typer.echo(f"{pad}why: {r.reason}{alt}")
