"""The exact state of paths on disk, recorded before a change and put back on undo.

A snapshot records, for each path, whether it was absent, a directory, a
symlink (its target) or a file (its bytes, kept in a content-addressed blob
store, plus mode, owner and modification time). Restoring writes each file to a
fresh temporary beside it (`safefs`: no planted link is followed) and renames it
into place, so an interrupted restore never leaves a half-written file, and
restoring the same snapshot twice is harmless: undo works whether or not the
change it reverses had happened.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from caffedoc import safefs


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

    def put(self, path: Path, seen: os.stat_result | None = None) -> str:
        """Store `path`'s contents; a link, or a file swapped since `seen`, is refused."""
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (
                seen is not None and (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino)
            ):
                raise OSError(f"{path} changed while caffedoc recorded it")
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.root / f".part-{os.getpid()}"
            digest = hashlib.sha256()
            try:
                with open(tmp, "wb") as out:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except OSError:
                tmp.unlink(missing_ok=True)
                raise
        sha = digest.hexdigest()
        os.replace(tmp, self.root / sha)
        return sha

    def path(self, sha: str) -> Path:
        return self.root / sha

    def read(self, sha: str) -> Iterator[bytes]:
        """The stored contents in chunks; a blob that no longer matches its name is refused
        before its last chunk, so a restore from it is never renamed into place."""
        digest = hashlib.sha256()
        with open(self.path(sha), "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
                yield chunk
        if digest.hexdigest() != sha:
            raise OSError(f"the backup {self.path(sha)} was changed since it was made")


def digest(path: Path) -> str:
    """What `path` holds now, in one string (kind and contents, not metadata): undo
    compares it with what the fix left there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    if stat.S_ISLNK(st.st_mode):
        return "link:" + os.readlink(path)
    h = hashlib.sha256()
    if stat.S_ISDIR(st.st_mode):  # an interpreter's own byte-code cache is no one's work
        for name in sorted(set(os.listdir(path)) - {"__pycache__"}):
            h.update(f"{name}\0{digest(path / name)}\n".encode())
        return "dir:" + h.hexdigest()
    if not stat.S_ISREG(st.st_mode):
        return "other"
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "file:" + h.hexdigest()


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
        return PathState(kind="file", sha256=blobs.put(path, st), **common)
    raise OSError(f"{path}: not a regular file, directory or symlink; caffedoc will not touch it")


def restore(states: list[PathState], blobs: Blobs) -> None:
    """Put every path back as recorded; the first state after any parents is the root.

    Anything now under a recorded directory that the snapshot does not hold is
    removed, so the tree ends exactly as it was. Every change goes through `safefs`:
    no link is followed, files are renamed into place.
    """
    recorded = {s.path for s in states}
    root = next(s for s in states if s.kind != "parent")
    if root.kind == "dir" and os.path.isdir(root.path) and not os.path.islink(root.path):
        _remove_extras(Path(root.path), recorded)
    for s in states:
        _restore_one(s, blobs)
    for s in reversed(states):  # directory times last: restoring children changes them
        if s.kind in ("dir", "parent"):
            safefs.ensure_dir(Path(s.path), s.mode, (s.uid, s.gid), s.mtime_ns)


def _remove_extras(root: Path, recorded: set[str]) -> None:
    for dirpath, dirnames, filenames in os.walk(root, topdown=True):
        for name in list(dirnames):
            if os.path.join(dirpath, name) not in recorded:
                dirnames.remove(name)
                safefs.remove(Path(dirpath, name))
        for name in filenames:
            if os.path.join(dirpath, name) not in recorded:
                safefs.remove(Path(dirpath, name))


def _restore_one(s: PathState, blobs: Blobs) -> None:
    path = Path(s.path)
    if s.kind == "absent":
        safefs.remove(path)
        return
    if s.kind in ("dir", "parent"):
        if not path.is_dir() or path.is_symlink():
            safefs.remove(path)
            safefs.ensure_dir(path, s.mode, (s.uid, s.gid), s.mtime_ns)
        return
    if path.is_dir() and not path.is_symlink():
        safefs.remove(path)
    if s.kind == "symlink":
        safefs.symlink(path, s.target or "", owner=(s.uid, s.gid))
    else:
        chunks = blobs.read(s.sha256 or "")
        safefs.write_file(
            path, chunks, s.mode, temp=safefs.temp_name(path, "restore"),
            owner=(s.uid, s.gid), mtime_ns=s.mtime_ns,
        )  # fmt: skip
