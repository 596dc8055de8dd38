"""The primitive changes a fix is made of, each journaled before it happens.

Four kinds cover every action: write a file, append a line to one, move a path
aside (never delete), run a command. Each says in one line what it will do
(`describe`), what a person would type to do it by hand (`shell`), and whether
this user may make the change (`needs_root`). `apply` first records how to put
the paths it changes back, then changes them; it raises `ChangeFailed` with the reason.
Files are written through `caffedoc.safefs`: the name of every temporary is journaled
before it is made, so undo removes one a killed fix left behind.
"""

from __future__ import annotations

import os
import pwd
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from caffedoc import host, safefs
from caffedoc.fix import state
from caffedoc.fix.journal import Journal


class ChangeFailed(Exception):
    """A step could not be completed; the message says why."""


class Step(Protocol):
    kind: str

    def describe(self) -> str: ...
    def shell(self, sudo: str = "") -> str: ...
    def needs_root(self) -> bool: ...
    def apply(self, journal: Journal, env: Mapping[str, str]) -> None: ...
    def to_json(self) -> dict: ...


def snapshot(journal: Journal, paths: list[Path], within: tuple[Path, ...] = ()) -> None:
    """Record the present state of `paths` (the topmost missing ancestor for a new path);
    for a path inside one of `within`, the directories leading to it as well."""
    trees = []
    for p in paths:
        top = _topmost_missing(p)
        root = next((w for w in within if w in top.parents), None)
        trees.append([s.to_json() for s in state.capture(top, journal.blobs, root)])
    journal.record({"type": "snapshot", "trees": trees})


def _topmost_missing(path: Path) -> Path:
    """`path`, or its highest ancestor that does not exist (undo removes what we created)."""
    top = path
    while not os.path.lexists(top.parent) and top.parent != top:
        top = top.parent
    return top


def can_write(path: Path) -> bool:
    """Whether this user may create, replace or move `path`."""
    return can_write_in(path.parent)


def can_write_in(directory: Path) -> bool:
    """Whether this user may create entries in `directory` (or the ancestor that exists)."""
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return os.access(probe, os.W_OK | os.X_OK)


def owner(path: Path) -> int | None:
    """The uid owning `path`, or its nearest existing ancestor."""
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return path.stat().st_uid
    except OSError:
        return None


def current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def _failed(what: str, exc: OSError) -> ChangeFailed:
    return ChangeFailed(f"{what}: {exc.strerror or exc}")


@dataclass(frozen=True)
class WriteFile:
    """Create or replace a file with `content` (parents created as needed)."""

    path: Path
    content: str
    mode: int = 0o644

    kind = "write"

    def describe(self) -> str:
        verb = "replace" if os.path.lexists(self.path) else "create"
        shown = self.content.strip().replace("\n", "\\n")
        return f"{verb} {self.path} (mode {self.mode:04o}) containing: {shown}"

    def shell(self, sudo: str = "") -> str:
        lines = " ".join(shlex.quote(line) for line in self.content.splitlines())
        path = shlex.quote(str(self.path))
        return (
            f"printf '%s\\n' {lines} | {sudo}tee {path} >/dev/null"
            f" && {sudo}chmod {self.mode:04o} {path}"
        )

    def needs_root(self) -> bool:
        return not can_write(self.path)

    def apply(self, journal: Journal, env: Mapping[str, str]) -> None:
        snapshot(journal, [self.path])
        tmp = safefs.temp_name(self.path)
        journal.record({"type": "temp", "path": str(tmp)})
        try:
            safefs.write_file(self.path, [self.content.encode()], self.mode, temp=tmp)
        except OSError as exc:
            raise _failed(f"cannot write {self.path}", exc) from None

    def to_json(self) -> dict:
        return {"kind": self.kind, "path": str(self.path), "content": self.content}


@dataclass(frozen=True)
class AppendLine:
    """Add one line at the end of a text file, keeping its inode, mode and owner."""

    path: Path
    line: str

    kind = "append"

    def describe(self) -> str:
        return f"append to {self.path} the line: {self.line}"

    def shell(self, sudo: str = "") -> str:
        return (
            f"echo {shlex.quote(self.line)} | {sudo}tee -a {shlex.quote(str(self.path))} >/dev/null"
        )

    def needs_root(self) -> bool:
        return not os.access(self.path, os.W_OK) if self.path.exists() else not can_write(self.path)

    def apply(self, journal: Journal, env: Mapping[str, str]) -> None:
        snapshot(journal, [self.path])
        try:
            safefs.append_line(self.path, self.line.encode() + b"\n")
        except OSError as exc:
            raise _failed(f"cannot append to {self.path}", exc) from None

    def to_json(self) -> dict:
        return {"kind": self.kind, "path": str(self.path), "line": self.line}


@dataclass(frozen=True)
class MoveAside:
    """Rename a path to `<path>.caffedoc-moved-<stamp>` beside it: never delete."""

    path: Path
    stamp: str

    kind = "move"

    @property
    def dest(self) -> Path:
        return self.path.with_name(f"{self.path.name}.caffedoc-moved-{self.stamp}")

    def describe(self) -> str:
        return f"move {self.path} aside to {self.dest}"

    def shell(self, sudo: str = "") -> str:
        return f"{sudo}mv {shlex.quote(str(self.path))} {shlex.quote(str(self.dest))}"

    def needs_root(self) -> bool:
        return not can_write(self.path)

    def apply(self, journal: Journal, env: Mapping[str, str]) -> None:
        if os.path.lexists(self.dest):
            raise ChangeFailed(f"cannot move {self.path} aside: {self.dest} already exists")
        journal.record({"type": "moved", "src": str(self.path), "dst": str(self.dest)})
        try:
            safefs.rename(self.path, self.dest)
        except OSError as exc:
            raise _failed(f"cannot move {self.path} aside", exc) from None

    def to_json(self) -> dict:
        return {"kind": self.kind, "path": str(self.path), "dest": str(self.dest)}


@dataclass(frozen=True)
class RunCommand:
    """Run a command whose effects on disk are known in advance.

    `preserve` are the files and trees it may change: recorded in full before it
    runs, put back exactly on undo. `regenerate` are files it rebuilds from
    configuration (a linker cache): not copied back, but rebuilt by running it again
    once everything else is undone, if they changed. `watch` are directories where it may create
    entries (a site-packages, a library directory): undo removes what it added.
    `reverse` says in words how undo reverses it, for the plan. `owner` is the
    uid owning what it changes: root runs it as that user (through setpriv), so a
    user's venv or tree stays theirs.
    """

    argv: tuple[str, ...]
    preserve: tuple[Path, ...] = ()
    regenerate: tuple[Path, ...] = ()
    watch: tuple[Path, ...] = ()
    reverse: str = ""
    timeout: float = 600.0
    env: Mapping[str, str] = field(default_factory=dict)
    owner: int | None = None

    kind = "run"

    def _become(self) -> pwd.struct_passwd | None:
        if self.owner in (None, 0) or os.geteuid() != 0:
            return None
        try:
            return pwd.getpwuid(self.owner)
        except KeyError:
            return None

    def describe(self) -> str:
        undo = f"; undo: {self.reverse}" if self.reverse else ""
        become = self._become()
        user = "root" if self.needs_root() else become.pw_name if become else current_user()
        return f"run as {user}: {shlex.join(self.argv)}{undo}"

    def shell(self, sudo: str = "") -> str:
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return f"{sudo}{assigns} {shlex.join(self.argv)}".replace("  ", " ")

    def needs_root(self) -> bool:
        changed = (*self.preserve, *self.regenerate)
        return not all(map(can_write, changed)) or not all(map(can_write_in, self.watch))

    def apply(self, journal: Journal, env: Mapping[str, str]) -> None:
        snapshot(journal, list(self.preserve), within=self.watch)
        rec = journal.record(
            {
                "type": "watch",
                "dirs": {str(d): sorted(listing(d)) for d in self.watch},
                "created": None,
            }
        )
        argv, extra = self.argv, dict(self.env)
        become = self._become()
        if become is not None:
            ids = [f"--reuid={become.pw_uid}", f"--regid={become.pw_gid}", "--init-groups"]
            argv = ("setpriv", *ids, "--", *argv)
            extra.update(HOME=become.pw_dir, USER=become.pw_name, LOGNAME=become.pw_name)
        if self.regenerate:
            before = {str(p): state.digest(p) for p in self.regenerate}
            journal.record({"type": "regenerate", "argv": list(argv), "env": extra,
                            "timeout": self.timeout, "before": before})  # fmt: skip
        res = host.run(argv, timeout=self.timeout, env={**env, **extra})
        rec["created"] = created(rec["dirs"])
        journal.save()
        if not res.ok:
            tail = " | ".join(res.output.strip().splitlines()[-3:])
            raise ChangeFailed(f"{res.describe()}{': ' + tail if tail else ''}")

    def to_json(self) -> dict:
        return {"kind": self.kind, "argv": list(self.argv), "reverse": self.reverse}


def listing(root: Path) -> set[str]:
    """Every path under `root`, relative, without following links."""
    out: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            out.add(os.path.normpath(os.path.join(rel, name)))
    return out


def created(dirs: dict[str, list[str]]) -> dict[str, list[str]]:
    """What appeared under each watched directory since its listing was taken."""
    return {d: sorted(listing(Path(d)) - set(before)) for d, before in dirs.items()}
