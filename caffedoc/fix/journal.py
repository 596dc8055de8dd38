"""The journal: what each fix changed and how to put it back.

Every fix gets a directory under the state directory holding `journal.json` and
the backed-up file contents. A step's undo record is written (and flushed to
disk) *before* the step changes anything, so a fix killed at any moment leaves a
journal that can still be undone. One lock file serializes fixes and undos: a
second `caffedoc fix` while one runs is refused instead of interleaving.

Undo acts as root on the paths a journal names, so the journal is trusted only as
far as caffedoc can tell it wrote it: the state directory must be this user's own
and private (`safefs.private_dir`), the lock and journals are never opened through
a link, and each journal.json carries an HMAC-SHA256 of its content under a random
key kept 0600 in the state directory. A bare digest beside the journal would prove
nothing against someone able to write both; the key cannot be read by anyone who
could forge a journal, and the MAC lives inside journal.json itself, so one atomic
rename writes both (no crash can leave a journal and its digest out of step).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caffedoc import safefs
from caffedoc.errors import CaffedocError
from caffedoc.fix.state import Blobs

# A journal's status: applying (running, or interrupted when nobody holds the lock),
# applied, rolled-back (a step failed and the fix put everything back), undone.
PENDING = ("applying", "applied")


def state_dir(env: Mapping[str, str]) -> Path:
    """Where journals live: $CAFFEDOC_STATE_DIR, else the XDG state directory."""
    if env.get("CAFFEDOC_STATE_DIR"):
        return Path(env["CAFFEDOC_STATE_DIR"])
    base = env.get("XDG_STATE_HOME") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "caffedoc"


def open_state(root: Path, create: bool = True) -> int:
    """The state directory, open; refused in one line unless it is this user's own."""
    try:
        return safefs.private_dir(root, create=create)
    except safefs.UnsafePath as exc:
        raise CaffedocError(
            f"the fix journal in {root} is not safe to use: {exc.strerror}; "
            "point CAFFEDOC_STATE_DIR at a directory only you can write",
            1,
        ) from None
    except OSError as exc:
        raise CaffedocError(f"cannot use the fix journal in {root}: {exc.strerror}", 1) from None


def _open_lock(root: Path, dfd: int, flags: int) -> int:
    """The lock file, never through a link, and only if it is this user's own file."""
    path = root / "lock"
    try:
        fd = os.open("lock", flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CaffedocError(f"{path} is a symbolic link: caffedoc will not use it", 1) from None
        raise CaffedocError(f"cannot use the fix journal in {root}: {exc.strerror}", 1) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink != 1:
        os.close(fd)
        raise CaffedocError(f"{path} is not a plain file of this user's: refusing to use it", 1)
    return fd


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the fix lock, or refuse with one line naming who holds it."""
    dfd = open_state(root)
    try:
        fd = _open_lock(root, dfd, os.O_RDWR | os.O_CREAT)
    finally:
        os.close(dfd)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise CaffedocError(
                f"another caffedoc fix is running (pid {holder}); wait for it to finish", 1
            ) from None
        with contextlib.suppress(OSError):  # only a hint for the refusal above: a full disk
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _key(root: Path, create: bool = True) -> bytes:
    """The state directory's signing key, made on first use when `create`."""
    path = root / "key"
    try:
        if not create:
            raise FileExistsError
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        key = safefs.read_private(path, 64)
        if len(key) != 32 or os.lstat(path).st_mode & 0o077:
            raise OSError(errno.EPERM, f"{path} is not caffedoc's private key") from None
        return key
    key = secrets.token_bytes(32)
    try:
        os.write(fd, key)
        os.fsync(fd)
    except OSError:
        os.unlink(path)
        raise
    finally:
        os.close(fd)
    return key


def _mac(key: bytes, data: dict) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


class JournalError(CaffedocError):
    """A journal that cannot be read or was not written by caffedoc: undo stops at it."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            f"the fix journal {path} {why}: nothing was undone; move that directory aside "
            "once you have put back by hand what its fix changed",
            1,
        )


@dataclass
class Journal:
    """One fix's record: its steps' undo records, in the order they were made."""

    dir: Path
    status: str = "applying"
    title: str = ""
    created: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def blobs(self) -> Blobs:
        return Blobs(self.dir / "blobs")

    @property
    def root(self) -> Path:
        return self.dir.parent.parent

    @classmethod
    def create(cls, root: Path, title: str, plan: list[dict[str, Any]] | None = None) -> Journal:
        """A new journal, written whole (with the plan) before any change; if that fails,
        one line and nothing left behind. It is made under a hidden name and renamed, so
        a crash meanwhile leaves no journal that looks like an interrupted fix."""
        now = datetime.datetime.now(datetime.timezone.utc)
        home = root / "journal"
        tmp = home / f".new-{secrets.token_hex(6)}"
        try:
            os.close(open_state(home))
            tmp.mkdir(mode=0o700)
            journal = cls(tmp, title=title, created=now.isoformat(timespec="seconds"))
            journal.plan = list(plan or [])
            journal.save()
            base = home / now.strftime("%Y%m%dT%H%M%S")
            path, n = base, 1
            while path.exists():
                n += 1
                path = base.with_name(f"{base.name}-{n:03d}")
            tmp.rename(path)
        except OSError as exc:
            safefs.remove(tmp)
            raise CaffedocError(
                f"cannot write the fix journal in {home}: {exc.strerror}; nothing was changed", 1
            ) from None
        journal.dir = path
        return journal

    @classmethod
    def load(cls, path: Path) -> Journal:
        """A journal as caffedoc wrote it; unreadable, edited or forged ones are refused."""
        try:
            data = json.loads(safefs.read_private(path / "journal.json"))
            key = _key(path.parent.parent, create=False)
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise JournalError(path, f"cannot be read ({why})") from None
        mac = data.pop("hmac", None) if isinstance(data, dict) else None
        if not isinstance(mac, str) or not hmac.compare_digest(mac, _mac(key, data)):
            raise JournalError(path, "was not written by caffedoc or was changed since")
        try:
            return cls(
                path,
                status=data["status"],
                title=data.get("title", ""),
                created=data.get("created", ""),
                records=data.get("records", []),
                notes=data.get("notes", []),
                plan=data.get("plan", []),
            )
        except (KeyError, TypeError) as exc:
            raise JournalError(path, f"cannot be read (no {exc})") from None

    def save(self) -> None:
        """Write journal.json atomically and durably: a crash leaves the old or the new."""
        data = {
            "status": self.status,
            "title": self.title,
            "created": self.created,
            "plan": self.plan,
            "records": self.records,
            "notes": self.notes,
        }
        data["hmac"] = _mac(_key(self.root), data)
        tmp = self.dir / "journal.json.part"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, self.dir / "journal.json")
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def record(self, rec: dict[str, Any]) -> dict[str, Any]:
        """Append an undo record and make it durable before the change it undoes (a
        record that could not be saved is dropped: its change is never made)."""
        self.records.append(rec)
        try:
            self.save()
        except OSError:
            self.records.pop()
            raise
        return rec

    def finish(self, status: str) -> None:
        """Save the final status; a journal of no change that cannot be saved (a full
        disk) is removed, so it never reads as an interrupted fix."""
        self.status = status
        try:
            self.save()
        except OSError:
            if self.records:
                raise
            safefs.remove(self.dir)


def _dirs(root: Path) -> list[Path]:
    home = root / "journal"
    return sorted(p for p in home.iterdir() if not p.name.startswith(".")) if home.is_dir() else []


def journals(root: Path) -> list[Journal]:
    """Every journal, oldest first; one that cannot be trusted raises `JournalError`."""
    return [Journal.load(p) for p in _dirs(root)]


def latest_pending(root: Path) -> Journal | None:
    """The most recent fix that is applied or was interrupted: what --undo reverses.
    A newer journal that cannot be read stops the search: undoing an older fix in its
    place would be undoing the wrong one."""
    for path in reversed(_dirs(root)):
        jr = Journal.load(path)
        if jr.status in PENDING:
            return jr
    return None


def interrupted_fix(env: Mapping[str, str]) -> str | None:
    """One line for `caffedoc check` when a fix was left half-done (its journal still
    "applying" and nobody holding the lock) or the newest journal cannot be read;
    None otherwise, or when the state directory is not this user's to read. Changes nothing."""
    root = state_dir(env)
    try:
        dfd = open_state(root, create=False)
    except CaffedocError:
        return None
    try:
        fd = _open_lock(root, dfd, os.O_RDONLY)
    except CaffedocError:
        fd = None
    finally:
        os.close(dfd)
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        jr = latest_pending(root)
    except BlockingIOError:
        return None  # a fix is running now
    except CaffedocError as exc:
        return str(exc)
    finally:
        if fd is not None:
            os.close(fd)
    if jr is None or jr.status != "applying":
        return None
    return (
        f"an interrupted fix (journal {jr.dir}: {jr.title}, started {jr.created}) was never "
        "finished: run `caffedoc fix --undo` to put back what it changed"
    )
