"""`caffedoc check` on a machine that fights back, for real: a hung `lsb_release` on
PATH, a `sitecustomize` that floods stdout, a `--python` that is a shell script, an
interpreter that hangs, and a venv owned by another user whose start-up code records
whom it runs as."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import caffedoc
from tests.fixtures.envs import check_env
from tests.fixtures.users import user_tmp

TARGET_AREAS = ("Python interpreters and pips", "protobuf", "Caffe installs", "OpenCV beside Caffe")
SYSTEM_PYTHON = Path("/usr/bin/python3")

# Runs caffedoc and prints its exit status and peak memory: this process has no other
# child, so RUSAGE_CHILDREN's peak is caffedoc's (or a child of it).
MEASURE = """\
import resource, subprocess, sys
with open(sys.argv[1], "w") as out:
    rc = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.PIPE).returncode
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""

# Floods stdout with 300 MiB in every interpreter that starts with it on its path,
# except caffedoc itself (`python -m caffedoc`): the probes' children run `-c`.
FLOOD = """\
import sys
if sys.argv[:1] != ["-m"]:
    chunk = "x" * (1 << 20) + "\\n"
    for _ in range(300):
        sys.stdout.write(chunk)
    sys.stdout.flush()
"""

# The venv owner's start-up code, a .pth import line (a venv's own sitecustomize.py can
# be shadowed by the distribution's): appends the uid it runs as, every time it runs.
RECORDER = "import os; fh = open({uids!r}, 'a'); fh.write('%d\\n' % os.geteuid()); fh.close()\n"


def _script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def _os_release_id() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("ID="):
            return line[3:].strip().strip('"')
    raise AssertionError("no ID= in /etc/os-release")


def _marks(text: str) -> dict[str, str]:
    """Area title → its mark, from the text report's `[✓] Title` lines."""
    return {
        line[4:]: line[1] for line in text.splitlines() if line[:1] == "[" and line[2:4] == "] "
    }


def _no_process(argv: list[str]) -> bool:
    time.sleep(0.2)
    for p in psutil.process_iter(["cmdline", "status"]):
        if p.info["cmdline"] == argv and p.info["status"] != psutil.STATUS_ZOMBIE:
            return False
    return True


def test_a_hung_lsb_release_costs_nothing(tmp_path):
    ran = tmp_path / "lsb_release-ran"
    tools = tmp_path / "bin"
    _script(tools / "lsb_release", f"#!/bin/sh\necho ran > {ran}\nexec sleep 100000\n")

    start = time.monotonic()
    res = caffedoc(
        "check", "--json", env=check_env(tmp_path / "home", tools), cwd=tmp_path, timeout=120
    )
    took = time.monotonic() - start

    # Termination, not speed: it used to wait on lsb_release for as long as it slept.
    assert took < 60, took
    assert res.returncode in (0, 1), res.stderr
    assert not ran.exists(), "lsb_release was run"
    system = json.loads(res.stdout)["facts"]["system"]
    assert system["os_id"] == _os_release_id()
    assert system["os_version"]


def test_a_flooding_sitecustomize_leaves_caffedoc_small(tmp_path):
    _script(tmp_path / "flood" / "sitecustomize.py", FLOOD)
    env = check_env(tmp_path / "home", PYTHONPATH=str(tmp_path / "flood"))
    report = tmp_path / "report.json"
    argv = [sys.executable, "-m", "caffedoc", "check", "--json"]

    # -I: the measuring interpreter itself ignores PYTHONPATH; caffedoc inherits it.
    res = subprocess.run(
        [sys.executable, "-I", "-c", MEASURE, report, *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )

    rc, max_rss_kib = map(int, res.stdout.split())
    assert rc in (0, 1), res.stderr
    assert max_rss_kib < 300 * 1024, f"{max_rss_kib // 1024} MiB"
    facts = json.loads(report.read_text())["facts"]
    # The report after the flood was still read: the kept tail holds it.
    assert facts["python"]["target"]["version"], facts["python"]["target"]
    assert "MiB of stdout dropped (output limit)" in json.dumps(facts["opencv"])


def test_a_python_that_is_a_shell_script(tmp_path):
    fake = _script(tmp_path / "bin" / "fake-python", "#!/bin/sh\necho 3\n")
    env = check_env(tmp_path / "home")

    text = caffedoc("check", "--python", str(fake), env=env, cwd=tmp_path)
    js = caffedoc("check", "--python", str(fake), "--json", env=env, cwd=tmp_path)

    assert text.returncode == 1 and js.returncode == 1, text.stderr + js.stderr
    assert "Traceback" not in text.stderr + js.stderr
    assert "0 error(s)" not in text.stdout and "No problems found" not in text.stdout
    marks = _marks(text.stdout)
    assert all(marks[a] == "?" for a in TARGET_AREAS), marks
    report = json.loads(js.stdout)
    assert report["status"] == "error"
    assert report["not_examined"] == ["python", "protobuf", "caffe", "opencv"]
    failed = [f for f in report["findings"] if f["id"] == "probe-failed"]
    assert {f["severity"] for f in failed} == {"error"}
    assert "not a Python interpreter" in report["facts"]["python"]["target"]["error"]


@pytest.mark.parametrize("how", ["python3 on PATH", "--python"])
def test_a_hanging_interpreter_is_named_not_green(tmp_path, how):
    sleep = ["sleep", "100000.5"]
    # As --python it must first pass the option's own check, then hang on the probes.
    hang = _script(
        tmp_path / "bin" / "python3",
        '#!/bin/sh\ncase "$*" in *hexversion*) echo 50988528 ;; *) exec '
        + " ".join(sleep)
        + " ;; esac\n",
    )
    args = ["--python", str(hang)] if how == "--python" else []
    env = check_env(tmp_path / "home", hang.parent)

    res = caffedoc("check", *args, env=env, cwd=tmp_path, timeout=200)

    assert res.returncode == 1, res.stdout + res.stderr
    marks = _marks(res.stdout)
    assert all(marks[a] == "?" for a in TARGET_AREAS), marks
    assert f"`{hang} -c <caffedoc/probes/scripts/introspect.py>` did not finish within" in (
        res.stdout
    )
    assert "opencv-runtime-crash" not in res.stdout
    assert "0 error(s)" not in res.stdout
    assert _no_process(sleep)


def test_a_venvs_code_runs_as_its_owner(hostile_user, tmp_path):
    if not SYSTEM_PYTHON.exists():
        pytest.skip("needs the system's python3, which another user can run")
    home = user_tmp(tmp_path, hostile_user)
    venv = home / "venv"
    made = hostile_user.run(SYSTEM_PYTHON, "-m", "venv", "--without-pip", venv)
    assert made.returncode == 0, made.stderr
    uids = home / "uids"
    version = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    site = venv / "lib" / f"python{version}" / "site-packages"
    (site / "record-uid.pth").write_text(RECORDER.format(uids=str(uids)))
    hostile_user.own(site / "record-uid.pth")
    python = venv / "bin" / "python"

    res = caffedoc("check", "--python", str(python), env=check_env(tmp_path / "home"), cwd=tmp_path)

    assert res.returncode in (0, 1) and "Traceback" not in res.stderr, res.stderr
    seen = uids.read_text().split()
    assert len(seen) >= 3, seen  # the option's check, sys.path, the imports
    assert set(seen) == {str(hostile_user.uid)}, seen
    line = f"runs code of: {python} (sys.path; import caffe, cv2) as {hostile_user.name}"
    assert line in res.stdout, res.stdout
