"""Detectors: the knowledge base's judgement of a machine's facts.

Each module registers one function per knowledge-base id with `@detects(id)`;
the function reads `Facts` and yields a `Hit` for each instance of the problem.
`evaluate` turns hits into `Finding`s using the entry's title, fix and
references, so wording lives in the knowledge base, logic here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import replace

from caffedoc import knowledge
from caffedoc.findings import Finding, Hit, Severity
from caffedoc.probes import Facts

MODULES = ("system", "python", "protobuf", "caffe", "cuda", "opencv")

Detector = Callable[[Facts], Iterable[Hit]]
REGISTRY: dict[str, Detector] = {}


def detects(problem_id: str) -> Callable[[Detector], Detector]:
    def register(fn: Detector) -> Detector:
        knowledge.get(problem_id)  # an unknown id is a programming error, caught at import
        REGISTRY[problem_id] = fn
        return fn

    return register


def load_all() -> dict[str, Detector]:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return REGISTRY


def finding(problem_id: str, hit: Hit) -> Finding:
    entry = knowledge.get(problem_id)
    title = f"{entry.title}: {hit.detail}" if hit.detail else entry.title
    return Finding(
        id=entry.id,
        area=entry.area,
        severity=hit.severity,
        title=title,
        evidence=hit.evidence,
        fix=hit.fix or entry.fix,
        references=entry.references,
    )


def not_examined(area: str, why: str, detail: str | None = None) -> Finding:
    """An area that could not be examined: an error, shown in that area, since a
    report that stays green there would claim what nobody checked."""
    found = finding("probe-failed", Hit(Severity.ERROR, (why,), detail=detail or area))
    return replace(found, area=area)


def evaluate(facts: Facts) -> list[Finding]:
    """Every finding on this machine, worst first, failed probes included."""
    out = [not_examined(area, why) for area, why in sorted(facts.failures.items())]
    for pid, detector in load_all().items():
        try:
            out.extend(finding(pid, hit) for hit in detector(facts))
        except Exception as exc:  # a broken rule must not hide the others
            why = f"the {pid} rule crashed on these facts: {type(exc).__name__}: {exc}"
            out.append(not_examined(knowledge.get(pid).area, why, detail=pid))
    out.sort(key=lambda f: (-f.severity.rank, f.area, f.id))
    return out
