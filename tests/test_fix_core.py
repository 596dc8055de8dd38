"""The fix engine on real files: journal, undo byte for byte, rollback, lock, interruption."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from caffedoc.fix import engine, journal
from caffedoc.fix.steps import AppendLine, MoveAside, RunCommand, WriteFile
from tests.conftest import REPO, caffedoc
from tests.fixtures.native import private_var_cache


def fingerprint(*roots: Path) -> dict[str, tuple]:
    """Every path under `roots`: kind, mode, owner, and contents (hash, mtime) or link target."""
    out: dict[str, tuple] = {}
    for root in roots:
        if not os.path.lexists(root):
            out[str(root)] = ("absent",)
            continue
        paths = [root]
        if root.is_dir() and not root.is_symlink():
            paths += sorted(root.rglob("*"))
        for p in paths:
            st = p.lstat()
            if p.is_symlink():
                out[str(p)] = ("link", os.readlink(p), st.st_uid, st.st_gid)
            elif p.is_dir():
                out[str(p)] = ("dir", st.st_mode, st.st_uid, st.st_gid)
            else:
                sha = hashlib.sha256(p.read_bytes()).hexdigest()
                out[str(p)] = ("file", st.st_mode, st.st_uid, st.st_gid, sha, st.st_mtime_ns)
    return out


def make_tree(root: Path) -> dict[str, Path]:
    """A small tree with every kind of thing a fix touches."""
    root.mkdir()
    data = root / "data.bin"
    data.write_bytes(b"\x00\xffnot utf-8\n")
    data.chmod(0o640)
    (root / "link").symlink_to("data.bin")
    pkg = root / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("STALE = True\n")
    (pkg / "sub" / "_lib.so").write_bytes(os.urandom(256))
    (pkg / "sub" / "_lib.so").chmod(0o755)
    conf = root / "ld.so.conf"
    conf.write_text("include ld.so.conf.d/*.conf")  # no final newline, on purpose
    kept = root / "kept.txt"
    kept.write_text("before\n")
    kept.chmod(0o600)
    watched = root / "watched"
    watched.mkdir()
    (watched / "old").write_text("old\n")
    return {
        "data": data,
        "link": root / "link",
        "pkg": pkg,
        "conf": conf,
        "kept": kept,
        "watched": watched,
    }


def test_undo_restores_every_change_byte_for_byte(tmp_path):
    t = make_tree(tmp_path / "t")
    before = fingerprint(tmp_path / "t")
    script = (
        "touch watched/new; mkdir -p watched/d/e; echo x > watched/d/e/f; echo after > kept.txt"
    )
    steps = [
        WriteFile(t["data"], "replaced\n"),
        WriteFile(tmp_path / "t" / "new" / "deep" / "x.pth", "/somewhere\n"),
        AppendLine(t["conf"], "include extra.conf"),
        MoveAside(t["pkg"], "20260101T000000"),
        WriteFile(t["link"], "a file where a link was\n", mode=0o600),
        RunCommand(
            ("sh", "-c", f"cd {tmp_path / 't'} && {script}"),
            preserve=(t["kept"],),
            watch=(t["watched"],),
        ),
    ]
    jr = journal.Journal.create(tmp_path / "state", "test")
    engine.apply_steps(steps, jr, dict(os.environ))

    assert jr.status == "applied"
    assert t["data"].read_text() == "replaced\n"
    assert t["conf"].read_text() == "include ld.so.conf.d/*.conf\ninclude extra.conf\n"
    assert not t["pkg"].exists()
    assert (tmp_path / "t" / "pkg.caffedoc-moved-20260101T000000" / "__init__.py").exists()
    assert not t["link"].is_symlink()
    assert (t["watched"] / "d" / "e" / "f").exists()
    assert t["kept"].read_text() == "after\n"
    assert fingerprint(tmp_path / "t") != before

    # A fresh process reads the journal from disk, as `caffedoc fix --undo` does.
    env = {**os.environ, "CAFFEDOC_STATE_DIR": str(tmp_path / "state")}
    res = caffedoc("fix", "--undo", env=env)
    assert res.returncode == 0, res.stderr
    assert "Undone" in res.stdout
    assert fingerprint(tmp_path / "t") == before
    assert journal.Journal.load(jr.dir).status == "undone"

    again = caffedoc("fix", "--undo", env=env)
    assert again.returncode == 1
    assert again.stderr.startswith("caffedoc: error: nothing to undo")
    assert len(again.stderr.strip().splitlines()) == 1


def test_failing_step_rolls_back_what_came_before(tmp_path):
    t = make_tree(tmp_path / "t")
    before = fingerprint(tmp_path / "t")
    steps = [
        WriteFile(tmp_path / "t" / "caffe.pth", "/opt/caffe/python\n"),
        MoveAside(t["pkg"], "20260101T000000"),
        AppendLine(t["conf"], "include more.conf"),
        RunCommand(
            ("sh", "-c", f"echo half-done > {t['kept']}; touch {t['watched']}/junk; exit 3"),
            preserve=(t["kept"],),
            watch=(t["watched"],),
        ),
        WriteFile(tmp_path / "t" / "never.txt", "never written\n"),
    ]
    jr = journal.Journal.create(tmp_path / "state", "test")
    with pytest.raises(engine.FixFailed) as failed:
        engine.apply_steps(steps, jr, dict(os.environ))
    assert "exited 3" in failed.value.reason
    assert failed.value.problems == []
    assert fingerprint(tmp_path / "t") == before
    assert journal.Journal.load(jr.dir).status == "rolled-back"


def test_files_of_a_directory_a_command_removed_come_back_exactly(tmp_path):
    """What pip does to the old version's dist-info: the files and their directory go."""
    site = tmp_path / "site"
    old = site / "pkg-1.0.dist-info"
    (old / "licenses").mkdir(parents=True)
    old.chmod(0o750)
    (old / "RECORD").write_text("pkg/__init__.py,,\n")
    (old / "licenses" / "LICENSE").write_text("BSD\n")
    before = fingerprint(site)
    new = "mkdir -p {s}/pkg-2.0.dist-info && echo 2 > {s}/pkg-2.0.dist-info/RECORD"
    steps = [
        RunCommand(
            ("sh", "-c", f"rm -rf {old} && " + new.format(s=site)),
            preserve=(old / "RECORD", old / "licenses" / "LICENSE"),
            watch=(site,),
        )
    ]
    jr = journal.Journal.create(tmp_path / "state", "test")
    engine.apply_steps(steps, jr, dict(os.environ))
    assert not old.exists()
    assert engine.undo(jr) == []
    assert fingerprint(site) == before


def test_move_aside_refuses_to_overwrite(tmp_path):
    t = make_tree(tmp_path / "t")
    step = MoveAside(t["pkg"], "X")
    step.dest.mkdir()
    jr = journal.Journal.create(tmp_path / "state", "test")
    with pytest.raises(engine.FixFailed, match="already exists"):
        engine.apply_steps([step], jr, dict(os.environ))
    assert (t["pkg"] / "__init__.py").read_text() == "STALE = True\n"


# A fix that is killed while its last step (a command) runs.
SLOW_FIX = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from caffedoc.fix import engine, journal
    from caffedoc.fix.steps import MoveAside, RunCommand, WriteFile
    root, tree = Path(sys.argv[1]), Path(sys.argv[2])
    with journal.locked(root):
        jr = journal.Journal.create(root, "slow")
        engine.apply_steps(
            [
                WriteFile(tree / "data.bin", "replaced\\n"),
                MoveAside(tree / "pkg", "20260101T000000"),
                RunCommand(("sh", "-c", "echo started > " + str(tree / "kept.txt") + "; sleep 60"),
                           preserve=(tree / "kept.txt",)),
            ],
            jr,
            dict(os.environ),
        )
    """
)


def test_concurrent_fix_refused_and_interrupted_fix_undone(tmp_path):
    make_tree(tmp_path / "t")
    before = fingerprint(tmp_path / "t")
    state = tmp_path / "state"
    env = {**os.environ, "CAFFEDOC_STATE_DIR": str(state), "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_FIX, str(state), str(tmp_path / "t")],
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while (tmp_path / "t" / "kept.txt").read_text() != "started\n":
            assert time.monotonic() < deadline, "the slow fix never reached its last step"
            time.sleep(0.1)

        busy = caffedoc("fix", "--undo", env=env)
        assert busy.returncode == 1
        assert busy.stderr.strip() == (
            f"caffedoc: error: another caffedoc fix is running (pid {child.pid}); "
            "wait for it to finish"
        )
        assert (tmp_path / "t" / "pkg.caffedoc-moved-20260101T000000").exists()
    finally:
        # The command runs in its own session (caffedoc.host): kill it with the fix, the
        # fix first, so that it cannot see its command die and roll back.
        for proc in [child, *psutil.Process(child.pid).children(recursive=True)]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        child.wait()

    (jdir,) = (state / "journal").iterdir()
    assert json.loads((jdir / "journal.json").read_text())["status"] == "applying"
    res = caffedoc("fix", "--undo", env=env)
    assert res.returncode == 0, res.stderr
    assert fingerprint(tmp_path / "t") == before


def fix_cli(
    *args: str, env: dict[str, str], user: str | None = None, private_cache: bool = False
) -> subprocess.CompletedProcess:
    """`caffedoc fix ...` in a child with no terminal on stdin, as this user or `user`;
    with `private_cache`, under a throw-away /var/cache (for a fix that runs ldconfig)."""
    argv = [sys.executable, "-m", "caffedoc", "fix", *args]
    if user is not None:
        argv = [*unprivileged(user, env), "-m", "caffedoc", "fix", *args]
        # Only the standard directories: this user's PATH may name ones it cannot read.
        path = os.pathsep.join([os.defpath, "/usr/sbin", "/sbin"])
        env = {**env, "PYTHONPATH": os.pathsep.join(_import_path()), "PATH": path}
    if private_cache:
        argv = private_var_cache(argv)
    return subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300
    )


def _import_path() -> list[str]:
    return [str(REPO), sysconfig.get_paths()["purelib"]]


# setpriv may start an interpreter the user could not start by its own path: require both.
CAN_RUN = "import os, sys, caffedoc.cli; sys.exit(not os.access(sys.executable, os.X_OK))"


def unprivileged(user: str, env: dict[str, str]) -> list[str]:
    """An argv prefix running a Python as `user` (a user that is not root) that can
    import caffedoc from this checkout; skips when this process cannot switch users."""
    if os.geteuid() != 0:
        return [sys.executable]
    who = pwd.getpwnam(user)
    drop = ["setpriv", f"--reuid={who.pw_uid}", f"--regid={who.pw_gid}", "--clear-groups"]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [os.path.realpath(sys.executable), shutil.which(version, path=os.defpath)]
    probe_env = {**env, "PYTHONPATH": os.pathsep.join(_import_path())}
    for python in filter(None, candidates):
        res = subprocess.run(
            [*drop, python, "-c", CAN_RUN],
            env=probe_env,
            capture_output=True,
            timeout=60,
        )
        if res.returncode == 0:
            return [*drop, python]
    pytest.skip(f"no {version} that {user} may run with this checkout's packages")


def test_unknown_problem_id_is_bad_usage(tmp_path):
    res = fix_cli(
        "--only", "no-such-problem", env={**os.environ, "CAFFEDOC_STATE_DIR": str(tmp_path)}
    )
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "caffedoc: error: --only no-such-problem: no such problem id (see `caffedoc check --json`)"
    )


def test_undo_walks_back_one_fix_at_a_time(tmp_path):
    target = tmp_path / "site" / "caffe.pth"
    target.parent.mkdir()
    target.write_text("/first\n")
    env = {**os.environ, "CAFFEDOC_STATE_DIR": str(tmp_path / "state")}
    for content in ("/second\n", "/third\n"):
        jr = journal.Journal.create(tmp_path / "state", content.strip())
        engine.apply_steps([WriteFile(target, content)], jr, env)
    assert target.read_text() == "/third\n"
    first = fix_cli("--undo", env=env)
    assert "(/third)" in first.stdout
    assert target.read_text() == "/second\n"
    second = fix_cli("--undo", "--json", env=env)
    assert json.loads(second.stdout)["problems"] == []
    assert target.read_text() == "/first\n"
    assert fix_cli("--undo", env=env).returncode == 1
