"""`caffedoc docker`.

No postponed annotations: typer reads them at run time (Python 3.9 included).
"""

from pathlib import Path
from typing import Annotated, Optional

import typer

from caffedoc.errors import CaffedocError


def docker(
    recipe: Annotated[
        Optional[str], typer.Option(help="Only this recipe's Dockerfile (default: every one).")
    ] = None,
    out: Annotated[Path, typer.Option(metavar="DIR", help="Write the Dockerfiles here.")] = Path(
        "docker"
    ),
    runtime_packages: Annotated[
        Optional[Path],
        typer.Option(
            metavar="PREFIX",
            help="Instead: print the Debian packages an installed Caffe loads (used in images).",
        ),
    ] = None,
) -> None:
    """Write a verification image's Dockerfile for each recipe (none for a known-bad one).

    Each builds Caffe from the recipe in a build stage, keeps only the installed Caffe,
    its runtime libraries and caffedoc in the final stage, and runs `caffedoc check` and
    `caffedoc smoke` there, so an image that does not work fails to build.

    Exit status: 0 written, 2 bad usage.
    """
    from caffedoc import docker as images
    from caffedoc.recipes import load_all

    if runtime_packages is not None:
        if recipe is not None:
            raise CaffedocError("--runtime-packages takes no --recipe")
        if not runtime_packages.is_dir():
            raise CaffedocError(f"--runtime-packages {runtime_packages}: no such directory")
        for name in images.runtime_packages(runtime_packages):
            typer.echo(name)
        return
    recipes = load_all()
    if recipe is not None:
        chosen = [r for r in recipes if r.name == recipe]
        if not chosen:
            known = ", ".join(r.name for r in recipes)
            raise CaffedocError(f"no recipe named {recipe!r}; known recipes: {known}")
        if not images.has_image(chosen[0]):
            r = chosen[0]
            raise CaffedocError(f"recipe {r.name} is known to be bad ({r.reason}): no image")
    else:
        chosen = [r for r in recipes if images.has_image(r)]
    for path in images.generate(chosen, out):
        typer.echo(str(path))
