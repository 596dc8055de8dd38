"""Install into the interpreter that runs Caffe, with its own `-m pip`, undoably.

Undo does not ask pip (or the network) for the old version: the installed
distribution's files, as `pip show -f` lists them, are preserved byte for byte
before pip runs, and whatever pip adds under the interpreter's site directories
is removed. The old version need not be on any index any more, and undo works
offline. A distribution-managed interpreter (PEP 668) is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from caffedoc import host
from caffedoc.fix.steps import RunCommand, owner

# Runs in the target interpreter (Python 2.7 too): where pip installs, whether it is
# a virtual environment, and where the PEP 668 marker would be.
WHERE = (
    "import sys, sysconfig; p = sysconfig.get_paths(); print(p['purelib']); print(p['platlib']); "
    "print(sys.prefix != getattr(sys, 'base_prefix', getattr(sys, 'real_prefix', sys.prefix)))"
    "; print(p['stdlib'])"
)


def installed(python: str, dist: str, env: Mapping[str, str]) -> tuple[str | None, list[Path]]:
    """(version, files) of `dist` as the interpreter's pip sees it; (None, []) when absent."""
    res = host.run(
        [python, "-m", "pip", "show", "-f", "--disable-pip-version-check", dist],
        timeout=60,
        env=env,
    )
    version, location, files, listing = None, None, [], False
    for line in res.stdout.splitlines():
        if line.startswith("Version:"):
            version = line.split(":", 1)[1].strip()
        elif line.startswith("Location:"):
            location = line.split(":", 1)[1].strip()
        elif line.startswith("Files:"):
            listing = True
        elif listing and line.startswith(" ") and location:
            files.append(Path(os.path.normpath(os.path.join(location, line.strip()))))
    return version, files


def install(
    python: str, dist: str, requirement: str, env: Mapping[str, str]
) -> tuple[RunCommand | None, str | None]:
    """The step installing `requirement` (for distribution `dist`), or why there is none."""
    if not host.run([python, "-m", "pip", "--version"], timeout=60, env=env).ok:
        return None, f"{python} has no pip (`{python} -m ensurepip` adds it)"
    lines = host.run([python, "-c", WHERE], timeout=60, env=env).stdout.split("\n")
    if len(lines) < 4:
        return None, f"{python} did not say where it installs packages"
    sites = tuple(dict.fromkeys(Path(p) for p in lines[:2]))
    in_venv, stdlib = lines[2] == "True", Path(lines[3])
    if not in_venv and (stdlib / "EXTERNALLY-MANAGED").exists():
        return None, (
            f"{python} is managed by the distribution (PEP 668): use a virtual environment "
            "or the distribution's package"
        )
    old, files = installed(python, dist, env)
    mine = tuple(f for f in files if any(s in f.parents for s in sites))
    reverse = "remove what pip added"
    if old:
        reverse += f" and restore {dist} {old} file by file"
    argv = (python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input")
    return RunCommand(
        (*argv, requirement),
        preserve=mine,
        watch=sites,
        reverse=reverse,
        timeout=900,
        owner=owner(sites[0]),
    ), None
