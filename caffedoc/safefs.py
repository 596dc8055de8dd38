"""Writing on someone else's behalf without being turned against the machine.

caffedoc runs under sudo and writes into other people's venvs and site-packages. A
path is therefore reached one directory at a time from `/`, each opened with
O_NOFOLLOW|O_DIRECTORY relative to the last, and every change is made relative to
the pinned directory descriptor: a link a user plants, before or during the walk, is
never followed. A link is followed only where nobody but root and this user could
have made it (`/lib -> usr/lib`). On the way, who else could replace an entry is
noted: a directory writable by others without the sticky bit, or a path that two
other users control, is refused (`UnsafePath`).

A new file gets a fresh name in that directory, created with O_CREAT|O_EXCL|O_NOFOLLOW
(what `tempfile.mkstemp` does), its mode and, as root, the directory's owner set on
the descriptor, is synced, then renamed into place. So a file root writes into a
user's directory is exactly what that user could have written there themselves;
this was chosen over switching user ids in-process, which would have to undo
itself on every error path and cannot create the directories a fix needs above.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
import secrets
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_APPEND = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_LINKS = 40


class UnsafePath(OSError):
    """A path another user could redirect; `strerror` says who and where."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EPERM, message)


@dataclass(frozen=True)
class Parent:
    """The directory holding a path, open: `fd`, the entry's `name`, the directory's
    owner (`uid`, `gid`) and who else (`others`) controls the way to it."""

    fd: int
    name: str
    uid: int
    gid: int
    others: frozenset[str]


def is_root() -> bool:
    return os.geteuid() == 0


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _private_group(st: os.stat_result) -> bool:
    """A group holding only the directory's owner (a user private group, umask 002)."""
    try:
        members = grp.getgrgid(st.st_gid).gr_mem
        primary = pwd.getpwuid(st.st_uid).pw_gid
    except KeyError:
        return False
    return primary == st.st_gid and set(members) <= {_user(st.st_uid)}


def _judge(st: os.stat_result, where: str, others: set[str]) -> None:
    """Add who besides root and this user may replace entries of this directory."""
    sticky = st.st_mode & stat.S_ISVTX
    if st.st_mode & stat.S_IWOTH and not sticky:
        raise UnsafePath(f"{where} can be changed by anyone (world-writable, no sticky bit)")
    if st.st_mode & stat.S_IWGRP and not sticky and st.st_gid != 0 and not _private_group(st):
        try:
            group = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            group = f"gid {st.st_gid}"
        others.add(f"group {group}")
    if st.st_uid not in (0, os.geteuid()):
        others.add(f"user {_user(st.st_uid)}")
    if len(others) > 1:
        raise UnsafePath(f"{where} is reached through directories {' and '.join(sorted(others))}"
                         " control: either could redirect it")  # fmt: skip


def open_dir(path: Path, create: bool = False, private: bool = False) -> tuple[int, set[str]]:
    """`path` opened without following a link anyone else could have planted, and who
    else controls the way to it. With `create`, missing directories are made (as root,
    given their parent's owner); with `private`, they are made 0700 and the whole way
    must be root's or this user's alone."""
    parts = list(Path(os.path.abspath(path)).parts[1:])
    fd, here, others, links = os.open("/", _DIR), "/", set(), 0
    try:
        _judge(os.fstat(fd), here, others)
        while parts:
            name = parts.pop(0)
            try:
                new = os.open(name, _DIR, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                _mkdir(fd, name, 0o700 if private else 0o777, inherit=not private)
                new = os.open(name, _DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                st = os.lstat(name, dir_fd=fd)
                if not stat.S_ISLNK(st.st_mode):
                    raise
                where = os.path.join(here, name)
                if others:
                    raise UnsafePath(
                        f"{where} is a symbolic link where {min(others)} could have put it: "
                        "caffedoc will not follow it"
                    ) from None
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, f"{path}: too many symbolic links") from None
                target = os.path.normpath(os.path.join(here, os.readlink(name, dir_fd=fd)))
                parts = list(Path(target).parts[1:]) + parts
                os.close(fd)
                fd, here = os.open("/", _DIR), "/"
                continue
            os.close(fd)
            fd, here = new, os.path.join(here, name)
            _judge(os.fstat(fd), here, others)
            if private and others:
                raise UnsafePath(f"{here} is not private: {min(others)} controls it")
    except BaseException:
        os.close(fd)
        raise
    return fd, others


def _mkdir(fd: int, name: str, mode: int, inherit: bool) -> None:
    """Make a directory in `fd`; as root and with `inherit`, given the parent's owner."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, mode, dir_fd=fd)
        if is_root() and inherit:
            st = os.fstat(fd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=fd, follow_symlinks=False)


@contextlib.contextmanager
def parent(path: Path, create: bool = False) -> Iterator[Parent]:
    """The directory holding `path`, pinned open for the length of the block."""
    fd, others = open_dir(Path(path).parent, create=create)
    try:
        st = os.fstat(fd)
        yield Parent(fd, Path(path).name, st.st_uid, st.st_gid, frozenset(others))
    finally:
        os.close(fd)


def private_dir(path: Path, create: bool = True) -> int:
    """`path` open (with `create`, made 0700 if missing), refused unless only this user
    (and root on the way) could change it: the place caffedoc keeps what it trusts."""
    fd, _ = open_dir(path, create=create, private=True)
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        os.close(fd)
        who = _user(st.st_uid)
        raise UnsafePath(f"{path} is owned by {who} with mode {stat.S_IMODE(st.st_mode):04o}")
    return fd


def temp_name(path: Path, tag: str = "new") -> Path:
    """A fresh, unguessable temporary beside `path`: recorded by the caller before use."""
    return Path(path).with_name(f".{Path(path).name}.caffedoc-{tag}-{secrets.token_hex(6)}")


def _owner(p: Parent, owner: tuple[int, int] | None) -> tuple[int, int] | None:
    if not is_root():
        return None
    return owner if owner is not None else (p.uid, p.gid)


def write_file(
    path: Path,
    chunks: Iterable[bytes],
    mode: int,
    *,
    temp: Path | None = None,
    owner: tuple[int, int] | None = None,
    mtime_ns: int | None = None,
) -> None:
    """Create or replace `path` atomically through the temporary `temp`. As root, the
    file is given `owner`, else the directory's owner: a user's venv stays theirs."""
    tmp = (temp or temp_name(path)).name
    with parent(path, create=True) as p:
        fd = os.open(tmp, _NEW, 0o600, dir_fd=p.fd)
        try:
            for chunk in chunks:
                _write_all(fd, chunk)
            ids = _owner(p, owner)
            if ids is not None:
                os.fchown(fd, *ids)
            os.fchmod(fd, mode & 0o7777)  # after chown, which clears setuid
            if mtime_ns is not None:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.rename(tmp, p.name, src_dir_fd=p.fd, dst_dir_fd=p.fd)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=p.fd)
            raise
        os.fsync(p.fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def append_line(path: Path, line: bytes) -> None:
    """Add `line` at the end of `path` in place (inode, mode and owner kept), starting a
    new line if the file lacks a final newline; a link at `path` is refused."""
    with parent(path, create=True) as p:
        try:
            fd = os.open(p.name, _APPEND, dir_fd=p.fd)
        except FileNotFoundError:
            write_file(path, [line], 0o644)
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (st.st_nlink > 1 and p.others):
                raise UnsafePath(f"{path} is not a plain file of its own (links: {st.st_nlink})")
            last = os.pread(fd, 1, st.st_size - 1) if st.st_size else b"\n"
            _write_all(fd, (b"" if last == b"\n" else b"\n") + line)
            os.fsync(fd)
        finally:
            os.close(fd)


def symlink(path: Path, target: str, owner: tuple[int, int] | None = None) -> None:
    """Create or replace `path` with a link to `target`, atomically."""
    tmp = temp_name(path, "link").name
    with parent(path, create=True) as p:
        os.symlink(target, tmp, dir_fd=p.fd)
        try:
            ids = _owner(p, owner)
            if ids is not None:
                os.chown(tmp, *ids, dir_fd=p.fd, follow_symlinks=False)
            os.rename(tmp, p.name, src_dir_fd=p.fd, dst_dir_fd=p.fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=p.fd)
            raise


def ensure_dir(path: Path, mode: int, owner: tuple[int, int] | None, mtime_ns: int) -> None:
    """Make `path` a directory (replacing anything else there) with this mode and owner."""
    with parent(path, create=True) as p:
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISDIR(os.lstat(p.name, dir_fd=p.fd).st_mode):
                _remove_at(p.fd, p.name)
        _mkdir(p.fd, p.name, 0o700, inherit=False)
        fd = os.open(p.name, _DIR, dir_fd=p.fd)
        try:
            ids = _owner(p, owner)
            if ids is not None:
                os.fchown(fd, *ids)
            os.fchmod(fd, mode & 0o7777)
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)


def rename(src: Path, dest: Path) -> None:
    """Rename `src` to `dest` in the same directory; refused if `dest` exists."""
    if Path(src).parent != Path(dest).parent:
        raise ValueError(f"{src} and {dest} are not in one directory")
    with parent(src) as p:
        if lexists_at(p.fd, Path(dest).name):
            raise FileExistsError(errno.EEXIST, f"{dest} already exists")
        os.rename(p.name, Path(dest).name, src_dir_fd=p.fd, dst_dir_fd=p.fd)


def lexists_at(fd: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=fd)
    except FileNotFoundError:
        return False
    return True


def remove(path: Path) -> None:
    """Remove a file, link or whole tree at `path` (absent is fine), links never followed."""
    try:
        with parent(path) as p:
            _remove_at(p.fd, p.name)
    except FileNotFoundError:
        return


def _remove_at(fd: int, name: str) -> None:
    try:
        st = os.lstat(name, dir_fd=fd)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=fd)
        return
    sub = os.open(name, _DIR, dir_fd=fd)
    try:
        for entry in list(os.scandir(sub)):
            _remove_at(sub, entry.name)
    finally:
        os.close(sub)
    os.rmdir(name, dir_fd=fd)


def read_private(path: Path, limit: int = 1 << 26) -> bytes:
    """A file caffedoc itself wrote, refused if it is a link or not this user's own."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise UnsafePath(f"{path} is not a plain file owned by {_user(os.geteuid())}")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise UnsafePath(f"{path} can be changed by others (mode {st.st_mode & 0o777:04o})")
        return os.read(fd, limit)
    finally:
        os.close(fd)
