"""`caffedoc report` over real `check --json` reports of real venvs, and its page opened in
a real headless Chromium: content, a click-sort, a screenshot."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from caffedoc import __version__
from tests.conftest import caffedoc
from tests.fixtures.envs import check_env, run_check


@pytest.fixture(scope="module")
def reports(make_venv, tmp_path_factory) -> Path:
    """Three hosts' reports: two on a Python 3.11 venv, one on 3.9 (the odd one out)."""
    out = tmp_path_factory.mktemp("reports")
    venvs = {"alpha": make_venv("3.11"), "bravo": make_venv("3.11"), "charlie": make_venv("3.9")}
    for name, venv in venvs.items():
        home = tmp_path_factory.mktemp(f"home-{name}")
        env = check_env(home, venv.bin, CAFFEDOC_HOST_NAME=name)
        res = run_check(venv.python, env, home)
        (out / f"{name}.json").write_text(json.dumps(res.report))
    return out


def test_check_json_carries_host_identity(reports):
    report = json.loads((reports / "alpha.json").read_text())
    assert report["schema"] == 1
    assert report["caffedoc"] == __version__
    assert report["host"]["name"] == "alpha"  # CAFFEDOC_HOST_NAME: the inventory's name
    assert report["host"]["hostname"] == socket.gethostname()
    try:
        machine_id = Path("/etc/machine-id").read_text().strip() or None
    except OSError:
        machine_id = None
    assert report["host"]["machine_id"] == machine_id
    assert report["time"].endswith("Z")
    written = datetime.fromisoformat(report["time"][:-1]).replace(tzinfo=timezone.utc)
    assert abs(datetime.now(timezone.utc) - written) < timedelta(hours=1)
    assert {"status", "not_examined", "facts", "findings"} <= report.keys()  # as before


def test_without_a_name_the_hostname_names_the_host(make_venv, tmp_path):
    venv = make_venv("3.11")
    res = run_check(venv.python, check_env(tmp_path / "home", venv.bin), tmp_path)
    assert res.report["host"]["name"] == socket.gethostname()


def test_report_shows_hosts_findings_and_drift(reports):
    res = caffedoc("report", str(reports))
    assert res.returncode == 0, res.stderr  # warnings only (no Caffe yet): not a failure
    assert res.stderr == ""
    out = res.stdout
    assert out.startswith("3 hosts: 0 ok, 3 with warnings, 0 with errors")
    assert re.search(r"! alpha +warning +caffe-missing", out), out
    assert "[caffe-missing] no Caffe found\n      on 3 hosts: alpha, bravo, charlie" in out
    assert re.search(r"Python:\n +3\.11\.\d+ \(cpython\) on 2 hosts: alpha, bravo", out), out
    assert re.search(r"3\.9\.\d+ \(cpython\) on 1 host: charlie  ← odd one out", out), out
    assert caffedoc("report", "--strict", str(reports)).returncode == 1


def test_report_json(reports):
    res = caffedoc("report", "--json", *sorted(map(str, reports.glob("*.json"))))
    fleet = json.loads(res.stdout)
    assert [h["name"] for h in fleet["hosts"]] == ["alpha", "bravo", "charlie"]
    assert fleet["counts"] == {"ok": 0, "warning": 3, "error": 0}
    [missing] = [f for f in fleet["findings"] if f["id"] == "caffe-missing"]
    assert missing["hosts"] == ["alpha", "bravo", "charlie"]
    [python] = [d for d in fleet["drift"] if d["fact"] == "python"]
    assert python["odd_ones_out"] == ["charlie"]
    assert python["majority"].startswith("3.11.")


def test_reports_it_cannot_read_are_named_and_the_rest_shown(reports, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(reports, mixed)
    (mixed / "truncated.json").write_text((reports / "alpha.json").read_text()[:500])
    (mixed / "other.json").write_text('{"name": "a package.json"}')
    newer = json.loads((reports / "bravo.json").read_text())
    newer.update(schema=99, host={"name": "delta"})
    (mixed / "newer.json").write_text(json.dumps(newer))
    (mixed / "junk.json").write_bytes(b"\x00\xff\xfe binary")
    res = caffedoc("report", str(mixed))
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert len(lines) == 4, res.stderr
    assert all(line.startswith("caffedoc: error: ") for line in lines)
    assert f"{mixed / 'truncated.json'}: not JSON" in res.stderr
    assert f"{mixed / 'junk.json'}: not JSON" in res.stderr
    assert f"{mixed / 'other.json'}: not a caffedoc check --json report" in res.stderr
    assert f"{mixed / 'newer.json'}: written by a newer caffedoc" in res.stderr
    assert "schema 99" in res.stderr
    assert "Traceback" not in res.stderr
    assert res.stdout.startswith("3 hosts:")  # the readable ones still show


@pytest.mark.parametrize("case", ["nothing readable", "empty directory", "missing file"])
def test_no_report_is_bad_usage(case, tmp_path):
    if case == "nothing readable":
        (tmp_path / "a.json").write_text("not json")
    args = [str(tmp_path / "absent.json")] if case == "missing file" else [str(tmp_path)]
    res = caffedoc("report", *args)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.splitlines()[-1].startswith("caffedoc: error: ")
    assert "Traceback" not in res.stderr


def test_html_to_an_unwritable_place_is_one_line(reports, tmp_path):
    res = caffedoc("report", str(reports), "--html", str(tmp_path / "no" / "such" / "fleet.html"))
    assert res.returncode == 2
    assert res.stderr.startswith("caffedoc: error: --html ") and res.stderr.count("\n") == 1
    assert not (tmp_path / "no").exists()


def _chromium(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or pytest.skip("needs chromium (.ci/run installs it)")
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _rows(dom: str) -> list[str]:
    body = dom.split('<table id="hosts">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr><td>([^<]+)</td>", body)


def test_the_page_in_a_real_browser(reports, tmp_path):
    page = tmp_path / "fleet.html"
    res = caffedoc("report", str(reports), "--html", str(page))
    assert res.returncode == 0, res.stderr
    html = page.read_text()
    # Self-contained: nothing is fetched at view time.
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html)
    assert "http://" not in html and "https://" not in html
    # Loaded, as is: the host table holds the three hosts, their finding and their Python.
    dom = _chromium("--dump-dom", page.as_uri(), tmp_path=tmp_path).stdout
    assert _rows(dom) == ["alpha", "bravo", "charlie"]
    assert dom.count('class="mark warning"') == 3  # caffe-missing on each host, in the matrix
    assert 'class="odd">3.9.' in dom  # charlie's Python is marked as the odd one out
    # Sorted by the page's own click handler, versions as numbers: 3.9 before 3.11.
    dom = _chromium("--dump-dom", f"{page.as_uri()}#click=python", tmp_path=tmp_path).stdout
    assert 'data-sorted="python:ascending"' in dom
    assert _rows(dom)[0] == "charlie"
    dom = _chromium("--dump-dom", f"{page.as_uri()}#click=python,python", tmp_path=tmp_path).stdout
    assert 'data-sorted="python:descending"' in dom
    assert _rows(dom)[-1] == "charlie"
    dom = _chromium("--dump-dom", f"{page.as_uri()}#click=host,host", tmp_path=tmp_path).stdout
    assert _rows(dom) == ["charlie", "bravo", "alpha"]
    shot = tmp_path / "fleet.png"
    _chromium("--window-size=1400,900", f"--screenshot={shot}", page.as_uri(), tmp_path=tmp_path)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
