"""A base image made here where no registry can be pulled from: a `debootstrap` minbase
root of the image's Debian release, imported into the engine and tagged as the registry's
image would be (debian:12). The root is cached as a tarball, so debootstrap runs once."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from caffedoc import host
from caffedoc.build import paths
from caffedoc.build.source import debian_mirror
from caffedoc.errors import CaffedocError
from caffedoc.images.engine import Engine

SUITES = {"debian:11": "bullseye", "debian:12": "bookworm", "debian:13": "trixie"}


def can_make(tag: str) -> bool:
    return tag in SUITES


def root_tarball(suite: str) -> Path:
    """The minbase root of `suite` as a tarball in caffedoc's cache, made once."""
    tarball = paths.cache_root() / "roots" / f"{suite}.tar"
    if tarball.is_file():
        return tarball
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        raise CaffedocError(f"making a {suite} root needs debootstrap, run as root")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tarball.parent) as scratch:
        root = Path(scratch) / "root"
        made = host.run(
            ["debootstrap", "--variant=minbase", suite, root, debian_mirror()], timeout=1800
        )
        if not made.ok:
            raise CaffedocError(f"debootstrap {suite}: {made.describe()}")
        part = Path(scratch) / "root.tar"
        packed = host.run(["tar", "-C", root, "-cf", part, "."], timeout=600)
        if not packed.ok:
            raise CaffedocError(f"cannot pack the {suite} root: {packed.describe()}")
        os.replace(part, tarball)  # whole or not at all
    return tarball


def make(engine: Engine, tag: str) -> None:
    """Tag a debootstrap root of `tag`'s release as `tag` in `engine`'s store."""
    if not can_make(tag):
        raise CaffedocError(f"no way to make {tag} here: only {', '.join(SUITES)}")
    tarball = root_tarball(SUITES[tag])
    if engine.name != "buildah":
        res = engine.run("import", "--change", "CMD /bin/bash", tarball, tag, timeout=1200)
        if not res.ok:
            raise CaffedocError(f"cannot import the {tag} root: {res.describe()}")
        return
    made = engine.run("from", "scratch", timeout=120)
    if not made.ok:
        raise CaffedocError(f"buildah from scratch: {made.describe()}")
    ctr = made.stdout.strip().splitlines()[-1]
    try:
        for args in (["add", ctr, tarball, "/"], ["config", "--cmd", "/bin/bash", ctr],
                     ["commit", "-q", ctr, tag]):  # fmt: skip
            res = engine.run(*args, timeout=1200)
            if not res.ok:
                raise CaffedocError(f"cannot make {tag}: {res.describe()}")
    finally:
        engine.run("rm", ctr, timeout=120)
