"""Python interpreters and pips: what a user runs, and what each one sees.

The commands (`commands`) are every python*/pip* a user could run, each followed to
the interpreter it runs; each interpreter first on PATH is asked what it sees
(`interpreters`), the target's answer (the `target` probe) reused, and python,
python3 and python3.11 beside each other asked once.
"""

from __future__ import annotations

import concurrent.futures
import os
from dataclasses import dataclass, field, replace

from caffedoc.probes import Context, Session, probe
from caffedoc.probes.commands import Command, executable, find_commands
from caffedoc.probes.imports import IMPORT_ORDERS
from caffedoc.probes.interpreters import Interpreter, account, introspect


@dataclass(frozen=True)
class CodeRun:
    """An interpreter whose code (its start-up, sitecustomize and .pth files, the modules
    imported) a check runs, and the account it runs as."""

    python: str
    what: str  # "sys.path; import caffe, cv2"
    user: str
    note: str | None = None  # why not as the interpreter's owner, when it should have been


@dataclass(frozen=True)
class PythonFacts:
    target: Interpreter
    commands: tuple[Command, ...]
    interpreters: dict[str, Interpreter] = field(default_factory=dict)  # by command target
    pyenv_root: str | None = None
    pyenv_version: tuple[str, ...] = ()
    virtual_env: str | None = None
    runs_code: tuple[CodeRun, ...] = ()


def _summarize(f: PythonFacts) -> list[str]:
    t = f.target
    major = (t.version or "3").split(".")[0]
    lines = []
    if t.ok:
        venv = f", venv of {t.base_prefix}" if t.in_venv else ""
        runs = f"{t.executable}, " if t.executable and t.executable != t.path else ""
        lines.append(f"target: {t.path} ({runs}Python {t.version}{venv})")
    else:
        lines.append(f"target: {t.path} could not be examined: {t.error}")
    for c in f.commands:
        if c.first_on_path and c.kind == "pip" and c.name in ("pip", f"pip{major}"):
            other = f.interpreters.get(c.runs or "")
            into = f"{other.prefix} (Python {other.version})" if other and other.ok else c.runs
            lines.append(f"{c.name}: {c.note}" if c.broken or not c.runs else f"{c.name} → {into}")
    broken = [c for c in f.commands if c.broken]
    if broken:
        lines.append(f"{len(broken)} python/pip command(s) cannot run")
    for r in f.runs_code:
        note = f" ({r.note})" if r.note else ""
        lines.append(f"runs code of: {r.python} ({r.what}) as {r.user}{note}")
    return lines


def _code_runs(ctx: Context, asked: list[str]) -> tuple[CodeRun, ...]:
    """Every interpreter this check runs, what it runs there, and as whom."""
    imports = ", ".join(IMPORT_ORDERS[0])
    out = []
    for p in asked:
        what = "sys.path" + (f"; import {imports}" if p == str(ctx.python) else "")
        _user, name, note = account(executable(p, ctx.env))
        out.append(CodeRun(p, what, name, note))
    return tuple(out)


def _same_interpreter(path: str) -> tuple[str, str]:
    """Names of one binary in one directory see one sys.path (a venv is found from the
    directory the name is in, the rest from the binary)."""
    return os.path.realpath(os.path.dirname(path)), os.path.realpath(path)


def _renamed(interp: Interpreter, path: str) -> Interpreter:
    """What `path` sees, from what another name of the same interpreter saw."""
    if interp.path == path:
        return interp
    executable = path if interp.executable == interp.path else interp.executable
    return replace(interp, path=path, executable=executable)


def _named_python(path: str) -> bool:
    return os.path.basename(os.path.realpath(path)).startswith(("python", "pypy"))


def _unexamined(f: PythonFacts) -> str | None:
    """A target that could not be run (hung, crashed, not a Python) leaves the area unseen."""
    return (
        f"the target {f.target.path} could not be examined: {f.target.error}"
        if f.target.error
        else None
    )


@probe("python", ("target",), _summarize, _unexamined)
def gather(session: Session, target: Interpreter) -> PythonFacts:
    """The commands a user runs, and what each interpreter behind them sees."""
    ctx = session.ctx
    commands, (root, versions) = find_commands(ctx.env)
    # Only what is a Python by its name: a `python3` script's `#!/bin/sh` is no interpreter
    # to hand Python code to.
    others = {
        c.runs
        for c in commands
        if c.first_on_path and c.runs and not c.broken and _named_python(c.runs)
    }
    wanted = [str(ctx.python), *sorted(others - {str(ctx.python)})]
    # python, python3 and python3.11 beside each other are one interpreter: ask it once.
    first: dict[tuple[str, str], str] = {}
    for p in wanted:
        first.setdefault(_same_interpreter(p), p)
    asked = list(first.values())
    rest = asked[1:]  # asked[0] is the target, already seen
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(8, len(rest)))) as pool:
        found = {
            asked[0]: target,
            **dict(zip(rest, pool.map(lambda p: introspect(session, p), rest))),
        }
    seen = {p: _renamed(found[first[_same_interpreter(p)]], p) for p in wanted}
    return PythonFacts(
        target=seen[str(ctx.python)],
        commands=commands,
        interpreters=seen,
        pyenv_root=root or None,
        pyenv_version=versions,
        virtual_env=ctx.env.get("VIRTUAL_ENV"),
        runs_code=_code_runs(ctx, asked),
    )
