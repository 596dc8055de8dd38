"""Text and JSON for a fix: the plan, what happened, and before → after."""

from __future__ import annotations

from caffedoc import __version__, shellwords
from caffedoc.findings import Finding
from caffedoc.fix.plan import Action
from caffedoc.fix.runner import FixRun, Undone


def _wrap(text: str, indent: str) -> list[str]:
    return shellwords.fill(text, 96, indent, indent).splitlines()


def render_action(a: Action) -> list[str]:
    lines = [f"[{a.problem_id}] {a.title}"]
    if a.automatic:
        lines.append(f"    as {a.user}:")
        lines += [f"    {i}. {s.describe()}" for i, s in enumerate(a.steps, 1)]
        return lines
    lines.append("    manual" + (f" ({a.why_manual})" if a.why_manual else "") + ":")
    return lines + _wrap(a.manual or "", "      ")


def before_after(o: FixRun) -> list[tuple[str, str, str]]:
    """(problem id, worst severity before, after) for each problem the fix acted on;
    'fixed' when only information is left."""

    def worst(findings: list[Finding], pid: str) -> str:
        found = [f for f in findings if f.id == pid]
        sev = max(found, key=lambda f: f.severity.rank).severity.value if found else "info"
        return "fixed" if sev == "info" else sev

    ids = dict.fromkeys(a.problem_id for a in o.actions if a.automatic)
    return [(pid, worst(o.before.findings, pid), worst(o.after or [], pid)) for pid in ids]


def render_plan(o: FixRun) -> str:
    """Each problem with exactly what will change, or its manual fix."""
    if o.status == "nothing-to-do":
        return "Nothing to fix: the check found no problem that needs attention."
    return "\n".join(line for action in o.actions for line in render_action(action))


def render_result(o: FixRun) -> str:
    """What happened: nothing (and why), the root commands, the rollback, or before → after."""
    if o.status == "nothing-to-do":
        return ""
    if o.status == "needs-root":
        lines = [f"Not changed: {o.reason}. Run as root, for example:"]
        lines += [f"    {c}" for c in o.root_commands]
        return "\n".join(
            [*lines, "or the whole fix: `sudo caffedoc fix --yes` with these options."]
        )
    if o.status == "planned":
        if any(a.automatic for a in o.actions):
            return "Nothing was changed. Run `caffedoc fix --yes` to apply the steps above."
        return "Nothing here can be fixed automatically; the manual steps are above."
    if o.status == "declined":
        return "Nothing was changed."
    if o.status == "rolled-back":
        lines = [f"Failed, and every change was put back: {o.reason}."]
        if o.problems:
            lines = [f"Failed: {o.reason}. These changes could not be put back:"]
        return "\n".join(lines + [f"    {p}" for p in o.problems])
    lines = [
        f"Applied (journal {o.journal}; `caffedoc fix --undo` reverses it).",
        "Before → after:",
    ]
    if o.after is None:
        return "\n".join([*lines[:1], f"The check could not run again: {o.reason}."])
    lines += [f"    {pid}: {b} → {a}" for pid, b, a in before_after(o)]
    return "\n".join(lines)


def to_json(o: FixRun) -> dict:
    return {
        "caffedoc": __version__,
        "status": o.status,
        "journal": o.journal,
        "reason": o.reason,
        "problems": o.problems,
        "plan": [a.to_json() for a in o.actions],
        "root_commands": o.root_commands if o.status == "needs-root" else [],
        "before": o.before.to_json()["findings"],
        "after": [f.to_json() for f in o.after] if o.after is not None else None,
        "before_after": [{"id": pid, "before": b, "after": a} for pid, b, a in before_after(o)]
        if o.after is not None
        else [],
    }


def render_undone(u: Undone) -> str:
    if u.problems:
        return "\n".join(
            [f"Undo of {u.journal} ({u.title}) was incomplete; run it again:"]
            + [f"    {p}" for p in u.problems]
        )
    return f"Undone: {u.journal} ({u.title}); every change it made was put back."
