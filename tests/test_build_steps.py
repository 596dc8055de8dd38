"""The step runner: logs, done-markers, resume, and a readable failure with its diagnosis."""

from __future__ import annotations

import io
import json

import pytest

from caffedoc.build.steps import Log, Runner, StepFailed


def test_steps_log_record_and_resume(tmp_path):
    out = io.StringIO()
    runner = Runner(tmp_path, out)
    runner.step("fetch", lambda log: log.check(log.run(["echo", "got it"], timeout=10), "echo"))
    runner.step("compile", lambda log: "rebuilt", once=False)
    assert "got it" in (tmp_path / "logs" / "01-fetch.log").read_text()
    assert set(json.loads((tmp_path / "state.json").read_text())) == {"fetch"}

    again = Runner(tmp_path, out)
    ran = []
    again.step("fetch", lambda log: ran.append("fetch"))
    again.step("compile", lambda log: ran.append("compile"), once=False)
    assert ran == ["compile"] and again.resumed == ["fetch"]
    assert "fetch      done earlier (resumed)" in out.getvalue()


def test_a_failed_step_prints_the_tail_and_the_diagnosis(tmp_path):
    out = io.StringIO()
    runner = Runner(tmp_path, out)
    script = (
        "for i in $(seq 1 60); do echo noise line $i; done; "
        "echo 'CMake Error at cmake/Dependencies.cmake:150 (find_package):'; "
        "echo '  Could NOT find Boost (missing: python3)'; exit 1"
    )

    def configure(log: Log) -> None:
        log.check(log.run(["sh", "-c", script], timeout=30), "cmake")

    with pytest.raises(StepFailed) as err:
        runner.step("configure", configure)
    assert err.value.code == 1 and "01-configure.log" in str(err.value)
    text = out.getvalue()
    assert "configure  FAILED (cmake: exited 1)" in text
    assert "Could NOT find Boost (missing: python3)" in text and "noise line 60" in text
    assert "noise line 5\n" not in text  # only the tail
    assert "[boost-python]" in text and "fix:" in text
    assert not (tmp_path / "state.json").exists()  # not marked done: a re-run retries it


def test_progress_follows_the_compile_log(tmp_path):
    out = io.StringIO()
    runner = Runner(tmp_path, out)
    lines = "; ".join(f"echo '[ {p}%] Building CXX object x{p}.o'; sleep 0.2" for p in (5, 15, 35))
    runner.step("compile", lambda log: log.check(log.run(["sh", "-c", lines], timeout=30), "make"),
                once=False, progress=True)  # fmt: skip
    text = out.getvalue()
    assert "[  5%] Building CXX object x5.o" in text and "[ 35%]" in text
