"""The one place caffedoc runs commands on the machine.

Every command gets a timeout. When it runs out, everything the command started
is killed: its process group, its session, its descendants and any process still
holding its pipes (a grandchild that called `setsid` and kept stdout open), and
the pipes are then read for a bounded time only, so a hung child (a pip that
waits on the network, an import that deadlocks, a daemonising tool) never hangs
caffedoc. Output is kept up to a limit per stream, its first and last halves,
the middle counted and dropped, so a child that floods its output costs no
memory. Failure to start, a non-zero exit, a signal and a timeout all come back
as data in a `Result`: callers decide what they mean, nothing here raises.

Root runs other people's code as them: `run(..., user=...)` goes through
`setpriv`, and `code_owner` says whose an interpreter is.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from caffedoc import shellwords

DEFAULT_TIMEOUT = 20.0
OUTPUT_LIMIT = 1 << 20  # bytes kept of each stream: its first and last halves
KILL_GRACE = 2.0  # after the kill, how long the pipes may take to close
CHUNK = 1 << 16
# setpriv from the system's own directories, never a PATH a user could have set.
SYSTEM_BIN = "/usr/bin:/bin:/usr/sbin:/sbin"


@dataclass(frozen=True)
class Result:
    """What one command did."""

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    error: str | None = None
    stdout_dropped: int = 0  # bytes of stdout beyond the limit, counted and discarded
    stderr_dropped: int = 0
    user: str | None = None  # the account it ran as, when not caffedoc's own

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def signal_name(self) -> str | None:
        """SIGSEGV, SIGABRT… when the process died of a signal."""
        if self.returncode is None or self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def ending(self) -> str:
        """How the command ended, in a few words: "exited 1", "killed by SIGSEGV"…"""
        if self.error:
            return f"could not start: {self.error}"
        if self.timed_out:
            return f"did not finish within {self.seconds:.0f} s"
        if self.signal_name:
            return f"killed by {self.signal_name}"
        return f"exited {self.returncode}"

    def truncated(self) -> str | None:
        """What the output limit dropped, in words, or None when nothing was."""
        cut = (("stdout", self.stdout_dropped), ("stderr", self.stderr_dropped))
        said = [f"{_size(n)} of {name}" for name, n in cut if n]
        return " and ".join(said) + " dropped (output limit)" if said else None

    def describe(self) -> str:
        """One line saying how the command ended, for evidence."""
        who = f" (as {self.user})" if self.user else ""
        cut = self.truncated()
        line = shellwords.cmd(*self.argv)  # a person may paste it: quoted
        return f"{line}{who} {self.ending()}" + (f"; {cut}" if cut else "")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


class _Capped:
    """One stream's output: its first and last halves of `limit` kept, the middle counted."""

    def __init__(self, limit: int) -> None:
        self.keep_tail = limit // 2
        self.head_size = limit - self.keep_tail
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        take = self.head_size - len(self.head)
        if take > 0:
            self.head += data[:take]
            data = data[take:]
        self.tail += data
        if len(self.tail) > 2 * self.keep_tail + CHUNK:
            self._trim()

    def _trim(self) -> None:
        cut = max(0, len(self.tail) - self.keep_tail)
        self.dropped += cut
        del self.tail[:cut]

    def text(self) -> str:
        self._trim()
        gap = f"\n[caffedoc: {self.dropped} bytes dropped here]\n".encode() if self.dropped else b""
        raw = bytes(self.head + gap + self.tail)
        return raw.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
    user: pwd.struct_passwd | None = None,
    limit: int = OUTPUT_LIMIT,
) -> Result:
    """Run `argv` with a timeout, as `user` when given; never raises for the command's sake."""
    args = tuple(str(a) for a in argv)
    who = user.pw_name if user is not None else None
    start = time.monotonic()
    try:
        cmd, env = _as_user(args, env, user)
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        why = exc.strerror or str(exc)
        return Result(args, None, "", "", time.monotonic() - start, error=why, user=who)
    out, err = _Capped(limit), _Capped(limit)
    try:
        timed_out = not _talk(proc, out, err, input, start + timeout)
    except BaseException:  # Ctrl-C, SIGTERM turned into an exception: take the child along
        _stop(proc, out, err)
        raise
    if timed_out:
        _stop(proc, out, err)
    return Result(
        args,
        None if timed_out else proc.returncode,
        out.text(),
        err.text(),
        time.monotonic() - start,
        timed_out=timed_out,
        stdout_dropped=out.dropped,
        stderr_dropped=err.dropped,
        user=who,
    )


def _as_user(
    args: tuple[str, ...], env: Mapping[str, str] | None, user: pwd.struct_passwd | None
) -> tuple[tuple[str, ...], Mapping[str, str] | None]:
    """The command line and environment that run `args` as `user` (through setpriv)."""
    if user is None:
        return args, env
    setpriv = shutil.which("setpriv", path=SYSTEM_BIN)
    if setpriv is None:
        raise FileNotFoundError(f"setpriv not found, so it cannot run as {user.pw_name}")
    ids = (f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups")
    home = {"HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name}
    return (setpriv, *ids, "--", *args), {**(os.environ if env is None else env), **home}


def can_switch_user() -> bool:
    """Whether root can run a command as another user here (setpriv is installed)."""
    return shutil.which("setpriv", path=SYSTEM_BIN) is not None


def code_owner(path: str | os.PathLike[str]) -> pwd.struct_passwd | None:
    """The account whose interpreter `path` is, when caffedoc runs as root and that is
    someone else: the owner of the file (or link), of what it runs, or of its venv.
    Their code then runs as them, not as root. None: run it as we are."""
    if os.geteuid() != 0:
        return None
    p = Path(path)
    venv = p.parent.parent
    places = [(p, False), (p, True)]
    if (venv / "pyvenv.cfg").is_file():
        places.append((venv, False))
    for place, follow in places:
        try:
            uid = os.stat(place, follow_symlinks=follow).st_uid
        except OSError:
            continue
        if uid != 0:
            try:
                return pwd.getpwuid(uid)
            except KeyError:
                continue
    return None


def _talk(
    proc: subprocess.Popen, out: _Capped, err: _Capped, text: str | None, until: float
) -> bool:
    """Feed stdin, read both pipes and wait for the exit, all before `until`;
    False when the time ran out first."""
    if not _drain(proc, out, err, text.encode() if text is not None else None, until):
        return False
    try:
        proc.wait(timeout=max(0.0, until - time.monotonic()))
    except subprocess.TimeoutExpired:  # it closed its pipes and lives on
        return False
    return True


def _drain(
    proc: subprocess.Popen, out: _Capped, err: _Capped, data: bytes | None, until: float
) -> bool:
    """Read the child's pipes (and write `data` to its stdin) until both close or
    `until`; what goes beyond each stream's limit is read and counted, never kept,
    so the child is not blocked either. True when both closed in time."""
    with selectors.DefaultSelector() as sel:
        for pipe, sink in ((proc.stdout, out), (proc.stderr, err)):
            if pipe is not None and not pipe.closed:
                sel.register(pipe, selectors.EVENT_READ, sink)
        if proc.stdin is not None and not proc.stdin.closed:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin, selectors.EVENT_WRITE, memoryview(data or b""))
        while any(k.events & selectors.EVENT_READ for k in sel.get_map().values()):
            left = until - time.monotonic()
            if left <= 0:
                return False
            for key, _ in sel.select(left):
                if not isinstance(key.data, _Capped):
                    _feed(sel, key)
                elif chunk := os.read(key.fd, CHUNK):
                    key.data.add(chunk)
                else:
                    _close(sel, key.fileobj)
        for key in list(sel.get_map().values()):  # a stdin it never read: give it its EOF
            _close(sel, key.fileobj)
    return True


def _feed(sel: selectors.BaseSelector, key: selectors.SelectorKey) -> None:
    """Write the next piece of stdin; close it when all is written or the child left."""
    left: memoryview = key.data
    try:
        sent = os.write(key.fd, left[:CHUNK]) if left else 0
    except BlockingIOError:
        return
    except OSError:  # the child closed its stdin
        sent = len(left)
    if sent >= len(left):
        _close(sel, key.fileobj)
    else:
        sel.modify(key.fileobj, selectors.EVENT_WRITE, left[sent:])


def _close(sel: selectors.BaseSelector, pipe) -> None:
    sel.unregister(pipe)
    with contextlib.suppress(OSError):  # a stdin whose reader has gone
        pipe.close()


def _stop(proc: subprocess.Popen, out: _Capped, err: _Capped) -> None:
    """Kill everything the child started, read what its pipes still hold for a bounded
    time, then close them whoever still holds the other end, and reap the child."""
    for _ in range(2):  # twice: a process forked during the first kill
        _kill_all(proc)
        if _drain(proc, out, err, None, time.monotonic() + KILL_GRACE / 2):
            break
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    # Unkillable (stuck in the kernel): leave it rather than hang.
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE)


def _kill_all(proc: subprocess.Popen) -> None:
    """SIGKILL the child's process group, its session, its descendants and every
    process holding one of its pipes (which a `setsid` grandchild escapes to)."""
    import psutil  # only here: every check starts a child before it needs psutil

    pids = {proc.pid}
    with contextlib.suppress(psutil.Error):
        pids.update(c.pid for c in psutil.Process(proc.pid).children(recursive=True))
    running = psutil.pids()
    pids.update(_in_session(proc.pid, running))
    pids.update(_holding(proc, running))
    pids.discard(os.getpid())
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _in_session(sid: int, running: list[int]) -> set[int]:
    """The processes of the session the child leads (it was started in a new one)."""
    found = set()
    for pid in running:
        try:
            if os.getsid(pid) == sid:
                found.add(pid)
        except OSError:
            continue
    return found


def _holding(proc: subprocess.Popen, running: list[int]) -> set[int]:
    """The processes with one of the child's pipes open, found in /proc."""
    pipes = set()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None and not pipe.closed:
            pipes.add(f"pipe:[{os.fstat(pipe.fileno()).st_ino}]")
    found: set[int] = set()
    if not pipes:
        return found
    for pid in running:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in pipes:
                    found.add(pid)
                    break
            except OSError:
                continue
    return found


def read_text(path: str | os.PathLike[str], limit: int = 1 << 20) -> str | None:
    """A small file's text, or None when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def which_all(name: str, path: str | None = None) -> list[Path]:
    """Every executable called `name` on PATH, in PATH order, duplicates removed."""
    found: list[Path] = []
    for d in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        candidate = Path(d or ".") / name
        try:
            usable = candidate.is_file() and os.access(candidate, os.X_OK)
        except OSError:  # a PATH entry this user may not read
            usable = False
        if usable and candidate not in found:
            found.append(candidate)
    return found
