"""`caffedoc check`: facts → findings → report, read-only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from caffedoc import __version__, probes
from caffedoc.probes import Context, Facts

if TYPE_CHECKING:
    from caffedoc.findings import Finding


@dataclass(frozen=True)
class Report:
    facts: Facts
    findings: list[Finding]

    @property
    def status(self) -> str:
        from caffedoc.findings import overall

        return overall(self.findings)

    @property
    def exit_code(self) -> int:
        return 1 if self.status == "error" else 0

    @property
    def not_examined(self) -> list[str]:
        """The areas a probe could not examine, in report order (each is an error)."""
        from caffedoc import knowledge

        failed = {f.area for f in self.findings if f.id == "probe-failed"}
        return [a for a in knowledge.AREAS if a in failed]

    def to_json(self) -> dict:
        from caffedoc import identity

        return {
            "caffedoc": __version__,
            **identity.stamp(),
            "status": self.status,
            "not_examined": self.not_examined,
            "facts": self.facts.to_json(),
            "findings": [f.to_json() for f in self.findings],
        }


def _rules() -> None:
    from caffedoc import detect

    detect.RULES.all()


def run_check(ctx: Context) -> Report:
    # The rules, and the knowledge base they compile, are imported and loaded while the
    # probes wait on their children rather than before or after them: together they are
    # a fifth of a second of a check's time. (So this module imports them where used.)
    facts = probes.gather(ctx, meanwhile=_rules)
    from caffedoc import detect

    return Report(facts, detect.evaluate(facts))
