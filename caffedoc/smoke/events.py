"""What the smoke child reports: its tagged lines, in order, and everything else it
printed. The runner reads it and the diagnosis judges it; neither imports the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from caffedoc import host

TAG = "caffedoc-smoke: "  # the child's report lines start with this


@dataclass(frozen=True)
class ChildReport:
    """What the child said (its tagged lines) and everything else it printed."""

    events: tuple[dict, ...]
    log: str

    @classmethod
    def parse(cls, res: host.Result) -> ChildReport:
        events, other = [], []
        for line in res.stdout.splitlines():
            if line.startswith(TAG):
                try:
                    events.append(json.loads(line[len(TAG) :]))
                    continue
                except ValueError:
                    pass
            other.append(line)
        return cls(tuple(events), "\n".join([*other, res.stderr]).strip())

    def last(self, event: str) -> dict | None:
        return next((e for e in reversed(self.events) if e.get("event") == event), None)

    @property
    def stage(self) -> str | None:
        """The stage the child had reached when it ended."""
        last = self.last("stage")
        return last["stage"] if last else None

    @property
    def passed(self) -> bool:
        return self.last("pass") is not None
