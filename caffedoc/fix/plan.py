"""From findings to a plan: concrete steps where caffedoc knows how, words where not.

Each finding's rule (caffedoc.detect) gives its remedy for the hit it saw: the steps
that fix this machine, or, when that cannot be done safely here (a distro-managed
interpreter, no matching protoc), the reason and the manual fix. Findings whose rule
has no remedy get the fix text the check printed.
"""

from __future__ import annotations

from dataclasses import dataclass

from caffedoc import detect, shellwords
from caffedoc.check import Report
from caffedoc.findings import Finding, Severity
from caffedoc.fix.steps import Step, current_user
from caffedoc.remedy import FixContext


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


def manual(finding: Finding, why: str | None = None) -> Action:
    return Action(finding.id, finding.title, manual=shellwords.squash(finding.fix), why_manual=why)


def _action(finding: Finding, ctx: FixContext) -> Action:
    rule = detect.RULES.get(finding.id)
    if rule is None or rule.remedy is None or finding.hit is None:
        return manual(finding)
    try:
        remedy = rule.remedy(finding.hit, ctx)
    except Exception as exc:  # a broken remedy must not hide the other fixes
        return manual(finding, f"planning it failed: {type(exc).__name__}: {exc}")
    if not remedy.steps:
        return manual(finding, remedy.why_manual)
    return Action(finding.id, finding.title, remedy.steps)


def make_plan(report: Report, ctx: FixContext, only: str | None = None) -> list[Action]:
    """One action per problem that needs attention (info findings are not problems);
    hits of one problem whose remedies are the same steps are one action."""
    todo = [
        f
        for f in report.findings
        if f.severity is not Severity.INFO and (only is None or f.id == only)
    ]
    first = {f.id: n for n, f in reversed(list(enumerate(todo)))}
    actions: list[Action] = []
    for f in sorted(todo, key=lambda f: first[f.id]):  # a problem's findings together
        action = _action(f, ctx)
        same = next(
            (a for a in actions if a.automatic and (a.problem_id, a.steps) == (f.id, action.steps)),
            None,
        )
        if same is None:
            actions.append(action)
        else:
            actions[actions.index(same)] = Action(f.id, f"{same.title}; {f.title}", same.steps)
    return actions
