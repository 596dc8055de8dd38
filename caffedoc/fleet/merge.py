"""The fleet view: hosts, each finding id with the hosts that have it, and drift (facts on
which hosts differ, the hosts holding the less common values named as the odd ones out)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from caffedoc.fleet.facts import FACTS
from caffedoc.fleet.load import Host, Loaded
from caffedoc.identity import SCHEMA

RANK = {"error": 2, "warning": 1, "info": 0}


@dataclass(frozen=True)
class Spread:
    """One finding id across the fleet."""

    id: str
    title: str
    severity: str  # the worst seen
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class Drift:
    """One fact on which hosts disagree: each value with its hosts, most common first."""

    key: str
    label: str
    values: tuple[tuple[str | None, tuple[str, ...]], ...]

    @property
    def majority(self) -> str | None:
        """The value most hosts share, or None when no value has more hosts than the next."""
        if len(self.values) > 1 and len(self.values[0][1]) == len(self.values[1][1]):
            return None
        return self.values[0][0]

    @property
    def odd(self) -> tuple[tuple[str | None, tuple[str, ...]], ...]:
        """The values (with their hosts) that differ from the majority."""
        return self.values[1:] if self.majority is not None or len(self.values) == 1 else ()


@dataclass(frozen=True)
class Fleet:
    hosts: list[Host]
    findings: list[Spread]  # worst first, then most hosts
    drift: list[Drift]
    unreadable: list[tuple[str, str]]
    superseded: list[tuple[str, str]]

    @property
    def counts(self) -> dict[str, int]:
        counts = Counter(h.status for h in self.hosts)
        return {s: counts.get(s, 0) for s in ("ok", "warning", "error")}

    @property
    def status(self) -> str:
        """error if any host has an error or a report could not be read, else the worst."""
        if self.unreadable or self.counts["error"]:
            return "error"
        return "warning" if self.counts["warning"] else "ok"

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "status": self.status,
            "counts": self.counts,
            "hosts": [h.to_json() for h in self.hosts],
            "findings": [
                {"id": s.id, "title": s.title, "severity": s.severity, "hosts": list(s.hosts)}
                for s in self.findings
            ],
            "drift": [
                {
                    "fact": d.key,
                    "label": d.label,
                    "majority": d.majority,
                    "values": [{"value": v, "hosts": list(hs)} for v, hs in d.values],
                    "odd_ones_out": [h for _, hs in d.odd for h in hs],
                }
                for d in self.drift
            ],
            "unreadable": [{"file": f, "error": e} for f, e in self.unreadable],
            "superseded": [{"file": f, "by": b} for f, b in self.superseded],
        }


def merge(loaded: Loaded) -> Fleet:
    hosts = loaded.hosts
    spread: dict[str, tuple[str, str, list[str]]] = {}
    for host in hosts:
        seen: set[str] = set()
        for fid, severity, title in host.findings:
            title0, worst, names = spread.setdefault(fid, (title, severity, []))
            if RANK[severity] > RANK[worst]:
                spread[fid] = (title0, severity, names)
            if fid not in seen:
                names.append(host.name)
                seen.add(fid)
    findings = sorted(
        (Spread(fid, t, s, tuple(n)) for fid, (t, s, n) in spread.items()),
        key=lambda s: (-RANK[s.severity], -len(s.hosts), s.id),
    )
    drift = []
    for key, label, _ in FACTS:
        groups: dict[str | None, list[str]] = {}
        for host in hosts:
            groups.setdefault(host.facts.get(key), []).append(host.name)
        if len(groups) > 1:
            ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0] or ""))
            drift.append(Drift(key, label, tuple((v, tuple(n)) for v, n in ordered)))
    return Fleet(hosts, findings, drift, loaded.unreadable, loaded.superseded)
