"""`caffedoc docker`.

No postponed annotations: typer reads them at run time (Python 3.9 included).
"""

from pathlib import Path
from typing import Annotated, Optional

import typer

from caffedoc.errors import CaffedocError


def docker(
    names: Annotated[
        Optional[list[str]],
        typer.Argument(metavar="[RECIPE]...", help="With --build: these recipes' images."),
    ] = None,
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
    build: Annotated[
        bool, typer.Option("--build", help="Build and verify the images (every one by default).")
    ] = False,
    engine: Annotated[
        Optional[str], typer.Option(help="docker, podman or buildah (default: the one present).")
    ] = None,
    base_from_debootstrap: Annotated[
        bool,
        typer.Option(
            "--base-from-debootstrap",
            help="Make a missing debian:11/12/13 base image from a debootstrap root (cached).",
        ),
    ] = False,
    source: Annotated[
        Optional[Path], typer.Option(metavar="TARBALL", help="The Caffe source tarball (verified).")
    ] = None,
    file: Annotated[
        Optional[Path],
        typer.Option("--file", metavar="DOCKERFILE", help="Build this Dockerfile instead."),
    ] = None,
    junit: Annotated[
        Optional[Path], typer.Option(metavar="FILE", help="With --build: JUnit XML for CI.")
    ] = None,
    cuda_arch: Annotated[
        Optional[str],
        typer.Option(
            metavar="LIST",
            help="With --build: a CUDA image's GPU targets only (75, or 7.5,8.6; default: the "
            "recipe's whole list), tagged caffe:RECIPE-sm75.",
        ),
    ] = None,
) -> None:
    """Write a verification image's Dockerfile for each recipe (none for a known-bad one),
    or with --build build and verify the images with the engine present.

    Each builds Caffe from the recipe in a build stage, offline from its build context,
    holds it to the recipe (`check --strict --require`), keeps only the installed Caffe,
    its runtime libraries and caffedoc in the final stage, and runs `caffedoc check
    --strict` and `caffedoc smoke` there, so an image that does not work fails to build.

    Exit status: 0 written (or every image built and verified), 1 an image failed or none
    could be built, 2 bad usage.
    """
    from caffedoc import docker as images
    from caffedoc.recipes import load_all

    if build:
        _build(names or [], engine, base_from_debootstrap, source, file, junit, cuda_arch)
        return
    if names or engine or base_from_debootstrap or source or file or junit or cuda_arch:
        raise CaffedocError(
            "RECIPE, --engine, --base-from-debootstrap, --source, --file, --junit and "
            "--cuda-arch go with --build"
        )
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


def _build(
    names: list[str],
    engine: Optional[str],
    make_bases: bool,
    source: Optional[Path],
    file: Optional[Path],
    junit: Optional[Path],
    cuda_arch: Optional[str],
) -> None:
    from caffedoc import docker as images
    from caffedoc.build import arches
    from caffedoc.images import engine as engines
    from caffedoc.images import verify
    from caffedoc.recipes import load_all

    recipes = load_all()
    by_name = {r.name: r for r in recipes}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        known = ", ".join(by_name)
        raise CaffedocError(f"no recipe named {unknown[0]!r}; known recipes: {known}")
    chosen = [by_name[n] for n in names] or [r for r in recipes if images.has_image(r)]
    for r in chosen:
        if not images.has_image(r):
            raise CaffedocError(f"recipe {r.name} is known to be bad ({r.reason}): no image")
    targets = arches.parse(cuda_arch) if cuda_arch is not None else ()
    fixed = [r.name for r in chosen if not images.toolkit_wheels(r)]
    if targets and fixed:
        raise CaffedocError(
            f"--cuda-arch: recipe {fixed[0]} takes no GPU targets (a CPU recipe, or one whose "
            "CMake options fix them)"
        )
    if file is not None and len(chosen) != 1:
        raise CaffedocError("--file builds one recipe's image: name exactly one RECIPE")
    if file is not None and not file.is_file():
        raise CaffedocError(f"--file {file}: no such file")
    if source is not None and not source.is_file():
        raise CaffedocError(f"--source {source}: no such file")
    if engine is not None and engine not in engines.ENGINES:
        raise CaffedocError(f"--engine {engine}: one of {', '.join(engines.ENGINES)}")
    found = engines.find(engine)
    typer.echo(f"engine: {found.name} ({found.path})")
    results = []
    for r in chosen:
        typer.echo(f"{r.name}: building {verify.tag_of(r, targets)} …")
        done = verify.build(found, r, make_bases=make_bases, source=source, dockerfile=file,
                            cuda_arch=targets)  # fmt: skip
        typer.echo(done.line() + (f"\n  log: {done.log}" if done.log else ""))
        results.append(done)
    if junit is not None:
        verify.junit(results, junit)
    if any(r.outcome == "failed" for r in results) or all(r.outcome != "built" for r in results):
        raise typer.Exit(1)
