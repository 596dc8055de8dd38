"""The journal: what each fix changed and how to put it back.

Every fix gets a directory under the state directory holding `journal.json` and
the backed-up file contents. A step's undo record is written (and flushed to
disk) *before* the step changes anything, so a fix killed at any moment leaves a
journal that can still be undone. One lock file serializes fixes and undos: a
second `caffedoc fix` while one runs is refused instead of interleaving.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the fix lock, or refuse with one line naming who holds it."""
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)  # backups may be private files
        fd = os.open(root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise CaffedocError(f"cannot use the fix journal in {root}: {exc.strerror}", 1) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise CaffedocError(
                f"another caffedoc fix is running (pid {holder}); wait for it to finish", 1
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@dataclass
class Journal:
    """One fix's record: its steps' undo records, in the order they were made."""

    dir: Path
    status: str = "applying"
    title: str = ""
    created: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def blobs(self) -> Blobs:
        return Blobs(self.dir / "blobs")

    @classmethod
    def create(cls, root: Path, title: str) -> Journal:
        now = datetime.datetime.now(datetime.timezone.utc)
        base = root / "journal" / now.strftime("%Y%m%dT%H%M%S")
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n:03d}")
        path.mkdir(parents=True, mode=0o700)
        journal = cls(path, title=title, created=now.isoformat(timespec="seconds"))
        journal.save()
        return journal

    @classmethod
    def load(cls, path: Path) -> Journal:
        data = json.loads((path / "journal.json").read_text(encoding="utf-8"))
        return cls(
            path,
            status=data["status"],
            title=data.get("title", ""),
            created=data.get("created", ""),
            records=data.get("records", []),
            notes=data.get("notes", []),
        )

    def save(self) -> None:
        """Write journal.json atomically and durably: a crash leaves the old or the new."""
        data = {
            "status": self.status,
            "title": self.title,
            "created": self.created,
            "records": self.records,
            "notes": self.notes,
        }
        tmp = self.dir / "journal.json.part"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.dir / "journal.json")
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def record(self, rec: dict[str, Any]) -> dict[str, Any]:
        """Append an undo record and make it durable before the change it undoes."""
        self.records.append(rec)
        self.save()
        return rec

    def finish(self, status: str) -> None:
        self.status = status
        self.save()


def journals(root: Path) -> list[Journal]:
    """Every journal, oldest first; unreadable ones are skipped."""
    out = []
    for path in sorted((root / "journal").glob("*")):
        with contextlib.suppress(OSError, ValueError, KeyError):
            out.append(Journal.load(path))
    return out


def latest_pending(root: Path) -> Journal | None:
    """The most recent fix that is applied or was interrupted: what --undo reverses."""
    pending = [j for j in journals(root) if j.status in PENDING]
    return pending[-1] if pending else None
