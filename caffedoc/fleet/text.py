"""The fleet for a terminal: hosts, findings by id, drift; long host lists are cut."""

from __future__ import annotations

from caffedoc.fleet.facts import LABELS
from caffedoc.fleet.merge import Fleet

MARK = {"ok": "✓", "info": "i", "warning": "!", "error": "✗"}
SHOWN = 8  # host names listed on one line before "and N more"


def names(hosts: tuple[str, ...] | list[str], shown: int = SHOWN) -> str:
    """'a, b, c' or 'a, b, … and 12 more'."""
    if len(hosts) <= shown:
        return ", ".join(hosts)
    return f"{', '.join(hosts[:shown])} and {len(hosts) - shown} more"


def _hosts(n: int) -> str:
    return f"{n} host" if n == 1 else f"{n} hosts"


def render(fleet: Fleet) -> str:
    c = fleet.counts
    lines = [
        f"{_hosts(len(fleet.hosts))}: {c['ok']} ok, {c['warning']} with warnings, "
        f"{c['error']} with errors"
        + (f"; {len(fleet.unreadable)} report(s) not read" if fleet.unreadable else ""),
        "",
        "Hosts",
    ]
    width = min(max((len(h.name) for h in fleet.hosts), default=4), 40)
    for h in fleet.hosts:
        ids = " ".join(
            fid if sev != "info" else f"({fid})" for fid, sev, _ in dict.fromkeys(h.findings)
        )
        lines.append(f"  {MARK[h.status]} {h.name:<{width}}  {h.status:<7}  {ids}".rstrip())
    lines += ["", "Findings"]
    if not fleet.findings:
        lines.append("  none on any host")
    for s in fleet.findings:
        lines.append(f"  {MARK[s.severity]} [{s.id}] {s.title}")
        lines.append(f"      on {_hosts(len(s.hosts))}: {names(s.hosts)}")
    lines += ["", "Drift"]
    if not fleet.drift:
        lines.append(f"  none: every host agrees on {', '.join(LABELS.values())}")
    for d in fleet.drift:
        lines.append(f"  {d.label}:")
        majority = d.majority
        for value, hosts in d.values:
            tag = "" if value != majority or majority is None else "  (most hosts)"
            odd = "" if majority is None or value == majority else "  ← odd one out"
            shown = value if value is not None else "not found"
            lines.append(f"      {shown} on {_hosts(len(hosts))}: {names(hosts)}{tag}{odd}")
    if fleet.superseded:
        lines += ["", "Older reports ignored"]
        lines += [f"  {f} (newer: {by})" for f, by in fleet.superseded]
    return "\n".join(lines)
