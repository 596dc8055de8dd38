"""A check report as JUnit XML (the Ant/Jenkins format CI servers display).

One test case per area (what its probe saw, skipped when the probe failed) and one per
finding. An error is a failure; a warning is one too under `--strict`, the same rule
as the exit status, so the CI page and the job's result agree.
"""

from __future__ import annotations

import datetime
import platform
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from caffedoc import knowledge, probes
from caffedoc.check import Report
from caffedoc.errors import CaffedocError
from caffedoc.findings import Finding, Severity

SUITE = "caffedoc check"
# Characters XML 1.0 cannot hold (terminal escapes and NULs do turn up in tool output).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(s: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", s)


def fails(finding: Finding, strict: bool) -> bool:
    return finding.severity is Severity.ERROR or (strict and finding.severity is Severity.WARNING)


def _details(f: Finding) -> str:
    lines = [f"seen: {e}" for e in f.evidence] + [f"fix: {f.fix}"]
    if f.references:
        lines.append("see: " + ", ".join(f.references))
    return _text("\n".join(lines))


def _areas(report: Report) -> list[str]:
    seen = set(report.facts.areas) | set(report.facts.failures)
    seen |= {f.area for f in report.findings}
    return [a for a in knowledge.AREAS if a in seen]


def render(report: Report, *, strict: bool = False) -> str:
    """The report as a JUnit XML document (UTF-8, with its declaration)."""
    suite = ET.Element("testsuite", name=SUITE)
    failures = skipped = 0
    for area in _areas(report):
        case = ET.SubElement(suite, "testcase", classname=f"caffedoc.{area}", name=area)
        why = report.facts.failures.get(area)
        if why is not None:
            ET.SubElement(case, "skipped", message=_text(why))
            skipped += 1
        else:
            summary = "\n".join(probes.summary(area, report.facts))
            ET.SubElement(case, "system-out").text = _text(summary)
        for f in report.findings:
            if f.area != area:
                continue
            case = ET.SubElement(
                suite, "testcase", classname=f"caffedoc.{area}", name=_text(f"[{f.id}] {f.title}")
            )
            if fails(f, strict):
                failure = ET.SubElement(
                    case, "failure", message=_text(f.title), type=f.severity.value
                )
                failure.text = _details(f)
                failures += 1
            else:
                ET.SubElement(case, "system-out").text = f"{f.severity.value}: " + _details(f)
    tests = len(suite)
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    suite.set("time", "0")
    suite.set("timestamp", datetime.datetime.now().replace(microsecond=0).isoformat())
    suite.set("hostname", platform.node() or "localhost")
    root = ET.Element(
        "testsuites", name=SUITE, tests=str(tests), failures=str(failures), errors="0"
    )
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write(report: Report, path: Path, *, strict: bool = False) -> None:
    try:
        path.write_text(render(report, strict=strict), encoding="utf-8")
    except OSError as exc:
        raise CaffedocError(f"--junit {path}: cannot write: {exc.strerror}") from exc
