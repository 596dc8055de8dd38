"""Apply steps under a journal, roll back on failure, undo a finished fix.

Undo replays a journal's records newest first. Each record's reversal is
idempotent (restore a snapshot, move a path back if it is still aside, remove
what a command created), so the same code serves a failed step's rollback, an
interrupted fix and `caffedoc fix --undo`. After each step the digest of every
path the fix has touched so far is journaled (a later step may change an earlier
one's path): undo first checks that each is still what the fix
left and, unless forced, changes nothing when one is not (work done since would
be lost). Files a command rebuilds (a linker cache) are rebuilt by running it
again at the end, never copied back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from caffedoc import host, safefs
from caffedoc.fix import state
from caffedoc.fix.journal import Journal
from caffedoc.fix.steps import ChangeFailed, Step, created


class FixFailed(Exception):
    """A step failed; what it had changed has been put back (or `problems` says not)."""

    def __init__(self, step: Step, reason: str, problems: list[str]) -> None:
        super().__init__(reason)
        self.step = step
        self.reason = reason
        self.problems = problems


@dataclass(frozen=True)
class Changed:
    """A path that is no longer what the fix left, and what undo would put there."""

    path: str
    backup: str  # the backup's path, or why there is none


class ChangedSince(Exception):
    """Undo refused: the paths in `changed` were changed after the fix."""

    def __init__(self, changed: list[Changed]) -> None:
        super().__init__(changed[0].path)
        self.changed = changed


def apply_steps(steps: Sequence[Step], journal: Journal, env: Mapping[str, str]) -> None:
    """Apply every step in order; on the first failure undo them all and raise."""
    for step in steps:
        try:
            step.apply(journal, env)
            paths = dict.fromkeys(p for rec in journal.records for p in _touched(rec))
            journal.record({"type": "after", "paths": {p: state.digest(Path(p)) for p in paths}})
        except (ChangeFailed, OSError) as exc:
            problems = undo(journal, force=True)
            journal.notes.append(f"failed: {step.describe()}: {exc}")
            journal.finish("rolled-back" if not problems else "applying")
            raise FixFailed(step, str(exc), problems) from None
        except KeyboardInterrupt:
            journal.notes.append(f"interrupted: {step.describe()}")
            journal.finish("rolled-back" if not undo(journal, force=True) else "applying")
            raise
    journal.finish("applied")


def _touched(rec: dict) -> Iterator[str]:
    """The paths a record's step changed, as undo will see them."""
    if rec["type"] == "snapshot":
        yield from (next(s["path"] for s in tree if s["kind"] != "parent") for tree in rec["trees"])
    elif rec["type"] == "moved":
        yield from (rec["src"], rec["dst"])
    elif rec["type"] == "watch":
        yield from (str(Path(d) / r) for d, rels in (rec["created"] or {}).items() for r in rels)


def changed_since(journal: Journal) -> list[Changed]:
    """The paths that are no longer what the fix left there, with their backups."""
    left: dict[str, str] = {}
    for rec in journal.records:
        if rec["type"] == "after":
            left.update(rec["paths"])
    return [Changed(p, _backup(journal, p)) for p, d in left.items() if state.digest(Path(p)) != d]


def _backup(journal: Journal, path: str) -> str:
    """What undo puts at `path`: the backup blob, or why there is none."""
    for rec in journal.records:
        if rec["type"] == "moved" and path in (rec["src"], rec["dst"]):
            return f"it was moved between {rec['src']} and {rec['dst']} by the fix"
        made = rec.get("created") or {}
        if any(path == str(Path(d) / r) for d, rels in made.items() for r in rels):
            return "it did not exist before the fix: --force removes it"
        for tree in rec.get("trees", ()):
            s = next((s for s in tree if s["path"] == path), None)
            if s is None:
                continue
            if s["kind"] == "file":
                return f"the backup is {journal.blobs.path(s['sha256'])}"
            return {"absent": "it did not exist before the fix: --force removes it"}.get(
                s["kind"], f"it was a {s['kind']} before the fix"
            )
    return "no backup was recorded"


def undo(journal: Journal, force: bool = False) -> list[str]:
    """Reverse every record, newest first; returns what could not be put back. Unless
    `force`, raises `ChangedSince` before changing anything when a path is not what
    the fix left."""
    if not force and (changed := changed_since(journal)):
        raise ChangedSince(changed)
    problems: list[str] = []
    for rec in reversed(journal.records):
        try:
            _undo_record(rec, journal)
        except OSError as exc:
            problems.append(f"{rec['type']}: {exc.strerror or exc}")
    for rec in journal.records:
        if rec["type"] == "regenerate":
            problems += _regenerate(rec)
    return problems


def _undo_record(rec: dict, journal: Journal) -> None:
    kind = rec["type"]
    if kind == "snapshot":
        for tree in reversed(rec["trees"]):
            state.restore([state.PathState.from_json(s) for s in tree], journal.blobs)
    elif kind == "moved":
        src, dst = Path(rec["src"]), Path(rec["dst"])
        if not os.path.lexists(dst):
            return  # never moved, or already back
        try:
            safefs.rename(dst, src)
        except FileExistsError:
            raise OSError(f"cannot move {dst} back: {src} exists again") from None
    elif kind == "watch":
        made = rec["created"] if rec["created"] is not None else created(rec["dirs"])
        for root, rels in made.items():
            for rel in rels:  # sorted: a directory comes before what it holds
                safefs.remove(Path(root) / rel)
    elif kind == "temp":
        safefs.remove(Path(rec["path"]))
    elif kind not in ("after", "regenerate"):
        raise OSError(f"unknown journal record {kind!r}")


def _regenerate(rec: dict) -> list[str]:
    """Run a command again to rebuild its files from the restored configuration, when
    they changed since it first ran."""
    if all(state.digest(Path(p)) == d for p, d in rec["before"].items()):
        return []
    env = {**os.environ, **rec["env"]}
    res = host.run(rec["argv"], timeout=rec["timeout"], env=env)
    return [] if res.ok else [f"regenerate: {res.describe()}"]
