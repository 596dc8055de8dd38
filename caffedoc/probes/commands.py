"""Commands: every python*/pip* a user could run (PATH in order, the usual bin
directories, pyenv's shims, the active venv), each followed (shebangs, `env`,
pyenv shims) to the interpreter it really runs. Read from files, nothing run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from caffedoc import host

COMMAND_NAME = re.compile(r"^(python|pip)(\d+(?:\.\d+)?)?$")


@dataclass(frozen=True)
class Command:
    """A python or pip a user can run, and the interpreter behind it."""

    name: str
    path: str
    dirs: tuple[str, ...]  # where it was found: PATH, /usr/bin, pyenv shims…
    first_on_path: bool  # what a bare `name` runs
    kind: str = "python"  # python or pip
    shebang: str | None = None
    runs: str | None = None  # the interpreter it runs (shebang/shim followed)
    via: str | None = None  # how `runs` was found: shebang, env, pyenv shim, binary
    broken: bool = False  # it names an interpreter that does not exist
    note: str | None = None  # why it runs nothing, when it does not


def _search_dirs(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(directory, why it is searched), PATH first, duplicates removed."""
    home = env.get("HOME", "")
    pyenv_root = env.get("PYENV_ROOT") or (os.path.join(home, ".pyenv") if home else "")
    dirs = [(d, "PATH") for d in env.get("PATH", "").split(os.pathsep) if d]
    if env.get("VIRTUAL_ENV"):
        dirs.append((os.path.join(env["VIRTUAL_ENV"], "bin"), "the active venv"))
    if pyenv_root:
        dirs.append((os.path.join(pyenv_root, "shims"), "pyenv shims"))
    if home:
        dirs.append((os.path.join(home, ".local", "bin"), "~/.local/bin"))
    dirs += [("/usr/local/bin", "/usr/local/bin"), ("/usr/bin", "/usr/bin")]
    out, taken = [], set()
    for d, why in dirs:
        real = os.path.realpath(d)
        if real not in taken:
            taken.add(real)
            out.append((d, why))
    return out


def _pyenv_versions(env: Mapping[str, str], root: str) -> tuple[str, ...]:
    """The versions pyenv selects, the way pyenv does: env, .python-version, global."""
    if env.get("PYENV_VERSION"):
        return tuple(re.split(r"[:\s]+", env["PYENV_VERSION"].strip()))
    d = os.getcwd()
    while True:
        text = host.read_text(os.path.join(d, ".python-version"))
        if text is not None:
            return tuple(v for v in text.split() if not v.startswith("#"))
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    text = host.read_text(os.path.join(root, "version"))
    return tuple(text.split()) if text else ("system",)


def _is_pyenv_shim(text: str) -> bool:
    return "pyenv" in text and 'exec "' in text and "libexec/pyenv" in text


def _shebang(path: str) -> tuple[str | None, str | None, str | None]:
    """(first line, interpreter it names, how) for a script; Nones for binaries."""
    head = host.read_text(path, limit=4096) or ""
    if not head.startswith("#!"):
        return None, None, None
    lines = head.splitlines()
    first = lines[0][2:].strip()
    # pip's launcher for interpreter paths too long for a shebang line
    if first in ("/bin/sh", "/usr/bin/env sh") and len(lines) > 1:
        m = re.match(r"^'''exec' (?:\"([^\"]+)\"|(\S+))", lines[1])
        if m:
            return first, m.group(1) or m.group(2), "exec line"
    parts = first.split()
    if not parts:
        return first, None, None
    if os.path.basename(parts[0]) == "env" and len(parts) > 1:
        args = [a for a in parts[1:] if not a.startswith("-")]
        return first, args[0] if args else None, "env"
    return first, parts[0], "shebang"


def _resolve_env(name: str, env: Mapping[str, str], shims: str | None) -> str | None:
    for d in env.get("PATH", "").split(os.pathsep):
        if d and d != shims and os.path.isfile(os.path.join(d, name)):
            return os.path.join(d, name)
    return None


def _through_shim(name: str, env: Mapping[str, str], pyenv: tuple) -> str | None:
    """What pyenv's shim `name` runs: the first selected version that has it."""
    root, versions = pyenv
    for v in versions:
        if v == "system":
            cand = _resolve_env(name, env, os.path.join(root, "shims"))
        else:
            cand = os.path.join(root, "versions", v, "bin", name)
        if cand and os.path.isfile(cand):
            return cand
    return None


def _pyenv(env: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """(pyenv root, the versions it selects here), or ("", ()) without pyenv."""
    home = env.get("HOME", "")
    root = env.get("PYENV_ROOT") or (os.path.join(home, ".pyenv") if home else "")
    root = root if root and os.path.isdir(root) else ""
    return root, _pyenv_versions(env, root) if root else ()


def executable(python: str, env: Mapping[str, str]) -> str:
    """The interpreter itself when `python` is a pyenv shim: the shim costs ~0.1 s a call."""
    if not _is_pyenv_shim(host.read_text(python, limit=4096) or ""):
        return python
    pyenv = _pyenv(env)
    return (pyenv[0] and _through_shim(os.path.basename(python), env, pyenv)) or python


def _command(
    name: str, path: str, dirs: list[str], first: bool, env: Mapping[str, str], pyenv: tuple
) -> Command:
    kind = "pip" if name.startswith("pip") else "python"
    base = Command(name, path, tuple(dirs), first, kind=kind)
    target, shim = path, None
    if _is_pyenv_shim(host.read_text(path, limit=4096) or ""):
        target = _through_shim(name, env, pyenv)
        if target is None:
            note = f"pyenv selects {', '.join(pyenv[1])}, which has no {name}"
            return replace(base, via="pyenv shim", note=note)
        shim = f"pyenv shim → {target}"
    first_line, runs, how = _shebang(target)
    if first_line is None:  # a binary: an interpreter itself
        return replace(base, runs=target if kind == "python" else None, via=shim or "binary")
    if runs is None:
        return replace(base, shebang=first_line, broken=True, note="its shebang names nothing")
    if how == "env":
        found = _resolve_env(runs, env, None)
        if found is None:
            note = f"`#!{first_line}` finds no {runs} on PATH"
            return replace(base, shebang=first_line, runs=runs, via="env", broken=True, note=note)
        runs = found
    broken = not (os.path.isfile(runs) and os.access(runs, os.X_OK))
    return replace(
        base,
        shebang=first_line,
        runs=runs,
        via=shim or how,
        broken=broken,
        note=f"its interpreter {runs} does not exist" if broken else None,
    )


def find_commands(env: Mapping[str, str]) -> tuple[tuple[Command, ...], tuple]:
    """Every python*/pip* in the usual places, each followed to its interpreter."""
    pyenv = _pyenv(env)
    path_dirs = [os.path.realpath(d) for d in env.get("PATH", "").split(os.pathsep) if d]
    where: dict[str, list[str]] = {}
    order: list[tuple[str, str]] = []
    first_seen: dict[str, str] = {}
    for d, why in _search_dirs(env):
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            if not COMMAND_NAME.match(n):
                continue
            p = os.path.join(d, n)
            if not (os.path.isfile(p) and os.access(p, os.X_OK)):
                continue
            if p not in where:
                order.append((n, p))
                where[p] = []
            where[p].append(why)
            if os.path.realpath(d) in path_dirs and n not in first_seen:
                first_seen[n] = p
    commands = tuple(_command(n, p, where[p], first_seen.get(n) == p, env, pyenv) for n, p in order)
    return commands, pyenv
