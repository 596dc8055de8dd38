"""The exact state of paths on disk, recorded before a change and put back on undo.

A snapshot records, for each path, whether it was absent, a directory, a
symlink (its target) or a file (its bytes, kept in a content-addressed blob
store, plus mode, owner and modification time). Restoring writes each file to a
temporary name beside it and renames it into place, so an interrupted restore
never leaves a half-written file, and restoring the same snapshot twice is
harmless: undo works whether or not the change it reverses had happened.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import asdict, dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class PathState:
    """One path as it was: `kind` is absent, dir, symlink, file, or parent (a directory
    recorded only so that it can be recreated as it was, not its contents)."""

    path: str
    kind: str
    mode: int = 0
    uid: int = -1
    gid: int = -1
    mtime_ns: int = 0
    target: str | None = None  # symlink target
    sha256: str | None = None  # file contents, in the blob store

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> PathState:
        return cls(**data)


class Blobs:
    """File contents by sha256, so a snapshot of many equal files stays small."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, path: Path) -> str:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        sha = digest.hexdigest()
        dest = self.root / sha
        if not dest.exists():
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = dest.with_name(sha + ".part")
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        return sha

    def path(self, sha: str) -> Path:
        return self.root / sha


def capture(path: Path, blobs: Blobs, within: Path | None = None) -> list[PathState]:
    """The state of `path` and, for a directory, of everything below it.

    With `within`, the directories between it and `path` are recorded first (as
    parents), so a file whose directory a command removes can be put back as it was.
    """
    parents = []
    if within is not None and within in path.parents:
        ancestors = list(path.parents)
        for d in reversed(ancestors[: ancestors.index(within)]):
            st = os.lstat(d)
            parents.append(replace(_state(d, st, blobs), kind="parent"))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return [*parents, PathState(str(path), "absent")]
    out = [*parents, _state(path, st, blobs)]
    if stat.S_ISDIR(st.st_mode):
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                child = Path(dirpath) / name
                out.append(_state(child, os.lstat(child), blobs))
    return out


def _state(path: Path, st: os.stat_result, blobs: Blobs) -> PathState:
    common = {
        "path": str(path),
        "mode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mtime_ns": st.st_mtime_ns,
    }
    if stat.S_ISLNK(st.st_mode):
        return PathState(kind="symlink", target=os.readlink(path), **common)
    if stat.S_ISDIR(st.st_mode):
        return PathState(kind="dir", **common)
    if stat.S_ISREG(st.st_mode):
        return PathState(kind="file", sha256=blobs.put(path), **common)
    raise OSError(f"{path}: not a regular file, directory or symlink; caffedoc will not touch it")


def restore(states: list[PathState], blobs: Blobs) -> None:
    """Put every path back as recorded; the first state after any parents is the root.

    Anything now under a recorded directory that the snapshot does not hold is
    removed, so the tree ends exactly as it was.
    """
    recorded = {s.path for s in states}
    root = next(s for s in states if s.kind != "parent")
    if root.kind == "dir" and os.path.isdir(root.path) and not os.path.islink(root.path):
        _remove_extras(Path(root.path), recorded)
    for s in states:
        _restore_one(s, blobs)
    for s in reversed(states):  # directory times last: restoring children changes them
        if s.kind in ("dir", "parent"):
            _set_meta(Path(s.path), s)


def _remove_extras(root: Path, recorded: set[str]) -> None:
    for dirpath, dirnames, filenames in os.walk(root, topdown=True):
        for name in list(dirnames):
            child = os.path.join(dirpath, name)
            if child not in recorded:
                remove(Path(child))
                dirnames.remove(name)
        for name in filenames:
            child = os.path.join(dirpath, name)
            if child not in recorded:
                os.unlink(child)


def remove(path: Path) -> None:
    """Remove a file, link or whole tree; absent is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _restore_one(s: PathState, blobs: Blobs) -> None:
    path = Path(s.path)
    if s.kind == "absent":
        remove(path)
        return
    if s.kind in ("dir", "parent"):
        if not path.is_dir() or path.is_symlink():
            remove(path)
            path.mkdir()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.caffedoc-restore")
    remove(tmp)
    if s.kind == "symlink":
        os.symlink(s.target or "", tmp)
        if os.geteuid() == 0:
            os.lchown(tmp, s.uid, s.gid)
    else:
        shutil.copyfile(blobs.path(s.sha256 or ""), tmp)
        _set_meta(tmp, s)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    os.replace(tmp, path)


def _set_meta(path: Path, s: PathState) -> None:
    if os.geteuid() == 0:
        os.chown(path, s.uid, s.gid)
    os.chmod(path, s.mode)
    os.utime(path, ns=(s.mtime_ns, s.mtime_ns))
