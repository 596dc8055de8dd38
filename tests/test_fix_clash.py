"""protobuf-descriptor-clash fixed for real: the real Caffe (shared libprotobuf) beside a
compiled `cv2` that registers caffe.proto too; the fix rebuilds Caffe with a private
static libprotobuf through `caffedoc build --static-protobuf`, and undo brings the
previous state back. Needs the real Caffe build (marked `caffe`: slow the first time)."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from caffedoc.build.paths import cache_root
from caffedoc.layout import PTH_NAME, pin
from tests.fixtures.caffe_build import overlay_venv
from tests.fixtures.native import Interpreter, module_dir, proto_module
from tests.test_fix_core import fingerprint, fix_cli

pytestmark = pytest.mark.caffe
CLASH = "protobuf-descriptor-clash"


def caffe_then_cv2(python: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, "-c", "import caffe; import cv2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_clash_fixed_by_a_static_protobuf_rebuild_and_undone(built_caffe, tmp_path):
    here = Interpreter(
        Path(sys.executable),
        Path(sysconfig.get_paths()["include"]),
        sysconfig.get_config_var("EXT_SUFFIX"),
    )
    mods = module_dir(tmp_path / "mods", proto_module(here, "cv2"))
    python = overlay_venv(built_caffe.python, tmp_path / "venv")
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    pin(site / PTH_NAME, built_caffe.prefix)  # as `caffedoc build` pins: the file it rewrites
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **built_caffe.env,
        "PYTHONPATH": str(mods),
        "HOME": str(home),
        "CAFFEDOC_CACHE_DIR": str(cache_root()),
        "CAFFEDOC_STATE_DIR": str(tmp_path / "state"),
    }
    broken = caffe_then_cv2(python, env)
    assert broken.returncode == -6
    assert "File already exists in database: caffe.proto" in broken.stderr
    before = fingerprint(site, home)

    shown = fix_cli("--python", str(python), "--only", CLASH, "--json", env=env)
    plan = json.loads(shown.stdout)
    assert plan["status"] == "planned", shown.stdout + shown.stderr
    [step] = plan["plan"][0]["steps"]
    assert step["argv"][-4:] == ["build", "--static-protobuf", "--python", str(python)]
    assert str(home) in step["describe"]  # the prefix it installs into, preserved for undo
    assert fingerprint(site, home) == before

    done = fix_cli("--python", str(python), "--only", CLASH, "--yes", "--json", env=env)
    result = json.loads(done.stdout)
    assert result["status"] == "applied", done.stdout + done.stderr
    assert result["before_after"] == [{"id": CLASH, "before": "error", "after": "fixed"}]
    assert caffe_then_cv2(python, env).returncode == 0

    assert fix_cli("--undo", env=env).returncode == 0
    assert fingerprint(site, home) == before
    assert caffe_then_cv2(python, env).returncode == -6
