"""cuda-library-path fixed for real: a compiled libcudnn.so.7 in a directory a private
linker configuration lacks, a Caffe library that needs it; the fix adds an
ld.so.conf.d entry and runs ldconfig on the private cache; undo puts both back."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from caffedoc.fix import journal
from tests.conftest import REPO, caffedoc
from tests.fixtures.native import private_var_cache
from tests.test_fix_core import fingerprint, fix_cli, unprivileged

PID = "cuda-library-path"


def fix(*args: str, env: dict[str, str], user: str | None = None) -> subprocess.CompletedProcess:
    """`caffedoc fix`, which may run ldconfig: under a throw-away /var/cache, so the
    machine's /var/cache/ldconfig/aux-cache is never rewritten by a test."""
    return fix_cli(*args, env=env, user=user, private_cache=True)


def _cc(*args: str) -> None:
    subprocess.run(["cc", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture
def broken_loader():
    """A directory nobody could traverse into under pytest's private tmp, so this one is
    made with mkdtemp and opened to all (the non-root case reads it as another user)."""
    root = Path(tempfile.mkdtemp(prefix="caffedoc-fix-cuda-"))
    root.chmod(0o755)
    cudnn, caffe, confd = root / "cudnn" / "lib64", root / "caffe" / "lib", root / "etc" / "conf.d"
    for d in (cudnn, caffe, confd):
        d.mkdir(parents=True)
    (root / "cudnn.c").write_text("int cudnnCreate(void **h) { (void)h; return 0; }\n")
    (root / "caffe.c").write_text(
        "int cudnnCreate(void **);\nint f(void) { return cudnnCreate(0); }\n"
    )
    _cc(
        "-shared",
        "-fPIC",
        "-Wl,-soname,libcudnn.so.7",
        "-o",
        str(cudnn / "libcudnn.so.7"),
        str(root / "cudnn.c"),
    )
    _cc(
        "-shared",
        "-fPIC",
        "-o",
        str(caffe / "libcaffe.so"),
        str(root / "caffe.c"),
        f"-L{cudnn}",
        "-l:libcudnn.so.7",
    )
    conf = root / "etc" / "ld.so.conf"
    conf.write_text(f"include {confd}/*.conf\n")
    cache = root / "etc" / "ld.so.cache"
    subprocess.run(
        private_var_cache(["ldconfig", "-f", str(conf), "-C", str(cache)]),
        check=True,
        timeout=120,
        env={**os.environ, "PATH": os.environ["PATH"] + ":/usr/sbin:/sbin"},
    )
    env = {
        **os.environ,
        "CUDNN_HOME": str(root / "cudnn"),
        "CAFFEDOC_LD_SO_CONF": str(conf),
        "CAFFEDOC_LD_SO_CACHE": str(cache),
        "CAFFEDOC_STATE_DIR": str(root / "state"),
    }
    yield root, env
    shutil.rmtree(root)


def touched(root: Path) -> dict[str, tuple]:
    """Everything the fix may change: the configuration, the cache (its contents only:
    undo rebuilds it with ldconfig), the library directory."""
    seen = fingerprint(root / "etc", root / "cudnn")
    cache = str(root / "etc" / "ld.so.cache")
    seen[cache] = seen[cache][:-1]  # no mtime
    return seen


def findings(args: list[str], env: dict[str, str]) -> list[dict]:
    """The check's cuda-library-path problems (information about other directories aside)."""
    res = caffedoc("check", "--json", *args, env=env)
    found = json.loads(res.stdout)["findings"]
    return [f for f in found if f["id"] == PID and f["severity"] != "info"]


def test_fix_adds_conf_entry_runs_ldconfig_and_undo_restores(broken_loader):
    root, env = broken_loader
    args = ["--caffe", str(root / "caffe"), "--python", sys.executable]
    assert [f["severity"] for f in findings(args, env)] == ["error"]
    before = touched(root)

    shown = fix(*args, "--only", PID, env=env)
    assert shown.returncode == 0, shown.stderr
    entry = root / "etc" / "conf.d" / "caffedoc-cuda.conf"
    assert f"create {entry}" in shown.stdout
    assert f"-f {root / 'etc' / 'ld.so.conf'} -C {root / 'etc' / 'ld.so.cache'}" in shown.stdout
    assert "Nothing was changed" in shown.stdout
    assert touched(root) == before

    done = fix(*args, "--only", PID, "--yes", "--json", env=env)
    result = json.loads(done.stdout)
    assert result["status"] == "applied", done.stdout + done.stderr
    assert result["before_after"] == [{"id": PID, "before": "error", "after": "fixed"}]
    assert entry.read_text() == f"{root / 'cudnn' / 'lib64'}\n"
    assert findings(args, env) == []
    listed = subprocess.run(
        ["ldconfig", "-p", "-C", str(root / "etc" / "ld.so.cache")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": os.environ["PATH"] + ":/usr/sbin:/sbin"},
    )
    assert str(root / "cudnn" / "lib64" / "libcudnn.so.7") in listed.stdout

    undone = fix("--undo", env=env)
    assert undone.returncode == 0, undone.stderr
    assert touched(root) == before
    assert [f["severity"] for f in findings(args, env)] == ["error"]


def test_non_root_changes_nothing_and_prints_the_commands(broken_loader):
    root, env = broken_loader
    python = unprivileged("nobody", env)[-1]  # an interpreter that user can run
    before = touched(root)
    res = fix(
        "--python",
        python,
        "--caffe",
        str(root / "caffe"),
        "--only",
        PID,
        "--yes",
        env=env,
        user="nobody",
    )
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Not changed: some of these changes need root" in res.stdout
    assert "2. run as root: " in res.stdout
    entry = root / "etc" / "conf.d" / "caffedoc-cuda.conf"
    assert f"printf '%s\\n' {root / 'cudnn' / 'lib64'} | sudo tee {entry} >/dev/null" in res.stdout
    assert f"ldconfig -f {root / 'etc' / 'ld.so.conf'} -C {root / 'etc' / 'ld.so.cache'}" in (
        res.stdout
    )
    assert "sudo /" in res.stdout  # sudo, then ldconfig by its full path
    assert touched(root) == before
    assert not (root / "state" / "journal").exists()


def test_failing_ldconfig_rolls_back_the_conf_entry(broken_loader):
    root, env = broken_loader
    env = {**env, "CAFFEDOC_LD_SO_CACHE": str(root / "etc" / "no-such-dir" / "ld.so.cache")}
    args = ["--caffe", str(root / "caffe"), "--python", sys.executable, "--only", PID, "--yes"]
    before = touched(root)
    res = fix(*args, env=env)
    assert res.returncode == 1
    assert "Failed, and every change was put back" in res.stdout
    assert "Can't create temporary cache file" in res.stdout
    assert touched(root) == before
    (jr,) = journal.journals(root / "state")
    assert jr.status == "rolled-back"


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from caffedoc.fix import journal
    with journal.locked(Path(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(60)
    """
)


def test_second_fix_is_refused_while_one_runs(broken_loader):
    root, env = broken_loader
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(root / "state")],
        env={**env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        before = touched(root)
        res = fix(
            "--caffe",
            str(root / "caffe"),
            "--python",
            sys.executable,
            "--only",
            PID,
            "--yes",
            env=env,
        )
        assert res.returncode == 1
        assert res.stderr.strip() == (
            f"caffedoc: error: another caffedoc fix is running (pid {holder.pid}); "
            "wait for it to finish"
        )
        assert touched(root) == before
    finally:
        holder.kill()
        holder.wait()


def on_a_terminal(argv: list[str], env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run `argv` with a pseudo-terminal as its stdin and stdout; answer its prompt."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the command
        os.execvpe(argv[0], argv, env)
    out = b""
    try:
        while b"Apply these changes?" not in out:
            out += os.read(fd, 4096)
        os.write(fd, answer.encode() + b"\n")
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


@pytest.mark.parametrize("answer", ["n", "y"])
def test_on_a_terminal_it_asks_first(broken_loader, answer):
    root, env = broken_loader
    before = touched(root)
    argv = [sys.executable, "-m", "caffedoc", "fix", "--caffe", str(root / "caffe"),
            "--python", sys.executable, "--only", PID]  # fmt: skip
    argv = private_var_cache(argv)  # it runs ldconfig when answered yes
    code, out = on_a_terminal(argv, env, answer)
    if answer == "n":
        assert code == 0
        assert "Nothing was changed." in out
        assert touched(root) == before
    else:
        assert code == 0, out
        assert f"{PID}: error → fixed" in out
        assert (root / "etc" / "conf.d" / "caffedoc-cuda.conf").exists()


def test_an_interrupted_fix_must_be_undone_before_the_next(broken_loader):
    root, env = broken_loader
    interrupted = journal.Journal.create(root / "state", "killed midway")
    args = ["--caffe", str(root / "caffe"), "--python", sys.executable, "--only", PID, "--yes"]
    before = touched(root)
    res = fix(*args, env=env)
    assert res.returncode == 1
    assert res.stderr.strip() == (
        f"caffedoc: error: an interrupted fix (journal {interrupted.id}) was never finished: "
        "run `caffedoc fix --undo` first"
    )
    assert touched(root) == before
    assert fix("--undo", env=env).returncode == 0
    assert fix(*args, env=env).returncode == 0
    assert findings(args[:4], env) == []


def test_listed_directory_missing_from_the_cache_only_needs_ldconfig(broken_loader):
    root, env = broken_loader
    entry = root / "etc" / "conf.d" / "cuda.conf"
    entry.write_text(f"{root / 'cudnn' / 'lib64'}\n")  # listed, but ldconfig never rerun
    args = ["--caffe", str(root / "caffe"), "--python", sys.executable, "--only", PID]
    assert [f["severity"] for f in findings(args[:4], env)] == ["error"]
    before = touched(root)

    done = fix(*args, "--yes", "--json", env=env)
    result = json.loads(done.stdout)
    assert result["status"] == "applied", done.stdout + done.stderr
    [action] = result["plan"]
    assert [s["kind"] for s in action["steps"]] == ["run"], action
    assert findings(args[:4], env) == []

    # Undo rebuilds the cache from the configuration, which lists the directory: a
    # stale cache is not brought back.
    assert fix("--undo", env=env).returncode == 0
    after = touched(root)
    cache = str(root / "etc" / "ld.so.cache")
    assert {k: v for k, v in after.items() if k != cache} == {
        k: v for k, v in before.items() if k != cache
    }
    assert findings(args[:4], env) == []
