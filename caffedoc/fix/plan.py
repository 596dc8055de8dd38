"""From findings to a plan: concrete steps where caffedoc knows how, words where not.

Detectors stay as they are. A planner, registered per knowledge-base id with
`@plans(id)`, reads the check's `Facts` and the findings with that id and
returns `Action`s: the steps that fix this machine, or, when it cannot be done
safely here (a distro-managed interpreter, no matching protoc), the reason and
the manual fix. Findings without a planner get the knowledge base's fix text.
"""

from __future__ import annotations

import datetime
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from caffedoc import knowledge, shellwords
from caffedoc.check import Report
from caffedoc.findings import Finding, Severity
from caffedoc.fix.steps import Step, current_user
from caffedoc.probes import Context, Facts

MODULES = ("caffe", "cuda", "protobuf")


@dataclass(frozen=True)
class FixContext:
    """What planners may use besides the facts: where the check looked, and a stamp."""

    check: Context
    env: Mapping[str, str]
    stamp: str = field(default_factory=lambda: datetime.datetime.now().strftime("%Y%m%dT%H%M%S"))


@dataclass(frozen=True)
class Action:
    """What caffedoc will do about one problem: steps, or the manual fix and why."""

    problem_id: str
    title: str
    steps: tuple[Step, ...] = ()
    manual: str | None = None
    why_manual: str | None = None

    @property
    def automatic(self) -> bool:
        return bool(self.steps)

    @property
    def needs_root(self) -> bool:
        """True when this user cannot make some change; only a non-root user can hit it."""
        return any(s.needs_root() for s in self.steps)

    @property
    def user(self) -> str:
        """Who makes the changes: this user, or root where this user may not."""
        return "root" if self.needs_root else current_user()

    def to_json(self) -> dict:
        return {
            "id": self.problem_id,
            "title": self.title,
            "automatic": self.automatic,
            "needs_root": self.needs_root,
            "user": self.user,
            "steps": [{**s.to_json(), "describe": s.describe()} for s in self.steps],
            "manual": self.manual,
            "why_manual": self.why_manual,
        }


Planner = Callable[[Facts, list[Finding], FixContext], list[Action]]
REGISTRY: dict[str, Planner] = {}


def plans(problem_id: str) -> Callable[[Planner], Planner]:
    def register(fn: Planner) -> Planner:
        knowledge.get(problem_id)  # an unknown id is a programming error, caught at import
        REGISTRY[problem_id] = fn
        return fn

    return register


def load_all() -> dict[str, Planner]:
    for name in MODULES:
        importlib.import_module(f"caffedoc.fix.{name}")
    return REGISTRY


def manual(finding: Finding, why: str | None = None) -> Action:
    return Action(finding.id, finding.title, manual=shellwords.squash(finding.fix), why_manual=why)


def make_plan(report: Report, ctx: FixContext, only: str | None = None) -> list[Action]:
    """One action per problem that needs attention (info findings are not problems)."""
    planners = load_all()
    todo = [
        f
        for f in report.findings
        if f.severity is not Severity.INFO and (only is None or f.id == only)
    ]
    actions: list[Action] = []
    for pid in dict.fromkeys(f.id for f in todo):
        mine = [f for f in todo if f.id == pid]
        if pid not in planners:
            actions.extend(manual(f) for f in mine)
            continue
        try:
            actions.extend(planners[pid](report.facts, mine, ctx))
        except Exception as exc:  # a broken planner must not hide the other fixes
            why = f"planning it failed: {type(exc).__name__}: {exc}"
            actions.extend(manual(f, why) for f in mine)
    return actions
