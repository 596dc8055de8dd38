"""`host.run` against children that try to outlive or outgrow caffedoc, for real: a
grandchild that leaves the session and keeps stdout open, a 200 MB flood, a Ctrl-C
while a child sleeps, and a command run as another (real) user."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from caffedoc import host
from tests.fixtures.users import user_tmp

# Forks; the child calls setsid, forks again and exits; the grandchild (a new session,
# reparented away from us, stdout still our pipe) records its pid and sleeps forever.
ESCAPER = """\
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(sys.argv[1], "w") as fh:
            fh.write(str(os.getpid()))
        print("grandchild up", flush=True)
        time.sleep(100000)
    os._exit(0)
time.sleep(100000)
"""

FLOOD = """\
import sys
sys.stdout.write("FIRST LINE\\n")
chunk = "x" * (1 << 20)
for _ in range(200):
    sys.stdout.write(chunk)
sys.stdout.write("\\nLAST LINE\\n")
"""


def _gone(pid: int) -> bool:
    """Ended: no such process, or a zombie (dead, waiting for whoever adopted it)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_for(path: Path, seconds: float = 30) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def test_setsid_grandchild_holding_stdout_does_not_hang_run(tmp_path):
    script = tmp_path / "escaper.py"
    script.write_text(ESCAPER)
    pidfile = tmp_path / "grandchild.pid"

    # In a thread, so that a run that never returns fails the test instead of hanging it.
    done: list[host.Result] = []
    worker = threading.Thread(
        target=lambda: done.append(host.run([sys.executable, script, pidfile], timeout=2)),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=30)  # termination, not speed: the old code waited forever

    grandchild = int(_wait_for(pidfile))
    assert done, "host.run did not return"
    [res] = done
    assert res.timed_out and res.returncode is None, res
    assert "grandchild up" in res.stdout
    time.sleep(0.2)
    assert _gone(grandchild), psutil.Process(grandchild).cmdline()


def test_a_flood_is_kept_to_the_limit_and_counted(tmp_path):
    script = tmp_path / "flood.py"
    script.write_text(FLOOD)
    limit = 1 << 20

    res = host.run([sys.executable, script], timeout=120, limit=limit)

    assert res.ok, res.describe()
    written = len("FIRST LINE\n") + 200 * (1 << 20) + len("\nLAST LINE\n")
    kept = len(res.stdout.encode()) - len(
        f"\n[caffedoc: {res.stdout_dropped} bytes dropped here]\n"
    )
    assert kept == limit
    assert res.stdout_dropped == written - limit
    # The first and last halves survive: a report printed after the flood is still read.
    assert res.stdout.startswith("FIRST LINE\n") and res.stdout.endswith("LAST LINE\n")
    assert "; 199.0 MiB of stdout dropped (output limit)" in res.describe()


def test_a_large_input_is_fed_while_output_is_read():
    text = "line of input\n" * 50_000  # ten times a pipe buffer, both ways, under the limit

    res = host.run(["cat"], input=text, timeout=60)

    assert res.ok and res.stdout == text


def test_ctrl_c_takes_the_child_along(tmp_path):
    pidfile = tmp_path / "sleeper.pid"
    code = (
        "import sys; from caffedoc import host\n"
        "host.run(['sh', '-c', 'echo $$ > ' + sys.argv[1] + '; exec sleep 100000'], timeout=600)\n"
    )
    caller = subprocess.Popen(
        [sys.executable, "-c", code, str(pidfile)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    sleeper = int(_wait_for(pidfile).strip())
    assert not _gone(sleeper)

    caller.send_signal(signal.SIGINT)
    _, err = caller.communicate(timeout=30)

    assert "KeyboardInterrupt" in err
    time.sleep(0.2)
    assert _gone(sleeper)


def test_run_as_a_user(hostile_user, tmp_path):
    home = user_tmp(tmp_path, hostile_user)
    who = pwd.getpwnam(hostile_user.name)
    res = host.run(
        ["sh", "-c", 'id -u; echo "$HOME"; touch made-here'],
        user=who,
        cwd=home,
        env={"PATH": os.defpath},
    )

    assert res.ok, res.describe()
    assert res.stdout.split() == [str(hostile_user.uid), who.pw_dir]
    assert os.stat(home / "made-here").st_uid == hostile_user.uid
    assert "(as caffedoc-mallory)" in res.describe()


def _venv_shape(root: Path) -> Path:
    """A venv's layout around a link to root's interpreter, as `python -m venv` makes."""
    (root / "bin").mkdir(parents=True)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    python = root / "bin" / "python"
    python.symlink_to(os.path.realpath(sys.executable))
    return python


def test_code_owner_is_the_venv_owner(hostile_user, tmp_path):
    theirs = _venv_shape(user_tmp(tmp_path, hostile_user, "venv"))
    hostile_user.own(theirs.parent.parent / "pyvenv.cfg")  # the link itself stays root's
    mine = _venv_shape(tmp_path / "root-venv")

    assert host.code_owner(theirs).pw_uid == hostile_user.uid
    assert host.code_owner(mine) is None
