"""The one place caffedoc runs commands on the machine.

Every command gets a timeout and its whole process group is killed when it
runs out, so a hung child (a pip that waits on the network, an import that
deadlocks) never hangs caffedoc. Failure to start, a non-zero exit, a signal
and a timeout all come back as data in a `Result`: callers decide what they
mean, nothing here raises.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT = 20.0


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

    def describe(self) -> str:
        """One line saying how the command ended, for evidence."""
        return f"`{' '.join(self.argv)}` {self.ending()}"


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
) -> Result:
    """Run `argv` with a timeout; never raises for the command's sake."""
    args = tuple(str(a) for a in argv)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        return Result(args, None, "", "", time.monotonic() - start, error=exc.strerror or str(exc))
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        return Result(args, None, out, err, time.monotonic() - start, timed_out=True)
    except BaseException:  # Ctrl-C, SIGTERM turned into an exception: take the child along
        _kill_group(proc)
        proc.wait()
        raise
    return Result(args, proc.returncode, out, err, time.monotonic() - start)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


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
