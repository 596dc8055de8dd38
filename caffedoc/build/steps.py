"""Build steps: each logs to its own file, records when it is done, and fails readably.

A re-run skips the steps recorded as done (the work folder is keyed by every input, so
"done" cannot mean "done with other inputs"). A failed step prints its log's tail and
what the knowledge base recognizes in it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from caffedoc import host
from caffedoc.errors import CaffedocError

TAIL_LINES = 30
_PERCENT = re.compile(r"^\[\s*(\d+)%\]\s*(.*)$")


class StepFailed(CaffedocError):
    """A build step failed; its log tail and diagnosis were already printed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=1)


class Log:
    """One step's log file; commands run through `host.run` with output appended here."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def note(self, text: str) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(text.rstrip("\n") + "\n")

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        timeout: float,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> host.Result:
        """Run with stdout and stderr going straight to the log (so progress can follow it)."""
        args = [str(a) for a in argv]
        self.note(f"$ {' '.join(args)}")
        wrapped = ["sh", "-c", 'log="$1"; shift; exec "$@" >>"$log" 2>&1', "sh", str(self.path)]
        res = host.run([*wrapped, *args], timeout=timeout, cwd=cwd, env=env)
        self.note(f"[exit: {res.describe().replace('sh -c', '').strip()}]")
        return res

    def check(self, res: host.Result, what: str) -> None:
        if not res.ok:
            raise StepError(f"{what}: {res.ending()}")

    def tail(self, lines: int = TAIL_LINES) -> str:
        text = host.read_text(self.path, limit=1 << 24) or ""
        return "\n".join(text.splitlines()[-lines:])


class StepError(Exception):
    """Raised inside a step; the runner turns it into a printed failure."""


class Runner:
    """Runs named steps in order, with logs under `logs/` and done-markers in `state.json`."""

    def __init__(self, workdir: Path, out: TextIO = sys.stderr) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.state_file = workdir / "state.json"
        self.out = out
        self.count = 0
        self.resumed: list[str] = []

    def _state(self) -> dict[str, float]:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def done(self, name: str) -> bool:
        return name in self._state()

    def forget(self, name: str) -> None:
        state = self._state()
        state.pop(name, None)
        self._write_state(state)

    def _write_state(self, state: dict[str, float]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self.state_file)

    def step(
        self,
        name: str,
        fn: Callable[[Log], str | None],
        *,
        once: bool = True,
        progress: bool = False,
    ) -> None:
        """Run `fn(log)`; `once` steps are skipped when a previous run finished them."""
        self.count += 1
        log = Log(self.logs / f"{self.count:02d}-{name}.log")
        if once and self.done(name):
            self.resumed.append(name)
            self._say(f"  {name:<10} done earlier (resumed)")
            return
        log.path.write_text("")
        start = time.monotonic()
        watcher = _Progress(log.path, name, self.out) if progress else None
        if watcher is None and self.out.isatty():
            self._say(f"  {name:<10} ...", end="")
        try:
            detail = fn(log)
        except StepError as exc:
            if watcher:
                watcher.stop()
            self._say(f"{self._cr}  {name:<10} FAILED ({exc})")
            self._report_failure(name, log)
            raise StepFailed(f"the {name} step failed: {exc} (log: {log.path})") from None
        except BaseException:
            if watcher:
                watcher.stop()
            self._say("")
            raise
        if watcher:
            watcher.stop()
        took = time.monotonic() - start
        extra = f"; {detail}" if detail else ""
        self._say(f"{self._cr}  {name:<10} ok ({took:.1f} s{extra})")
        if once:
            state = self._state()
            state[name] = time.time()
            self._write_state(state)

    @property
    def _cr(self) -> str:
        return "\r" if self.out.isatty() else ""

    def _say(self, text: str, end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()

    def _report_failure(self, name: str, log: Log) -> None:
        tail = log.tail()
        self._say(f"--- last lines of {log.path} ---\n{tail}\n---")
        from caffedoc.explain import diagnose  # the knowledge base's reading of the log

        for finding in diagnose(host.read_text(log.path, limit=1 << 24) or "")[:3]:
            self._say(f"  likely cause: {finding.title} [{finding.id}]")
            self._say(f"  fix: {finding.fix}")


class _Progress:
    """Follows a compile log and shows CMake's [ NN%] lines while the step runs."""

    def __init__(self, path: Path, name: str, out: TextIO) -> None:
        self.path, self.name, self.out = path, name, out
        self.tty = out.isatty()
        self.shown = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        offset = 0
        while not self._stop.wait(0.5):
            try:
                with open(self.path, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
            except OSError:
                continue
            cut = chunk.rfind(b"\n") + 1
            offset += cut
            for line in chunk[:cut].decode("utf-8", "replace").splitlines():
                m = _PERCENT.match(line)
                if m:
                    self._show(int(m.group(1)), m.group(2))

    def _show(self, pct: int, what: str) -> None:
        if self.tty:
            self.out.write(f"\r  {self.name:<10} [{pct:3d}%] {what[:60]:<60}")
            self.out.flush()
        elif pct // 10 > self.shown // 10:
            self.out.write(f"  {self.name:<10} [{pct:3d}%] {what[:70]}\n")
            self.out.flush()
        self.shown = max(self.shown, pct)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
