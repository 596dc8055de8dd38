"""Renderers: they format findings, they never judge."""

from __future__ import annotations

from caffedoc import knowledge, probes, shellwords
from caffedoc.check import Report
from caffedoc.findings import Finding, Severity

MARK = {Severity.ERROR: "✗", Severity.WARNING: "!", Severity.INFO: "·"}
AREA_TITLES = {
    "system": "System",
    "python": "Python interpreters and pips",
    "protobuf": "protobuf",
    "caffe": "Caffe installs",
    "cuda": "CUDA, cuDNN and the linker cache",
    "opencv": "OpenCV beside Caffe",
    "build": "Build",
    "runtime": "Runtime",
}


NOT_EXAMINED = "?"  # neither ✓ nor ✗: nobody knows


def _area_mark(area: str, report: Report, findings: list[Finding]) -> str:
    if area in report.not_examined:
        return NOT_EXAMINED
    worst = max(findings, key=lambda f: f.severity.rank, default=None)
    return "✓" if worst is None or worst.severity is Severity.INFO else MARK[worst.severity]


def render_finding(f: Finding, indent: str = "    ") -> list[str]:
    """A finding as text: title, evidence, fix, references."""
    sub = indent + "  "
    lines = [f"{indent}{MARK[f.severity]} [{f.id}] {f.title}"]
    lines += [f"{sub}seen: {e}" for e in f.evidence]
    fix = shellwords.fill(
        f.fix,
        width=92,
        initial_indent=f"{sub}fix:  ",
        subsequent_indent=sub + "      ",
    )
    lines.append(fix)
    if f.references:
        lines.append(f"{sub}see:  " + ", ".join(f.references))
    return lines


def render_text(report: Report) -> str:
    """Grouped by area, flutter-doctor style, with a one-line summary."""
    lines: list[str] = []
    areas = [
        a
        for a in knowledge.AREAS
        if a in report.facts.areas or any(f.area == a for f in report.findings)
    ]
    for area in areas:
        mine = [f for f in report.findings if f.area == area]
        lines.append(f"[{_area_mark(area, report, mine)}] {AREA_TITLES[area]}")
        lines += [f"    {s}" for s in probes.summary(area, report.facts)]
        for f in mine:
            lines += render_finding(f)
    lines += ["", _verdict(report)]
    return "\n".join(lines)


def _verdict(report: Report) -> str:
    """The last line: never "no problems" or "0 error(s)" over an area nobody examined."""
    counts = {s: sum(f.severity is s for f in report.findings) for s in Severity}
    unexamined = report.not_examined
    if unexamined:
        return (
            f"{counts[Severity.ERROR]} error(s), {counts[Severity.WARNING]} warning(s); "
            f"not examined: {', '.join(unexamined)}."
        )
    if report.status == "ok":
        return (
            "No problems found."
            if not report.findings
            else f"No problems found ({counts[Severity.INFO]} notes)."
        )
    return f"{counts[Severity.ERROR]} error(s), {counts[Severity.WARNING]} warning(s)."
