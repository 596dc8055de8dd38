"""`caffedoc smoke` under sudo on a user's venv: the user's code runs as that user, in a
scratch folder of theirs, and the step still trains the real Caffe built by the recipe."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from caffedoc.layout import PTH_NAME, pin
from tests.conftest import caffedoc
from tests.fixtures.caffe_build import RUNTIME, clean_env
from tests.fixtures.users import user_tmp
from tests.test_fix_safety import chown_tree

# A line in a .pth runs at every start of that interpreter: it says who ran it.
RECORDER = "import os; fh = open({uids!r}, 'a'); fh.write('%d\\n' % os.geteuid()); fh.close()\n"


@pytest.mark.caffe
def test_smoke_runs_a_users_venv_as_that_user(built_caffe, hostile_user, tmp_path):
    home = user_tmp(tmp_path, hostile_user)
    prefix = home / "caffe"
    shutil.copytree(built_caffe.prefix, prefix, symlinks=True)  # relocatable: $ORIGIN
    venv = home / "venv"
    python = venv / "bin" / "python"
    # Debian's own Python: one the user may run (pyenv's lives in root's home).
    subprocess.run(["/usr/bin/python3", "-m", "venv", venv], check=True, timeout=300)
    deps = [d for d in RUNTIME if d != "opencv-python-headless"]
    subprocess.run([python, "-m", "pip", "install", "-q", *deps], check=True, timeout=1800)
    site = next((venv / "lib").glob("python3*/site-packages"))
    pin(site / PTH_NAME, prefix)
    uids = home / "uids"
    (site / "whoami.pth").write_text(RECORDER.format(uids=str(uids)))
    chown_tree(hostile_user, home)

    res = caffedoc("smoke", "--python", str(python), "--json", env=clean_env())
    out = json.loads(res.stdout)
    assert res.returncode == 0 and out["passed"], res.stdout + res.stderr
    assert out["user"] == hostile_user.name
    assert out["loss_end"] < out["loss_start"]
    ran_as = set(uids.read_text().split())
    assert ran_as == {str(hostile_user.uid)}, ran_as  # never as root

    text = caffedoc("smoke", "--python", str(python), env=clean_env())
    assert text.returncode == 0, text.stdout + text.stderr
    assert f"(run as {hostile_user.name})" in text.stdout
