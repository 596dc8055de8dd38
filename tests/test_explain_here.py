"""`caffedoc explain LOG --here` and `caffedoc fix --from-log LOG` on a real broken loader.

The machine is test_fix_cuda's: a compiled libcudnn.so.7 in a directory a private
linker configuration lacks, and a Caffe library that needs it. The log is a real
report's ("libcudnn.so.7: cannot open shared object file"). Alone, explain can only
name the kind of problem; with --here it names this machine's directory and the exact
ld.so.conf.d line, and fix --from-log applies exactly that (and undo puts it back).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import caffedoc
from tests.test_fix_cuda import broken_loader, fix, touched  # noqa: F401  (fixture)

LOGS = Path(__file__).parent / "logs"
CUDNN_LOG = LOGS / "cuda-library-path" / "darknet-libcudnn7.log"
OTHER_LOG = LOGS / "opencv-build" / "nvcaffe-cv-load-image.log"
PID = "cuda-library-path"


@pytest.fixture
def loader(request):
    """test_fix_cuda's broken loader: (its root, the environment that points at it)."""
    return request.getfixturevalue("broken_loader")


def machine(root: Path) -> list[str]:
    return ["--caffe", str(root / "caffe"), "--python", sys.executable]


def test_here_turns_the_log_into_this_machines_finding_and_exact_fix(loader):
    root, env = loader
    alone = json.loads(caffedoc("explain", "--json", str(CUDNN_LOG), env=env).stdout)
    assert alone["matches"][0]["id"] == PID
    assert str(root) not in json.dumps(alone)  # the log alone cannot know this machine

    res = caffedoc("explain", "--json", "--here", *machine(root), str(CUDNN_LOG), env=env)
    assert res.returncode == 0, res.stderr
    here = json.loads(res.stdout)["here"]
    assert [f["id"] for f in here] == [PID]
    lib64 = str(root / "cudnn" / "lib64")
    assert any(lib64 in e for e in here[0]["evidence"])
    assert str(root / "etc" / "conf.d") in here[0]["fix"] and lib64 in here[0]["fix"]

    text = caffedoc("explain", "--here", *machine(root), str(CUDNN_LOG), env=env)
    assert "On this machine (`caffedoc check` finds it too):" in text.stdout
    assert lib64 in text.stdout


def test_here_says_so_when_the_machine_shows_none_of_the_logs_problems(loader):
    root, env = loader
    res = caffedoc("explain", "--json", "--here", *machine(root), str(OTHER_LOG), env=env)
    data = json.loads(res.stdout)
    assert data["matches"][0]["id"] == "opencv-build" and data["here"] == []
    text = caffedoc("explain", "--here", *machine(root), str(OTHER_LOG), env=env)
    assert "finds none of these problems here" in text.stdout


def test_fix_from_log_applies_the_fix_both_show_and_undo_restores(loader):
    root, env = loader
    before = touched(root)
    done = fix("--from-log", str(CUDNN_LOG), *machine(root), "--yes", "--json", env=env)
    result = json.loads(done.stdout)
    assert result["status"] == "applied", done.stdout + done.stderr
    assert result["before_after"] == [{"id": PID, "before": "error", "after": "fixed"}]
    entry = root / "etc" / "conf.d" / "caffedoc-cuda.conf"
    assert entry.read_text() == f"{root / 'cudnn' / 'lib64'}\n"
    after = caffedoc("explain", "--json", "--here", *machine(root), str(CUDNN_LOG), env=env)
    assert json.loads(after.stdout)["here"] == []

    undone = fix("--undo", env=env)
    assert undone.returncode == 0, undone.stderr
    assert touched(root) == before


def test_fix_from_log_refuses_what_the_machine_does_not_show(loader):
    root, env = loader
    before = touched(root)
    res = fix("--from-log", str(OTHER_LOG), *machine(root), "--yes", env=env)
    assert res.returncode == 2
    assert res.stderr.strip() == (
        f"caffedoc: error: {OTHER_LOG}: none of the problems it shows is found on this machine"
    )
    assert touched(root) == before
    res = fix("--from-log", str(root / "nope.log"), *machine(root), env=env)
    assert (res.returncode, res.stderr.strip()) == (
        2,
        f"caffedoc: error: {root}/nope.log: no such file",
    )
    res = fix("--from-log", str(CUDNN_LOG), "--only", PID, *machine(root), env=env)
    assert res.returncode == 2 and "cannot be combined" in res.stderr
    assert touched(root) == before
