"""`check --junit FILE`: the report as JUnit XML, valid against the format's schema.

The schema (tests/data/junit.xsd) is written from the Ant/Jenkins format's documented
structure; it is first shown to accept another producer's report (pytest's) and to
reject malformed ones, so a pass here means something.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from caffedoc import junit
from caffedoc.check import Report
from caffedoc.findings import Finding, Severity
from caffedoc.probes import Facts
from tests.conftest import caffedoc
from tests.fixtures.envs import check_env, removed_venv_pip

SCHEMA = xmlschema.XMLSchema(Path(__file__).parent / "data" / "junit.xsd")


def _cases(path: Path) -> dict[str, ET.Element]:
    return {c.get("name"): c for c in ET.parse(path).iter("testcase")}


def test_the_schema_accepts_pytests_report_and_rejects_malformed_ones(tmp_path):
    (tmp_path / "test_x.py").write_text(
        "import pytest\n"
        "def test_ok(): pass\n"
        "def test_bad(): assert 1 == 2\n"
        "@pytest.mark.skip(reason='no')\n"
        "def test_skip(): pass\n"
    )
    out = tmp_path / "pytest.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={out}",
         "test_x.py"], cwd=tmp_path, capture_output=True, check=False,
    )  # fmt: skip
    SCHEMA.validate(out)
    for bad in (
        '<testsuites><testsuite name="s"/></testsuites>',  # no tests count
        '<testsuites><testsuite name="s" tests="1"><testcase/></testsuite></testsuites>',
        '<testsuites><testsuite name="s" tests="1"><testcase name="c"><failure/><failure/>'
        "</testcase></testsuite></testsuites>",
        '<testsuites><testsuite name="s" tests="-1"/></testsuites>',
        '<testsuite name="s" tests="1"><testcase name="c"><oops/></testcase></testsuite>',
    ):
        assert not SCHEMA.is_valid(bad), bad


@pytest.mark.caffe
def test_a_real_check_with_an_error_and_a_warning(built_caffe, tmp_path):
    """A removed venv's pip first on PATH (a warning) and a recipe this machine is not (an
    error)."""
    stale = removed_venv_pip(tmp_path / "stale" / "bin")
    env = check_env(tmp_path / "home", stale, built_caffe.python.parent)
    out = tmp_path / "reports" / "check.xml"
    out.parent.mkdir()
    args = ["check", "--python", str(built_caffe.python), "--junit", str(out), "--json"]
    res = caffedoc(*args, "--require", "recipe=ubuntu18.04-cuda10.0", env=env, cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)  # stdout still carries the asked-for report
    SCHEMA.validate(out)

    cases = _cases(out)
    areas = [a for a in ("system", "python", "protobuf", "caffe", "cuda", "opencv")]
    for area in areas:
        case = cases[area]
        assert case.get("classname") == f"caffedoc.{area}"
        assert case.find("failure") is None
        assert case.findtext("system-out").strip()  # the probe's summary
    assert len(cases) == len(areas) + len(report["findings"])
    by_id = {name.split("]")[0][1:]: case for name, case in cases.items() if name.startswith("[")}
    assert set(by_id) == {f["id"] for f in report["findings"]}
    error = by_id["recipe-mismatch"].find("failure")
    assert error.get("type") == "error"
    assert "the recipe needs CUDA 10.0" in error.text
    assert by_id["interpreter-drift"].find("failure") is None  # a warning, not --strict
    suite = ET.parse(out).find("testsuite")
    assert suite.get("failures") == "1"
    assert suite.get("tests") == str(len(cases))

    strict = caffedoc(*args, "--strict", env=env, cwd=tmp_path)
    assert strict.returncode == 1
    SCHEMA.validate(out)
    warning = _cases(out)[next(n for n in _cases(out) if n.startswith("[interpreter-drift]"))]
    assert warning.find("failure").get("type") == "warning"


@pytest.mark.caffe
def test_a_passing_check_has_no_failures_and_text_stays_on_stdout(built_caffe, tmp_path):
    env = check_env(tmp_path / "home", built_caffe.python.parent)
    out = tmp_path / "check.xml"
    res = caffedoc("check", "--python", str(built_caffe.python), "--junit", str(out), "--strict",
                   env=env, cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stdout
    assert "No problems found" in res.stdout
    SCHEMA.validate(out)
    assert not list(ET.parse(out).iter("failure"))


def test_a_failed_probe_is_a_skipped_case():
    """Rendering alone: a probe that crashed has no facts, only a reason."""
    facts = Facts(failures={"cuda": "the cuda probe did not finish in 60 s"})
    hit = Finding(
        id="probe-failed",
        area="cuda",
        severity=Severity.WARNING,
        title="a probe failed: cuda",
        evidence=("the cuda probe did not finish in 60 s",),
        fix="Run it again; report the problem if it persists.",
    )
    text = junit.render(Report(facts, [hit]), strict=True)
    SCHEMA.validate(text)
    root = ET.fromstring(text)
    [area, found] = root.iter("testcase")
    assert area.find("skipped").get("message") == "the cuda probe did not finish in 60 s"
    assert found.find("failure").get("type") == "warning"
    assert root.find("testsuite").get("skipped") == "1"


def test_an_unwritable_junit_file_is_one_line(tmp_path):
    res = caffedoc("check", "--junit", str(tmp_path / "no" / "such" / "dir" / "x.xml"),
                   cwd=tmp_path)  # fmt: skip
    assert res.returncode == 2
    [line] = res.stderr.strip().splitlines()
    assert line.startswith("caffedoc: error: --junit ") and "cannot write" in line


def test_terminal_escapes_in_evidence_stay_valid_xml():
    """Tool output quoted as evidence can hold escapes and NULs, which XML 1.0 cannot."""
    hit = Finding(
        id="smoke-failed",
        area="runtime",
        severity=Severity.ERROR,
        title="the smoke step failed",
        evidence=("\x1b[31mF1127 Check failed: data_\x1b[0m\x00",),
        fix="See the log.",
    )
    text = junit.render(Report(Facts(), [hit]))
    SCHEMA.validate(text)
    failure = ET.fromstring(text).find(".//failure")
    assert failure.text.startswith("seen: \\x1b[31mF1127 Check failed: data_\\x1b[0m\\x00")
