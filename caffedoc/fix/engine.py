"""Apply steps under a journal, roll back on failure, undo a finished fix.

Undo replays a journal's records newest first. Each record's reversal is
idempotent (restore a snapshot, move a path back if it is still aside, remove
what a command created), so the same code serves a failed step's rollback, an
interrupted fix and `caffedoc fix --undo`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from caffedoc.fix import state
from caffedoc.fix.journal import Journal
from caffedoc.fix.steps import Step, StepFailed, created


class FixFailed(Exception):
    """A step failed; what it had changed has been put back (or `problems` says not)."""

    def __init__(self, step: Step, reason: str, problems: list[str]) -> None:
        super().__init__(reason)
        self.step = step
        self.reason = reason
        self.problems = problems


def apply_steps(steps: Sequence[Step], journal: Journal, env: Mapping[str, str]) -> None:
    """Apply every step in order; on the first failure undo them all and raise."""
    for step in steps:
        try:
            step.apply(journal, env)
        except (StepFailed, OSError) as exc:
            problems = undo(journal)
            journal.notes.append(f"failed: {step.describe()}: {exc}")
            journal.finish("rolled-back" if not problems else "applying")
            raise FixFailed(step, str(exc), problems) from None
        except KeyboardInterrupt:
            journal.notes.append(f"interrupted: {step.describe()}")
            journal.finish("rolled-back" if not undo(journal) else "applying")
            raise
    journal.finish("applied")


def undo(journal: Journal) -> list[str]:
    """Reverse every record, newest first; returns what could not be put back."""
    problems: list[str] = []
    for rec in reversed(journal.records):
        try:
            _undo_record(rec, journal)
        except OSError as exc:
            problems.append(f"{rec['type']}: {exc}")
    return problems


def _undo_record(rec: dict, journal: Journal) -> None:
    kind = rec["type"]
    if kind == "snapshot":
        for tree in reversed(rec["trees"]):
            state.restore([state.PathState.from_json(s) for s in tree], journal.blobs)
    elif kind == "moved":
        src, dst = Path(rec["src"]), Path(rec["dst"])
        if os.path.lexists(dst):
            if os.path.lexists(src):
                raise OSError(f"cannot move {dst} back: {src} exists again")
            os.rename(dst, src)
    elif kind == "watch":
        made = rec["created"] if rec["created"] is not None else created(rec["dirs"])
        for root, rels in made.items():
            for rel in rels:  # sorted: a directory comes before what it holds
                state.remove(Path(root) / rel)
    else:
        raise OSError(f"unknown journal record {kind!r}")
