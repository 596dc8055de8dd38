"""The one result type every diagnosis produces.

A detector (facts), a log signature (explain) and a failed build or smoke step
all end as `Finding`s; renderers only format them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from caffedoc import knowledge


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]


@dataclass(frozen=True)
class Hit:
    """What a detector saw: the knowledge entry supplies the rest."""

    severity: Severity
    evidence: tuple[str, ...]
    fix: str | None = None  # a fix made concrete for this machine, when there is one
    detail: str | None = None  # appended to the entry's title, e.g. the interpreter
    # What the rule's remedy works from (a rule's own dataclass): the situation is
    # worked out once, in the rule, for both the printed fix and the applied one.
    subject: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Finding:
    id: str
    area: str
    severity: Severity
    title: str
    evidence: tuple[str, ...]
    fix: str
    references: tuple[str, ...] = field(default_factory=tuple)
    hit: Hit | None = field(default=None, compare=False, repr=False)  # what the rule saw

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "area": self.area,
            "severity": self.severity.value,
            "title": self.title,
            "evidence": list(self.evidence),
            "fix": self.fix,
            "references": list(self.references),
        }


def overall(findings: list[Finding]) -> str:
    """ "ok", "warning" or "error": the worst severity that needs attention."""
    worst = max((f.severity.rank for f in findings), default=0)
    return {2: "error", 1: "warning", 0: "ok"}[worst]


def finding(problem_id: str, hit: Hit, fix: str | None = None) -> Finding:
    """The one way a knowledge entry and what was seen become a finding: the entry gives
    the area, title, fix and references; the hit the severity, evidence and detail."""
    entry = knowledge.get(problem_id)
    return Finding(
        id=entry.id,
        area=entry.area,
        severity=hit.severity,
        title=f"{entry.title}: {hit.detail}" if hit.detail else entry.title,
        evidence=hit.evidence,
        fix=fix or hit.fix or entry.fix,
        references=entry.references,
        hit=hit,
    )
