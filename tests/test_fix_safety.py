"""fix and undo as root against a real second user: planted links, a swapped directory,
an untrusted state directory, forged and corrupt journals, later edits, a full disk, a
read-only journal and a kill -9. Each ends with root's files as they were and, where
caffedoc refuses, one clear line."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from caffedoc.fix import engine, journal
from caffedoc.fix.steps import AppendLine, MoveAside, WriteFile
from caffedoc.layout import PTH_NAME, pin, pin_line
from tests.conftest import REPO, caffedoc
from tests.fixtures.users import digests, root_files, user_tmp
from tests.test_fix_core import fingerprint, fix_cli

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="plays root against another user")


def one_line_error(res: subprocess.CompletedProcess) -> str:
    """The refusal: exit 1, one line on stderr, no traceback."""
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("caffedoc: error: "), res.stderr
    return lines[0]


def chown_tree(user, root: Path) -> None:
    user.own(root)
    for dirpath, dirnames, filenames in os.walk(root):
        user.own(*(Path(dirpath, n) for n in dirnames + filenames))


@pytest.fixture
def victims(tmp_path):
    """Root's private files, and their digests now."""
    d = tmp_path / "root-only"
    d.mkdir(mode=0o700)
    files = root_files(d)
    return d, files, digests(files)


@pytest.fixture
def mallory_venv(tmp_path, hostile_user):
    """A venv the hostile user owns, and a --caffe tree whose package it lacks."""
    home = user_tmp(tmp_path, hostile_user)
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    chown_tree(hostile_user, venv)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.strip()
    )  # fmt: skip
    tree = tmp_path / "tree"
    (tree / "python" / "caffe").mkdir(parents=True)
    (tree / "python" / "caffe" / "__init__.py").write_text("WHICH = 'intended'\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["CAFFEDOC_STATE_DIR"] = str(tmp_path / "state")
    args = ["--python", str(python), "--caffe", str(tree), "--only", "caffe-missing"]
    return site, tree, env, args


def test_links_the_user_planted_are_not_followed_and_the_pin_is_theirs(
    mallory_venv, victims, hostile_user
):
    site, tree, env, args = mallory_venv
    _, (victim, secret), before = victims
    # Every name the old code wrote through: fix's and undo's fixed temporaries.
    for name in (f".{PTH_NAME}.caffedoc-new", f".{PTH_NAME}.caffedoc-restore"):
        assert hostile_user.run("ln", "-s", victim, site / name).returncode == 0
    listing = fingerprint(site)

    done = fix_cli(*args, "--yes", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    pth = site / PTH_NAME
    assert pth.read_text() == pin_line(tree / "python")
    st = pth.lstat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (hostile_user.uid, hostile_user.gid, 0o644)
    assert digests([victim, secret]) == before

    undone = fix_cli("--undo", env=env)
    assert undone.returncode == 0, undone.stderr
    assert fingerprint(site) == listing  # the planted links are still there, untouched
    assert digests([victim, secret]) == before


def test_builds_pin_does_not_write_through_a_planted_temporary(mallory_venv, victims, hostile_user):
    site, tree, _, _ = mallory_venv
    _, (victim, secret), before = victims
    for name in (f"{PTH_NAME}.tmp-{os.getpid()}", PTH_NAME):  # the old temporary; the pin itself
        assert hostile_user.run("ln", "-s", victim, site / name).returncode == 0
    pin(site / PTH_NAME, tree)
    assert not (site / PTH_NAME).is_symlink()
    assert (site / PTH_NAME).stat().st_uid == hostile_user.uid
    assert (site / PTH_NAME).read_text() == pin_line(tree / "python")
    assert digests([victim, secret]) == before


def test_append_refuses_a_planted_link(tmp_path, victims, hostile_user):
    home = user_tmp(tmp_path, hostile_user)
    _, (victim, secret), before = victims
    conf = home / "ld.so.conf"
    assert hostile_user.run("ln", "-s", victim, conf).returncode == 0
    jr = journal.Journal.create(tmp_path / "state", "append")
    with pytest.raises(engine.FixFailed, match=r"cannot append to .*symbolic links"):
        engine.apply_steps([AppendLine(conf, "/opt/cuda/lib64")], jr, dict(os.environ))
    assert digests([victim, secret]) == before
    assert conf.is_symlink()


def test_parent_swapped_for_a_link_before_apply_and_before_undo(tmp_path, victims, hostile_user):
    """The user replaces the directory the plan named with a link to root's directory,
    between planning and applying, and again after the fix, before the undo."""
    home = user_tmp(tmp_path, hostile_user)
    secrets_dir, (victim, secret), before = victims
    site = home / "site"
    hostile_user.run("mkdir", "-p", site / "caffe")
    steps = [WriteFile(site / PTH_NAME, "/opt/caffe/python\n"), MoveAside(site / "caffe", "X")]
    hostile_user.run("mv", site, home / "site.real")
    hostile_user.run("ln", "-s", secrets_dir, site)
    jr = journal.Journal.create(tmp_path / "state", "race")
    with pytest.raises(engine.FixFailed, match="symbolic link where user caffedoc-mallory"):
        engine.apply_steps(steps, jr, dict(os.environ))
    assert sorted(p.name for p in secrets_dir.iterdir()) == ["secret", "victim"]

    hostile_user.run("rm", site)
    hostile_user.run("mv", home / "site.real", site)
    jr = journal.Journal.create(tmp_path / "state", "race")
    engine.apply_steps(steps, jr, dict(os.environ))
    hostile_user.run("mv", site, home / "site.real")
    hostile_user.run("ln", "-s", secrets_dir, site)
    env = {**os.environ, "CAFFEDOC_STATE_DIR": str(tmp_path / "state")}
    line = one_line_error(fix_cli("--undo", env=env))
    assert line.startswith(f"caffedoc: error: {site / PTH_NAME} (and 1 more) changed after fix")
    forced = fix_cli("--undo", "--force", env=env)
    assert forced.returncode == 1 and "incomplete" in forced.stdout  # refused, not followed
    assert sorted(p.name for p in secrets_dir.iterdir()) == ["secret", "victim"]
    assert digests([victim, secret]) == before


def test_untrusted_state_directory_and_linked_lock_are_refused(tmp_path, victims, hostile_user):
    _, (victim, secret), before = victims
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "lock").symlink_to(victim)
    res = fix_cli("--undo", env={**os.environ, "CAFFEDOC_STATE_DIR": str(state)})
    assert one_line_error(res) == (
        f"caffedoc: error: {state / 'lock'} is a symbolic link: caffedoc will not use it"
    )

    theirs = user_tmp(tmp_path, hostile_user, "mallory-state")
    res = fix_cli("--undo", env={**os.environ, "CAFFEDOC_STATE_DIR": str(theirs)})
    assert f"is not private: user {hostile_user.name} controls it" in one_line_error(res)
    for mode in (0o777, 0o1777, 0o770):
        open_ = tmp_path / f"open-{mode:o}"
        open_.mkdir()
        open_.chmod(mode)
        res = fix_cli("--undo", env={**os.environ, "CAFFEDOC_STATE_DIR": str(open_)})
        assert "is not safe to use" in one_line_error(res)
        assert list(open_.iterdir()) == []
    assert digests([victim, secret]) == before


FORGED_SETUID = {"path": "", "kind": "file", "mode": 0o4755, "uid": 0, "gid": 0, "mtime_ns": 0}


def forge(jdir: Path, target: Path, precious: Path) -> None:
    """Add to a journal what a forger wants undo to do as root: a setuid-root copy of a
    backup, and `rm -rf` of a directory."""
    data = json.loads((jdir / "journal.json").read_text())
    sha = next(p.name for p in (jdir / "blobs").iterdir())
    forged = [{**FORGED_SETUID, "path": str(target), "sha256": sha}]
    data["records"].insert(0, {"type": "snapshot", "trees": [forged, [{"path": str(precious),
                               "kind": "absent"}]]})  # fmt: skip
    (jdir / "journal.json").write_text(json.dumps(data))


@pytest.mark.parametrize("who", ["edited", "mallory"])
def test_forged_journal_is_refused(tmp_path, victims, hostile_user, who):
    _, (victim, secret), before = victims
    precious = tmp_path / "precious"
    (precious / "work").mkdir(parents=True)
    (precious / "work" / "thesis.tex").write_text("years\n")
    pth = tmp_path / "site" / PTH_NAME
    pth.parent.mkdir()
    pth.write_text("/old\n")
    state = tmp_path / "state"
    jr = journal.Journal.create(state, "real")
    engine.apply_steps([WriteFile(pth, "/new\n")], jr, dict(os.environ))
    forge(jr.dir, tmp_path / "suid", precious)
    if who == "mallory":  # a journal that is the user's file, however it got there
        hostile_user.own(jr.dir / "journal.json")
    watched = fingerprint(precious, pth.parent)

    line = one_line_error(fix_cli("--undo", env={**os.environ, "CAFFEDOC_STATE_DIR": str(state)}))
    assert line.startswith(f"caffedoc: error: the fix journal {jr.dir} ")
    assert "nothing was undone" in line
    assert not (tmp_path / "suid").exists()
    assert fingerprint(precious, pth.parent) == watched
    assert digests([victim, secret]) == before


def test_undo_stops_over_a_later_edit_and_force_restores(mallory_venv, victims, hostile_user):
    site, _, env, args = mallory_venv
    _, (victim, secret), before = victims
    old = site / PTH_NAME
    old.write_text("import sys\n")  # a pin from an earlier build, to be replaced
    hostile_user.own(old)
    listing = fingerprint(site)
    assert fix_cli(*args, "--yes", env=env).returncode == 0
    hostile_user.run("sh", "-c", f"echo /my/own/addition >> {old}")
    edited = old.read_text()

    line = one_line_error(fix_cli("--undo", env=env))
    (jdir,) = (Path(env["CAFFEDOC_STATE_DIR"]) / "journal").iterdir()
    blob = jdir / "blobs" / hashlib.sha256(b"import sys\n").hexdigest()
    assert line == (
        f"caffedoc: error: {old} changed after fix {jdir.name}, so nothing was undone "
        f"(the backup is {blob}): keep the change and put back the rest by hand, or run "
        "`caffedoc fix --undo --force` to put back everything as it was before the fix"
    )
    assert old.read_text() == edited
    assert blob.read_text() == "import sys\n"

    forced = fix_cli("--undo", "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert fingerprint(site) == listing
    assert digests([victim, secret]) == before


def test_corrupt_newest_journal_stops_undo(tmp_path):
    target = tmp_path / "site" / "caffe.pth"
    target.parent.mkdir()
    target.write_text("/first\n")
    state = tmp_path / "state"
    env = {**os.environ, "CAFFEDOC_STATE_DIR": str(state)}
    dirs = []
    for content in ("/second\n", "/third\n"):
        jr = journal.Journal.create(state, content.strip())
        engine.apply_steps([WriteFile(target, content)], jr, env)
        dirs.append(jr.dir)
    (dirs[-1] / "journal.json").write_text('{"status": "applied", "rec')

    line = one_line_error(fix_cli("--undo", env=env))
    assert line.startswith(f"caffedoc: error: the fix journal {dirs[-1]} cannot be read (")
    assert target.read_text() == "/third\n"  # and the older fix was not undone instead
    assert journal.interrupted_fix(env) == line.removeprefix("caffedoc: error: ")


def in_namespace(script: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """`script` (sh, given `args`) in a private mount namespace: its mounts vanish with it."""
    return subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", *args], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


FULL_DISK = """
set -e
mount -t tmpfs -o size=64k,mode=0700 caffedoc-test "$CAFFEDOC_STATE_DIR"
dd if=/dev/zero of="$CAFFEDOC_STATE_DIR/filler" bs=4k 2>/dev/null || true
set +e
"$PY" -m caffedoc fix "$@" --yes </dev/null >/dev/null 2>"$ERR"
echo "rc=$?"
find "$CAFFEDOC_STATE_DIR" -name journal.json -exec cat {} +
"""

READ_ONLY = """
set -e
mkdir -p "$CAFFEDOC_STATE_DIR/journal"
mount --bind "$CAFFEDOC_STATE_DIR/journal" "$CAFFEDOC_STATE_DIR/journal"
mount -o remount,bind,ro "$CAFFEDOC_STATE_DIR/journal"
set +e
"$PY" -m caffedoc fix "$@" --yes </dev/null >/dev/null 2>"$ERR"
echo "rc=$?"
"""


@pytest.mark.parametrize(("script", "why"), [(FULL_DISK, "No space left on device"),
                                             (READ_ONLY, "Read-only file system")])  # fmt: skip
def test_full_or_read_only_state_changes_nothing(mallory_venv, victims, tmp_path, script, why):
    site, _, env, args = mallory_venv
    _, (victim, secret), before = victims
    state = Path(env["CAFFEDOC_STATE_DIR"])
    state.mkdir(mode=0o700)
    listing = fingerprint(site)
    err = tmp_path / "stderr"
    env = {**env, "PY": sys.executable, "ERR": str(err)}
    res = in_namespace(script, args, env)
    assert res.stdout.startswith("rc=1\n"), res.stdout + res.stderr + err.read_text()
    lines = err.read_text().strip().splitlines()
    assert lines == [
        f"caffedoc: error: cannot write the fix journal in {state / 'journal'}: {why}; "
        "nothing was changed"
    ]
    assert "applying" not in res.stdout  # no journal left to read as an interrupted fix
    assert fingerprint(site) == listing
    assert digests([victim, secret]) == before


# A fix killed with SIGKILL between writing its temporary and renaming it.
KILLED = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from caffedoc.fix import engine, journal
    from caffedoc.fix.steps import WriteFile
    real = os.rename
    def hang(*args, **kw):  # the rename of a file into place, relative to its directory
        if "src_dir_fd" not in kw:
            return real(*args, **kw)
        print("renaming", flush=True)
        time.sleep(60)
    os.rename = hang
    root, target = Path(sys.argv[1]), Path(sys.argv[2])
    with journal.locked(root):
        jr = journal.Journal.create(root, "killed")
        engine.apply_steps([WriteFile(target, "new\\n")], jr, dict(os.environ))
    """
)


def test_kill_before_rename_leaves_no_temporary_after_undo(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / PTH_NAME).write_text("old\n")
    listing = fingerprint(site)
    state = tmp_path / "state"
    env = {**os.environ, "CAFFEDOC_STATE_DIR": str(state), "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", KILLED, state, site / PTH_NAME], env=env,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert child.stdout.readline() == "renaming\n"
        assert journal.interrupted_fix(env) is None  # it holds the lock: running, not stuck
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    (tmp,) = site.glob(f".{PTH_NAME}.caffedoc-new-*")
    assert tmp.read_text() == "new\n"
    (jdir,) = (state / "journal").iterdir()
    assert journal.interrupted_fix(env) == (
        f"an interrupted fix (journal {jdir}: killed, started {journal.Journal.load(jdir).created})"
        " was never finished: run `caffedoc fix --undo` to put back what it changed"
    )
    checked = caffedoc("check", "--json", env=env)
    assert checked.returncode == 1, checked.stderr
    [found] = [f for f in json.loads(checked.stdout)["findings"] if f["id"] == "fix-interrupted"]
    assert (found["severity"], found["area"]) == ("error", "system")
    assert found["evidence"] == [journal.interrupted_fix(env)]

    res = fix_cli("--undo", env=env)
    assert res.returncode == 0, res.stderr
    assert fingerprint(site) == listing
    assert journal.interrupted_fix(env) is None
    again = json.loads(caffedoc("check", "--json", env=env).stdout)
    assert "fix-interrupted" not in {f["id"] for f in again["findings"]}


def locked_by(path: Path, pid: int) -> bool:
    """Whether `pid` holds a flock on `path`, read from /proc/locks (taking the lock to
    find out would make the fix refuse)."""
    try:
        ino = os.stat(path).st_ino
    except FileNotFoundError:
        return False
    for line in Path("/proc/locks").read_text().splitlines():
        f = line.split()
        if f[1] == "FLOCK" and f[4] == str(pid) and int(f[5].split(":")[2]) == ino:
            return True
    return False


def test_the_lock_is_held_while_planning(mallory_venv):
    """A fix holds the lock from its check on: seen from outside while the target
    interpreter (slowed by a .pth) is still being examined and no journal exists."""
    site, _, env, args = mallory_venv
    (site / "slow.pth").write_text("import time; time.sleep(1)\n")
    state = Path(env["CAFFEDOC_STATE_DIR"])
    argv = [sys.executable, "-m", "caffedoc", "fix", *args, "--yes"]
    child = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    held = False
    try:
        deadline = time.monotonic() + 60
        while not held and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.1)
            held = locked_by(state / "lock", child.pid) and not (state / "journal").exists()
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=120)
    assert held, "the lock was never seen held before the journal was made"
    assert child.returncode == 0
