"""Rules: the knowledge base's judgement of a machine's facts, and what to do about it.

A rule is registered under its knowledge-base id with `@detects(id)`: the function
reads `Facts` and yields a `Hit` for each instance of the problem. A rule that knows
a remedy names it, `@detects(id, remedy=fn)`: `fn(hit, ctx)` returns the words `check`
prints and, given a `FixContext`, the steps `fix` applies (caffedoc.remedy). `evaluate`
turns hits into `Finding`s with the entry's title and references, so wording about the
problem lives in the knowledge base, the judgement and its remedy here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from caffedoc import knowledge
from caffedoc.findings import Finding, Hit, Severity, finding
from caffedoc.probes import Facts
from caffedoc.registry import Registry
from caffedoc.remedy import FixContext, Remedy

MODULES = (
    "system",
    "python",
    "protobuf",
    "caffe_on_path",
    "caffe_library_missing",
    "caffe_import_crash",
    "cuda",
    "cudnn_version",
    "cuda_library_path",
    "nvidia_wheels",
    "opencv",
    "wheel_platform",
)

Detector = Callable[[Facts], Iterable[Hit]]
RemedyFn = Callable[[Hit, "FixContext | None"], Remedy]


@dataclass(frozen=True)
class Rule:
    id: str
    detect: Detector
    remedy: RemedyFn | None = None

    def words(self, hit: Hit) -> str | None:
        """The fix as `check` prints it for this hit."""
        return self.remedy(hit, None).words if self.remedy else hit.fix


RULES: Registry[Rule] = Registry(tuple(f"{__name__}.{m}" for m in MODULES), knowledge.get)


def detects(problem_id: str, remedy: RemedyFn | None = None) -> Callable[[Detector], Detector]:
    def register(fn: Detector) -> Detector:
        RULES.register(problem_id)(Rule(problem_id, fn, remedy))
        return fn

    return register


def not_examined(area: str, why: str, detail: str | None = None) -> Finding:
    """An area that could not be examined: an error, shown in that area, since a
    report that stays green there would claim what nobody checked."""
    found = finding("probe-failed", Hit(Severity.ERROR, (why,), detail=detail or area))
    return replace(found, area=area)


def evaluate(facts: Facts) -> list[Finding]:
    """Every finding on this machine, worst first, failed probes included."""
    out = [not_examined(area, why) for area, why in sorted(facts.failures.items())]
    for pid, rule in RULES.all().items():
        try:
            out.extend(finding(pid, hit, rule.words(hit)) for hit in rule.detect(facts))
        except Exception as exc:  # a broken rule must not hide the others
            why = f"the {pid} rule crashed on these facts: {type(exc).__name__}: {exc}"
            out.append(not_examined(knowledge.get(pid).area, why, detail=pid))
    out.sort(key=lambda f: (-f.severity.rank, f.area, f.id))
    return out
