"""The container engine that is present: docker (with a daemon), podman or buildah.

Each is driven through its command line (host.run). buildah runs as root here only with the
vfs storage driver and chroot isolation, which are its defaults when the user sets none.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from caffedoc import host
from caffedoc.errors import CaffedocError
from caffedoc.host import Result

ENGINES = ("docker", "podman", "buildah")
BUILDAH_DEFAULTS = {"STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}
# Proxy settings pass to the build as build arguments: docker and podman keep these
# predefined ones out of the image's history.
PROXY_ARGS = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
BUILD_TIMEOUT = 4 * 3600


@dataclass(frozen=True)
class Engine:
    name: str
    path: str

    @property
    def volumes(self) -> bool:
        """Whether a build takes `-v` volumes (docker build does not: BuildKit cache mounts)."""
        return self.name != "docker"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.name == "buildah":
            for key, value in BUILDAH_DEFAULTS.items():
                env.setdefault(key, value)
        return env

    def run(self, *args: str | os.PathLike[str], timeout: float = 600) -> Result:
        return host.run([self.path, *args], timeout=timeout, env=self.env())

    def has_image(self, tag: str) -> bool:
        if self.name == "buildah":
            return self.run("inspect", "--type", "image", tag, timeout=120).ok
        return self.run("image", "inspect", tag, timeout=120).ok

    def build(
        self,
        dockerfile: Path,
        context: Path,
        tag: str,
        *,
        volumes: Mapping[str, str],
        build_args: Mapping[str, str],
    ) -> Result:
        """Build `tag`; never pull (the base must be here: a registry may be out of reach)."""
        args: list[str] = ["bud", "--pull-never", "--layers"] if self.name == "buildah" else [
            "build", *(["--pull=never"] if self.name == "podman" else [])]  # fmt: skip
        args += ["-f", str(dockerfile), "-t", tag]
        for src, dest in volumes.items():
            args += ["-v", f"{src}:{dest}"]
        for key, value in {**_proxies(), **build_args}.items():
            args += ["--build-arg", f"{key}={value}"]
        return self.run(*args, str(context), timeout=BUILD_TIMEOUT)

    def run_in(self, tag: str, argv: Sequence[str], timeout: float = 900) -> Result:
        """Run `argv` in a fresh container of `tag` (buildah: a working container)."""
        if self.name != "buildah":
            return self.run("run", "--rm", tag, *argv, timeout=timeout)
        made = self.run("from", "--pull-never", tag, timeout=300)
        if not made.ok:
            return made
        ctr = made.stdout.strip().splitlines()[-1]
        try:
            return self.run("run", ctr, "--", *argv, timeout=timeout)
        finally:
            self.run("rm", ctr, timeout=120)

    def size(self, tag: str) -> int | None:
        """The image's size in bytes, as the engine counts it."""
        fmt = "{{.Size}}"
        res = (
            self.run("images", "--format", fmt, tag, timeout=120)
            if self.name == "buildah"
            else self.run("image", "inspect", "--format", fmt, tag, timeout=120)
        )
        text = "".join(res.stdout.split())
        if not res.ok or not text:
            return None
        return _bytes(text) if self.name == "buildah" else int(text)

    def remove(self, tag: str) -> None:
        self.run("rmi", "-f", tag, timeout=600)


def _bytes(text: str) -> int | None:
    """buildah's human size (`1.07 GB`, `890 MB`) as bytes."""
    units = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}
    number = text.rstrip("KMGB")
    unit = text[len(number) :] or "B"
    try:
        return int(float(number) * units[unit])
    except (KeyError, ValueError):
        return None


def _proxies() -> dict[str, str]:
    return {k: os.environ[k] for k in PROXY_ARGS if os.environ.get(k)}


def find(wanted: str | None = None) -> Engine:
    """The engine asked for, else the first of docker (only with a reachable daemon), podman
    and buildah that is present."""
    names = (wanted,) if wanted else ENGINES
    tried = []
    for name in names:
        path = shutil.which(name)
        if path is None:
            tried.append(f"{name}: not installed")
            continue
        engine = Engine(name, path)
        if name == "docker":
            res = engine.run("info", "--format", "{{.ServerVersion}}", timeout=30)
            if not res.ok:
                tried.append("docker: no daemon answers")
                continue
        return engine
    raise CaffedocError(
        "no container engine to build images with ("
        + "; ".join(tried)
        + "): install docker, podman or buildah"
    )
