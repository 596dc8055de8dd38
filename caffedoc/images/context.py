"""The build context an image builds from, offline: caffedoc's own source and the Caffe
source tarball the recipe verifies (the Dockerfile fetches neither from GitHub)."""

from __future__ import annotations

import shutil
from pathlib import Path

from caffedoc import docker
from caffedoc.build import source
from caffedoc.errors import CaffedocError
from caffedoc.recipes import Recipe

# What installing caffedoc from source needs (pyproject's package data included).
CHECKOUT_FILES = ("pyproject.toml", "README.md")
CHECKOUT_DIRS = ("caffedoc", "recipes")


def checkout() -> Path:
    """caffedoc's source checkout: an image installs caffedoc from it."""
    root = Path(__file__).resolve().parents[2]
    if not all((root / name).exists() for name in (*CHECKOUT_FILES, *CHECKOUT_DIRS)):
        raise CaffedocError(
            "building images needs caffedoc's source checkout (this caffedoc is installed "
            "without it): run caffedoc from a clone of its repository"
        )
    return root


def tarball(recipe: Recipe, given: Path | None, log: Path) -> Path:
    """The recipe's source tarball, verified: `given`, else the source cache, else fetched
    there as `caffedoc build` fetches it (Debian's source package)."""
    if given is not None:
        if not given.is_file():
            raise CaffedocError(f"--source {given}: not a file (give the source tarball)")
        source.verify_tarball(given, recipe.source)
        return given
    origin = source.origin(recipe.source, None)
    if origin.kind == "apt":
        s = recipe.source
        source.apt_source(s.apt_package or "", s.apt_suite or "", s.tarball, origin.path, log)
    source.verify_tarball(origin.path, recipe.source)
    return origin.path


def make(recipe: Recipe, dest: Path, given: Path | None = None) -> Path:
    """Fill `dest` (new or empty) with the context of `recipe`'s image; return it."""
    if dest.exists() and any(dest.iterdir()):
        raise CaffedocError(f"{dest}: not empty (a build context is made in a fresh folder)")
    root = checkout()
    try:
        dest.mkdir(parents=True, exist_ok=True)
        sources = dest / docker.CONTEXT_SOURCES
        sources.mkdir()
        found = tarball(recipe, given, dest / "fetch.log")
        # A hard link where the cache shares the file system: 8.5 MB not copied per image.
        try:
            (sources / recipe.source.tarball).hardlink_to(found)
        except OSError:
            shutil.copy2(found, sources / recipe.source.tarball)
        own = dest / docker.CONTEXT_CAFFEDOC
        own.mkdir()
        for name in CHECKOUT_FILES:
            shutil.copy2(root / name, own / name)
        skip = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in CHECKOUT_DIRS:
            shutil.copytree(root / name, own / name, symlinks=True, ignore=skip)
    except OSError as exc:
        raise CaffedocError(f"cannot make the build context in {dest}: {exc}") from exc
    return dest
