"""`caffedoc fix` end to end: check → plan → (confirm) → apply → check again.

Refusals happen before anything changes: a plan that needs root run by
another user, a fix already running (the lock), an interrupted fix not yet
undone. The lock is held from planning to the end of apply, so a second fix
cannot apply a plan the first made stale. What was applied is one journal,
undone as a whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from caffedoc import host
from caffedoc.check import Report, run_check
from caffedoc.errors import CaffedocError
from caffedoc.findings import Finding, Severity, overall
from caffedoc.fix import engine, journal
from caffedoc.fix.plan import Action, FixContext, make_plan


@dataclass
class FixRun:
    """What a fix run did. `status`: planned, nothing-to-do, needs-root, applied,
    rolled-back or declined."""

    status: str
    before: Report
    actions: list[Action]
    after: list[Finding] | None = None  # the check's findings once the fix is applied
    journal: str | None = None
    reason: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def root_commands(self) -> list[str]:
        """What a person with sudo would type to make the changes by hand."""
        return [
            s.shell(sudo="sudo ")
            for a in self.actions
            if a.automatic and a.needs_root
            for s in a.steps
        ]

    @property
    def exit_code(self) -> int:
        if self.status in ("needs-root", "rolled-back"):
            return 1
        if self.after is not None:  # 1 while a problem the fix acted on is still there
            acted = {a.problem_id for a in self.actions if a.automatic}
            return 1 if overall([f for f in self.after if f.id in acted]) != "ok" else 0
        return 0


def plan(ctx: FixContext, only: str | None) -> FixRun:
    """Run the check and plan; changes nothing."""
    report = run_check(ctx.check)
    actions = make_plan(report, ctx, only)
    if not any(a.automatic for a in actions):
        return FixRun("nothing-to-do" if not actions else "planned", report, actions)
    if os.geteuid() != 0 and any(a.needs_root for a in actions if a.automatic):
        return FixRun(
            "needs-root",
            report,
            actions,
            reason="some of these changes need root, so nothing was changed",
        )
    return FixRun("planned", report, actions)


def fix(
    ctx: FixContext,
    only: str | None,
    wanted: bool,
    show: Callable[[FixRun], None],
    confirm: Callable[[], bool],
) -> FixRun:
    """Plan, `show` the plan, and when `wanted` (and confirmed) apply it, all under one
    hold of the lock. A plan that changes nothing needs no lock: a user who may not
    write the state directory is still shown the plan and the root commands."""
    root = journal.state_dir(ctx.env)
    with contextlib.ExitStack() as held:
        refused = None
        if wanted:
            try:
                held.enter_context(journal.locked(root))
            except CaffedocError as exc:
                refused = exc
        outcome = plan(ctx, only)
        show(outcome)
        if (
            not wanted
            or outcome.status != "planned"
            or not any(a.automatic for a in outcome.actions)
        ):
            return outcome
        if refused is not None:
            raise refused
        outcome = _apply(outcome, root, ctx, confirm)
    if outcome.status == "applied":
        outcome.after, outcome.reason = check_again(ctx)
    return outcome


def _apply(outcome: FixRun, root: Path, ctx: FixContext, confirm: Callable[[], bool]) -> FixRun:
    """Apply a planned outcome's automatic actions; the caller holds the lock."""
    steps = [s for a in outcome.actions if a.automatic for s in a.steps]
    interrupted = journal.latest_pending(root)
    if interrupted is not None and interrupted.status == "applying":
        raise CaffedocError(
            f"an interrupted fix (journal {interrupted.id}) was never finished: "
            "run `caffedoc fix --undo` first",
            1,
        )
    if not confirm():
        outcome.status = "declined"
        return outcome
    title = ", ".join(dict.fromkeys(a.problem_id for a in outcome.actions if a.automatic))
    jr = journal.Journal.create(root, title, [s.to_json() for s in steps])
    outcome.journal = jr.id
    try:
        engine.apply_steps(steps, jr, ctx.env)
    except engine.FixFailed as exc:
        outcome.status = "rolled-back"
        outcome.reason = f"{exc.step.describe()} failed: {exc.reason}"
        outcome.problems = exc.problems
        return outcome
    except OSError as exc:
        raise CaffedocError(
            f"cannot update the fix journal {jr.dir}: {exc.strerror or exc}; "
            "`caffedoc fix --undo` puts back what it recorded",
            1,
        ) from None
    outcome.status = "applied"
    return outcome


def check_again(ctx: FixContext) -> tuple[list[Finding] | None, str | None]:
    """The check as a user would now run it: in a fresh process, because probes
    remember what they saw for the life of this one."""
    argv = [sys.executable, "-m", "caffedoc", "check", "--json", "--python", str(ctx.check.python)]
    if ctx.check.caffe_dir:
        argv += ["--caffe", str(ctx.check.caffe_dir)]
    res = host.run(argv, timeout=300, env=ctx.env)
    try:
        found = json.loads(res.stdout)["findings"]
        return [_finding(f) for f in found], None
    except (ValueError, KeyError, TypeError):
        return None, f"the check after the fix did not report ({res.describe()})"


def _finding(data: dict) -> Finding:
    return Finding(
        id=data["id"],
        area=data["area"],
        severity=Severity(data["severity"]),
        title=data["title"],
        evidence=tuple(data["evidence"]),
        fix=data["fix"],
        references=tuple(data["references"]),
    )


@dataclass
class Undone:
    journal: str
    title: str
    problems: list[str]


def undo_latest(env: dict[str, str], force: bool = False) -> Undone:
    """Undo the most recent applied or interrupted fix, under the lock. Unless `force`,
    nothing is changed when a file it touched was changed since."""
    root = journal.state_dir(env)
    with journal.locked(root):
        jr = journal.latest_pending(root)
        if jr is None:
            raise CaffedocError(f"nothing to undo (no applied fix in {root / 'journal'})", 1)
        try:
            problems = engine.undo(jr, force=force)
        except engine.ChangedSince as exc:
            raise CaffedocError(_changed(jr, exc.changed), 1) from None
        if not problems:
            jr.finish("undone")
    return Undone(jr.id, jr.title, problems)


def _changed(jr: journal.Journal, changed: list[engine.Changed]) -> str:
    first = changed[0]
    more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
    return (
        f"{first.path}{more} changed after fix {jr.id}, so nothing was undone ({first.backup}): "
        "keep the change and put back the rest by hand, or run `caffedoc fix --undo --force` "
        "to put back everything as it was before the fix"
    )
