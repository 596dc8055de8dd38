"""`caffedoc recipes`."""

import json
from typing import Annotated

import typer


def recipes(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable list.")] = False,
) -> None:
    """List the recipes: known-good builds, and combinations known to be bad and why."""
    from caffedoc.recipes import load_all

    found = load_all()
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in found], indent=2))
        return
    width = max(len(r.name) for r in found)
    for r in found:
        mark = {"good": "good", "unverified": "untried", "bad": "BAD", "blocked": "blocked"}
        typer.echo(f"{r.name:<{width}}  {mark[r.status]:<7}  {r.summary}")
        if r.status != "good":
            alt = f" (use {r.alternative})" if r.alternative else ""
            typer.echo(f"{'':<{width}}           why: {r.reason}{alt}")
