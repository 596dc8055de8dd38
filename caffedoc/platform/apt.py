"""apt and dpkg: Debian and Ubuntu's package manager, the one adapter today."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from caffedoc import host
from caffedoc.errors import CaffedocError

# NVIDIA's apt sources in older CUDA images carry a revoked signing key, so `apt-get update`
# fails there; nothing is installed from them (the CUDA libraries are in the image).
DROP_NVIDIA_APT = "rm -f /etc/apt/sources.list.d/cuda*.list /etc/apt/sources.list.d/nvidia-ml*.list"


class Apt:
    name = "apt"

    def installed(
        self, names: Iterable[str], env: Mapping[str, str] | None = None
    ) -> dict[str, str] | None:
        env = {**(env if env is not None else os.environ), "LC_ALL": "C"}
        if not host.which_all("dpkg-query", env.get("PATH", "")):
            return None
        names = list(names)
        if not names:
            return {}
        res = host.run(
            ["dpkg-query", "-W", "-f=${Package} ${Version} ${db:Status-Abbrev}\n", *names],
            timeout=30,
            env=env,
        )
        out = {}
        for line in res.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].startswith("ii"):
                out[parts[0].split(":")[0]] = parts[1]
        return out

    def install_argv(self, names: Iterable[str], *, unattended: bool = True) -> list[str]:
        if not unattended:
            return ["apt-get", "install", *names]
        return ["apt-get", "install", "-y", "--no-install-recommends", *names]

    def install_env(self) -> dict[str, str]:
        return {"DEBIAN_FRONTEND": "noninteractive"}

    def image_install(self, names: Iterable[str], *, keep_lists: bool) -> str:
        line = (
            f"{DROP_NVIDIA_APT} \\\n"
            " && apt-get update \\\n"
            " && apt-get install -y --no-install-recommends " + " ".join(names)
        )
        return line if keep_lists else line + " \\\n && rm -rf /var/lib/apt/lists/*"

    def owners(self, paths: Iterable[str], env: Mapping[str, str]) -> dict[str, list[str]]:
        res = host.run(["dpkg-query", "-S", *paths], timeout=60, env={**env, "LC_ALL": "C"})
        if res.error:
            raise CaffedocError(f"dpkg-query is needed to name runtime packages: {res.describe()}")
        owners: dict[str, list[str]] = {}
        for line in res.stdout.splitlines():
            names, sep, path = line.partition(": ")
            if sep and not names.startswith("diversion"):
                owners[path.strip()] = [n.strip().split(":")[0] for n in names.split(",")]
        return owners


ADAPTER = Apt()
