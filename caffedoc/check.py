"""`caffedoc check`: facts → findings → report, read-only."""

from __future__ import annotations

from dataclasses import dataclass

from caffedoc import __version__, detect, identity, knowledge, probes
from caffedoc.findings import Finding, overall
from caffedoc.probes import Context, Facts


@dataclass(frozen=True)
class Report:
    facts: Facts
    findings: list[Finding]

    @property
    def status(self) -> str:
        return overall(self.findings)

    @property
    def exit_code(self) -> int:
        return 1 if self.status == "error" else 0

    @property
    def not_examined(self) -> list[str]:
        """The areas a probe could not examine, in report order (each is an error)."""
        failed = {f.area for f in self.findings if f.id == "probe-failed"}
        return [a for a in knowledge.AREAS if a in failed]

    def to_json(self) -> dict:
        return {
            "caffedoc": __version__,
            **identity.stamp(),
            "status": self.status,
            "not_examined": self.not_examined,
            "facts": self.facts.to_json(),
            "findings": [f.to_json() for f in self.findings],
        }


def run_check(ctx: Context) -> Report:
    # The rules, and the knowledge base they compile, load while the probes wait on their
    # children rather than after them: they are a fifth of a second of a check's time.
    facts = probes.gather(ctx, meanwhile=detect.RULES.all)
    return Report(facts, detect.evaluate(facts))
