"""Every command `check` prints for a person to paste, pasted into a real `sh`.

The paths are hostile for real: one directory nested under names that run code,
end a command, open a quote, break the line, hold spaces or close a code span.
`check` is made to print its pin command (a --caffe tree the interpreter cannot
see) and its ld.so.conf.d advice (a CUDA library directory the loader does not
search); each backticked command, taken from the text and from --json, must parse,
run nothing it should not (no PWNED file anywhere), and hand the hostile path to
the command it is for as one intact word.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import caffedoc
from tests.fixtures.envs import check_env, pyenv_python, run_check
from tests.fixtures.native import LinkerConfig, install_copy

HOSTILE = ("evil$(touch PWNED)", ";touch PWNED2;", "it's", "new\nline", "two  spaces", "back`tick")
STUB = """#!/bin/sh
# Logs its argv (NUL-separated, one record a call) and, for tee, what it reads.
{ printf '%s\\0' "$@"; printf '\\1'; } >> "$STUB_LOG"
if [ "$1" = tee ]; then /bin/cat >> "$STUB_LOG.stdin"; fi
"""


def hostile_dir(base: Path) -> Path:
    d = base.joinpath(*HOSTILE)
    d.mkdir(parents=True)
    return d


def code_spans(text: str) -> list[str]:
    """Code spans as CommonMark reads them: a backtick run, then the same-length run."""
    spans, i = [], 0
    while (m := re.compile(r"`+").search(text, i)) is not None:
        fence = m.group(0)
        close = re.compile(rf"(?<!`){fence}(?!`)").search(text, m.end())
        if close is None:
            i = m.end()
            continue
        code = text[m.end() : close.start()]
        if len(code) > 2 and code[0] == code[-1] == " " and code.strip(" "):
            code = code[1:-1]
        spans.append(code)
        i = close.end()
    return spans


def commands(report: dict, text: str, word: str) -> list[str]:
    """The fixes' code spans that hold `word`, from --json; the text output (whose
    evidence lines quote hostile paths as they are) must print each whole and unwrapped."""
    spans = [s for f in report["findings"] for s in code_spans(f["fix"]) if word in s]
    for span in spans:
        assert span in text, (span, text)
    return spans


def pwned(*roots: Path) -> list[Path]:
    return [p for r in roots for p in r.rglob("PWNED*")]


def paste(command: str, scratch: Path, stubs: Path) -> subprocess.CompletedProcess:
    """`command` as a person pastes it: parsed first, then run by sh with only stubs."""
    parsed = subprocess.run(["sh", "-n", "-c", command], capture_output=True, text=True)
    assert parsed.returncode == 0, (command, parsed.stderr)
    env = {"PATH": str(stubs), "STUB_LOG": str(scratch / "calls"), "HOME": str(scratch)}
    return subprocess.run(
        ["/bin/sh", "-c", command], cwd=scratch, env=env, capture_output=True, text=True
    )


@pytest.fixture
def stubs(tmp_path):
    d = tmp_path / "stubs"
    d.mkdir()
    for name in ("sudo", "tee", "ldconfig", "mv"):
        (d / name).write_text(STUB)
        (d / name).chmod(0o755)
    return d


def pasted_harmlessly(command: str, tmp_path: Path, stubs: Path) -> Path:
    """Paste `command` into sh in a scratch folder (returned): it succeeds and runs nothing
    a hostile name smuggled in."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    res = paste(command, scratch, stubs)
    assert res.returncode == 0, res.stderr
    assert not pwned(tmp_path)
    return scratch


def test_pin_command_pins_the_hostile_tree_and_runs_nothing(
    build_pycaffe, gencode, make_venv, tmp_path, stubs
):
    where = hostile_dir(tmp_path / "trees")
    tree = build_pycaffe(where / "caffe", pyenv_python("3.9"), gencode("builder"))
    venv = make_venv("3.9", "protobuf==3.20.3", fresh=True)
    env = check_env(tmp_path / "home", venv.bin)
    args = ("--python", str(venv.python), "--caffe", str(tree.root))
    checked = run_check(venv.python, env, tmp_path, "--caffe", str(tree.root))
    text = caffedoc("check", *args, env=env, cwd=tmp_path)
    assert "Traceback" not in text.stderr, text.stderr

    from_json = commands(checked.report, text.stdout, "caffedoc-caffe.pth")
    assert len(from_json) == 1, checked.report["findings"]
    assert not pwned(tmp_path)

    scratch = pasted_harmlessly(from_json[0], tmp_path, stubs)
    # What was pasted did what it says: the interpreter now imports the hostile tree.
    where_from = subprocess.run(
        [venv.python, "-c", "import caffe, sys; sys.stdout.write(caffe.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=scratch,
    )
    assert where_from.stdout == str(tree.package / "__init__.py"), where_from.stderr


def test_ld_so_conf_advice_hands_each_hostile_path_over_whole(
    cuda_install, tmp_path, stubs, target_python
):
    where = hostile_dir(tmp_path / "h")
    root = install_copy(cuda_install("10.0.130", "7.3.1"), where / "cuda-10.0")
    etc = where / "etc"
    (etc / "ld.so.conf.d").mkdir(parents=True)
    (etc / "ld.so.conf").write_text("include ld.so.conf.d/*.conf\n")
    linker = LinkerConfig(etc / "ld.so.conf", etc / "ld.so.cache")
    linker.rebuild()
    env = linker.env(check_env(tmp_path / "home"))
    env["CUDA_HOME"] = str(root)
    res = caffedoc("check", "--json", "--python", str(target_python.python), env=env, cwd=tmp_path)
    assert res.returncode in (0, 1), res.stderr
    report = json.loads(res.stdout)
    text = caffedoc("check", "--python", str(target_python.python), env=env, cwd=tmp_path)

    from_json = commands(report, text.stdout, "ldconfig")
    assert from_json, report["findings"]
    assert not pwned(tmp_path)

    scratch = pasted_harmlessly(from_json[0], tmp_path, stubs)
    records = (scratch / "calls").read_bytes().split(b"\1")[:-1]
    calls = [[os.fsdecode(a) for a in r.split(b"\0")[:-1]] for r in records]
    assert calls == [
        ["tee", str(linker.confd / "caffedoc-cuda.conf")],
        ["ldconfig", "-f", str(linker.conf), "-C", str(linker.cache)],
    ]
    assert (scratch / "calls.stdin").read_text() == f"{root / 'lib64'}\n"
