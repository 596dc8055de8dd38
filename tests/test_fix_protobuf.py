"""protobuf-version-drift fixed for real on the check's fixtures: pycaffe compiled for a
pyenv Python, a caffe_pb2.py from a known protoc, venvs with chosen protobuf releases."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.fixtures.envs import check_env, pyenv_python, run_check
from tests.test_fix_core import fingerprint, fix_cli

DRIFT = "protobuf-version-drift"


def drift(venv, env, tmp_path) -> list[str]:
    res = run_check(venv.python, env, tmp_path)
    return [f["severity"] for f in res.findings(DRIFT)]


def imports(venv, env) -> subprocess.CompletedProcess:
    """`import caffe` and a use of its generated code, in a fresh process."""
    return subprocess.run(
        [venv.python, "-c", "import caffe; print(caffe.TRAIN, caffe.TEST)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def protobuf_version(venv, env) -> str:
    code = "import google.protobuf as p; print(p.__version__)"
    return subprocess.run(
        [venv.python, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def source_tree(build_pycaffe, gencode, caffe_proto, tmp_path):
    """`make(style)`: a pycaffe install inside a Caffe source tree (src/caffe/proto/caffe.proto
    beside python/caffe, as upstream lays it out), its own copy for this test to change."""

    def make(style: str):
        tree = build_pycaffe(tmp_path / "caffe", pyenv_python("3.9"), gencode(style))
        proto = tree.root / "src" / "caffe" / "proto" / "caffe.proto"
        proto.parent.mkdir(parents=True)
        shutil.copy2(caffe_proto, proto)
        return tree

    return make


def test_old_generated_code_is_regenerated_by_the_matching_protoc(make_venv, source_tree, tmp_path):
    venv = make_venv("3.9", "protobuf==4.25.8")
    tree = source_tree("descriptors")
    env = check_env(
        tmp_path / "home",
        venv.bin,
        PYTHONPATH=str(tree.python_dir),
        CAFFEDOC_STATE_DIR=str(tmp_path / "state"),
    )
    assert "Descriptors cannot be created directly" in imports(venv, env).stderr
    assert drift(venv, env, tmp_path) == ["error"]
    before = fingerprint(tree.pb2)
    site_before = fingerprint(venv.site)

    done = fix_cli("--python", str(venv.python), "--only", DRIFT, "--yes", "--json", env=env)
    result = json.loads(done.stdout)
    assert result["status"] == "applied", done.stdout + done.stderr
    [step] = result["plan"][0]["steps"]
    assert step["argv"][0] == shutil.which("protoc", path=env["PATH"])
    assert f"--python_out={tree.pb2.parent}" in step["argv"]
    assert result["before_after"] == [{"id": DRIFT, "before": "error", "after": "fixed"}]
    assert "_builder" in tree.pb2.read_text()
    assert imports(venv, env).stdout.split() == ["0", "1"]
    assert fingerprint(venv.site) == site_before  # the runtime was left alone

    assert fix_cli("--undo", env=env).returncode == 0
    assert fingerprint(tree.pb2) == before
    assert drift(venv, env, tmp_path) == ["error"]


def test_too_old_runtime_is_upgraded_with_the_interpreters_own_pip(
    make_venv, source_tree, tmp_path
):
    venv = make_venv("3.9", "protobuf==3.19.6", fresh=True)
    decoy = make_venv("3.9")  # first on PATH: its `pip` feeds another interpreter
    tree = source_tree("builder")
    env = check_env(
        tmp_path / "home",
        decoy.bin,
        PYTHONPATH=str(tree.python_dir),
        CAFFEDOC_STATE_DIR=str(tmp_path / "state"),
    )
    assert "cannot import name 'builder'" in imports(venv, env).stderr
    assert drift(venv, env, tmp_path) == ["error"]
    before, decoy_before = fingerprint(venv.site), fingerprint(decoy.site)

    shown = fix_cli("--python", str(venv.python), "--only", DRIFT, env=env)
    assert f"{venv.python} -m pip install --disable-pip-version-check --no-input" in shown.stdout
    assert "'protobuf>=3.20.3,<8'" in shown.stdout
    assert "restore protobuf 3.19.6 file by file" in shown.stdout
    assert fingerprint(venv.site) == before

    done = fix_cli("--python", str(venv.python), "--only", DRIFT, "--yes", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{DRIFT}: error → fixed" in done.stdout
    assert Version(protobuf_version(venv, env)) in SpecifierSet(">=3.20.3,<8")
    assert imports(venv, env).stdout.split() == ["0", "1"]
    assert fingerprint(decoy.site) == decoy_before

    undone = fix_cli("--undo", env=env)
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert fingerprint(venv.site) == before
    assert protobuf_version(venv, env) == "3.19.6"
    assert drift(venv, env, tmp_path) == ["error"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand a tree to another user")
def test_root_regenerates_another_users_file_as_that_user(
    make_venv, build_pycaffe, gencode, caffe_proto, tmp_path
):
    venv = make_venv("3.9", "protobuf==4.25.8")
    where = Path(tempfile.mkdtemp(prefix="caffedoc-fix-owner-"))
    try:
        where.chmod(0o755)
        tree = build_pycaffe(where / "caffe", pyenv_python("3.9"), gencode("descriptors"))
        proto = tree.root / "src" / "caffe" / "proto" / "caffe.proto"
        proto.parent.mkdir(parents=True)
        shutil.copy2(caffe_proto, proto)
        nobody = pwd.getpwnam("nobody")
        for p in [tree.root, *tree.root.rglob("*")]:
            os.lchown(p, nobody.pw_uid, nobody.pw_gid)
        env = check_env(
            tmp_path / "home",
            venv.bin,
            PYTHONPATH=str(tree.python_dir),
            CAFFEDOC_STATE_DIR=str(tmp_path / "state"),
        )
        before = fingerprint(tree.pb2)

        done = fix_cli("--python", str(venv.python), "--only", DRIFT, "--yes", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "run as nobody: " in done.stdout
        assert tree.pb2.stat().st_uid == nobody.pw_uid
        assert "_builder" in tree.pb2.read_text()
        assert imports(venv, env).stdout.split() == ["0", "1"]

        assert fix_cli("--undo", env=env).returncode == 0
        assert fingerprint(tree.pb2) == before
    finally:
        shutil.rmtree(where)
