"""The distribution's package manager, behind one interface.

build (what to install, and installing it), `check --require` (which of a recipe's
packages are here), and docker (the install line of an image, the packages owning a
library) ask a `PackageManager`, never apt or dpkg by name. A recipe names its
packages under its manager's key (`[packages] apt = [...]`), so a new distribution
is a recipe, and a new package manager one adapter module registered here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from caffedoc import toml
from caffedoc.errors import CaffedocError


class PackageManager(Protocol):
    name: str  # the recipe key its packages are listed under: "apt"

    def installed(
        self, names: Iterable[str], env: Mapping[str, str] | None = None
    ) -> dict[str, str] | None:
        """name → version of each installed package among `names`; None where the
        package database is not on this machine (nothing can be said)."""
        ...

    def install_argv(self, names: Iterable[str], *, unattended: bool = True) -> list[str]:
        """The command, run as root, that installs `names`: without asking and with
        nothing optional when `unattended`, else as a person would type it."""
        ...

    def install_env(self) -> dict[str, str]:
        """Variables the install command needs on top of the environment."""
        ...

    def image_install(self, names: Iterable[str], *, keep_lists: bool) -> str:
        """A Dockerfile RUN line's command that installs `names` in a fresh image."""
        ...

    def owners(self, paths: Iterable[str], env: Mapping[str, str]) -> dict[str, list[str]]:
        """path → the packages that own it, for those of `paths` some package owns."""
        ...


def missing(wanted: Iterable[str], installed: Mapping[str, str]) -> tuple[str, ...]:
    """The packages of `wanted` not installed, in the recipe's order: the one place this
    is computed, for the build plan, the requirement check and their advice."""
    return tuple(p for p in wanted if p not in installed)


def debian_suite(package: str, version: str) -> str | None:
    """The Debian suite whose source package of `package` is upstream `version` (from
    debian-sources.toml): what a build fetches to compile that release itself."""
    data = toml.loads((Path(__file__).parent / "debian-sources.toml").read_text("utf-8"))
    return data.get(package, {}).get(version)


MANAGERS = ("apt",)  # one adapter module each, caffedoc.platform.<name>


def manager(name: str) -> PackageManager:
    """The adapter for a recipe's package manager key."""
    if name not in MANAGERS:
        raise CaffedocError(f"no package manager adapter for {name!r} (known: {MANAGERS})")
    return importlib.import_module(f"{__name__}.{name}").ADAPTER
