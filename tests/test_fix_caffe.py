"""shadowed-caffe and an unpinned --caffe build, fixed for real in a venv the test
builds: a stale caffe package in its site-packages (or a stale .pth entry, or
PYTHONPATH) and the intended one in a --caffe tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from caffedoc.layout import PTH_NAME, pin, pin_line
from tests.conftest import caffedoc
from tests.test_fix_core import fingerprint, fix_cli


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def which_caffe(python: Path, env: dict[str, str]) -> str:
    """What `import caffe` loads in a fresh process: the WHICH marker of that package."""
    res = subprocess.run(
        [python, "-c", "import caffe; print(caffe.WHICH)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return res.stdout.strip() or res.stderr.strip().splitlines()[-1]


def problems(python: Path, tree: Path, env: dict[str, str], pid: str) -> list[str]:
    res = caffedoc("check", "--json", "--python", str(python), "--caffe", str(tree), env=env)
    found = json.loads(res.stdout)["findings"]
    return [f["severity"] for f in found if f["id"] == pid and f["severity"] != "info"]


def package(parent: Path, which: str) -> Path:
    pkg = parent / "caffe"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"WHICH = {which!r}\n")
    return pkg


@pytest.fixture
def setup(tmp_path):
    """A venv without pip (nothing here needs it), an intended build in a --caffe tree."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    site = Path(
        subprocess.run(
            [_python(venv), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    tree = tmp_path / "tree"
    package(tree / "python", "intended")
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env["CAFFEDOC_STATE_DIR"] = str(tmp_path / "state")
    return _python(venv), site, tree, env


def test_stale_site_package_moved_aside_build_pinned_and_undone(setup):
    python, site, tree, env = setup
    stale = package(site, "stale")
    (stale / "_caffe.so").write_bytes(os.urandom(512))
    (stale / "_caffe.so").chmod(0o755)
    args = ["--python", str(python), "--caffe", str(tree), "--only", "shadowed-caffe"]
    assert which_caffe(python, env) == "stale"
    assert problems(python, tree, env, "shadowed-caffe") == ["error"]
    before = fingerprint(site)

    shown = fix_cli(*args, env=env)
    assert shown.returncode == 0
    assert f"move {stale} aside to {stale}.caffedoc-moved-" in shown.stdout
    pth = site / "caffedoc-caffe.pth"
    line = f"import sys; '{tree / 'python'}' in sys.path or sys.path.insert(0, '{tree / 'python'}')"
    assert f"create {pth} (mode 0644) containing: {line}" in shown.stdout
    assert fingerprint(site) == before

    done = fix_cli(*args, "--yes", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "shadowed-caffe: error → fixed" in done.stdout
    assert which_caffe(python, env) == "intended"
    assert pth.read_text() == pin_line(tree / "python")  # what `caffedoc build` writes
    assert problems(python, tree, env, "shadowed-caffe") == []
    (moved,) = site.glob("caffe.caffedoc-moved-*")
    assert (moved / "__init__.py").read_text() == "WHICH = 'stale'\n"

    undone = fix_cli("--undo", env=env)
    assert undone.returncode == 0, undone.stderr
    assert fingerprint(site) == before
    assert which_caffe(python, env) == "stale"


def test_stale_pth_entry_removed_from_a_pth_that_adds_more(setup, tmp_path):
    python, site, tree, env = setup
    package(tmp_path / "old-build" / "python", "stale")
    (tmp_path / "other").mkdir()
    pth = site / "zz-old.pth"
    pth.write_text(
        f"# added by an old make pycaffe\n{tmp_path / 'old-build' / 'python'}\n../../../../other\n"
    )
    pth.chmod(0o640)
    assert which_caffe(python, env) == "stale"
    before = fingerprint(site)

    done = fix_cli("--python", str(python), "--caffe", str(tree), "--yes", "--json", env=env)
    result = json.loads(done.stdout)
    assert result["status"] == "applied", done.stdout + done.stderr
    (action,) = [a for a in result["plan"] if a["id"] == "shadowed-caffe"]
    assert [s["kind"] for s in action["steps"]] == ["write", "write"]
    assert pth.read_text() == "# added by an old make pycaffe\n../../../../other\n"
    assert pth.stat().st_mode & 0o777 == 0o640
    assert which_caffe(python, env) == "intended"

    assert fix_cli("--undo", env=env).returncode == 0
    assert fingerprint(site) == before
    assert which_caffe(python, env) == "stale"


def test_stale_copy_on_pythonpath_is_left_to_the_user(setup, tmp_path):
    python, site, tree, env = setup
    package(tmp_path / "mine", "stale")
    env = {**env, "PYTHONPATH": str(tmp_path / "mine")}
    before = fingerprint(site)
    res = fix_cli("--python", str(python), "--caffe", str(tree), "--yes", env=env)
    assert res.returncode == 0
    assert f"manual ({tmp_path / 'mine' / 'caffe'} comes from PYTHONPATH" in res.stdout
    assert fingerprint(site) == before
    assert not (tmp_path / "state" / "journal").exists()


def test_unimportable_caffe_tree_is_pinned(setup):
    python, site, tree, env = setup
    assert which_caffe(python, env) == "ModuleNotFoundError: No module named 'caffe'"
    before = fingerprint(site)
    done = fix_cli(
        "--python", str(python), "--caffe", str(tree), "--only", "caffe-missing", "--yes", env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "caffe-missing: error → fixed" in done.stdout
    assert (site / PTH_NAME).read_text() == pin_line(tree / "python")
    assert which_caffe(python, env) == "intended"
    assert fix_cli("--undo", env=env).returncode == 0
    assert fingerprint(site) == before


def test_a_builds_pin_to_another_build_is_replaced_not_doubled(setup, tmp_path):
    python, site, tree, env = setup
    old = tmp_path / "old-prefix"
    package(old / "python", "stale")
    pin(site / PTH_NAME, old)  # what `caffedoc build` left for an earlier build
    assert which_caffe(python, env) == "stale"
    assert problems(python, tree, env, "shadowed-caffe") == ["error"]
    before = fingerprint(site)

    done = fix_cli("--python", str(python), "--caffe", str(tree), "--yes", "--json", env=env)
    result = json.loads(done.stdout)
    assert result["status"] == "applied", done.stdout + done.stderr
    (action,) = [a for a in result["plan"] if a["id"] == "shadowed-caffe"]
    assert [(s["kind"], s["path"]) for s in action["steps"]] == [("write", str(site / PTH_NAME))]
    assert sorted(p.name for p in site.iterdir()) == [PTH_NAME]
    assert (site / PTH_NAME).read_text() == pin_line(tree / "python")
    assert which_caffe(python, env) == "intended"

    assert fix_cli("--undo", env=env).returncode == 0
    assert fingerprint(site) == before
    assert which_caffe(python, env) == "stale"


@pytest.mark.caffe
def test_the_real_built_caffe_counts_as_pinned(built_caffe, tmp_path):
    """What `caffedoc build` pins is what the check reads as the intended, winning build,
    so the fix has nothing to do for it."""
    env = {**built_caffe.env, "CAFFEDOC_STATE_DIR": str(tmp_path / "state")}
    args = ["--python", str(built_caffe.python), "--caffe", str(built_caffe.prefix)]
    res = caffedoc("check", "--json", *args, env=env)
    report = json.loads(res.stdout)
    ids = {f["id"] for f in report["findings"] if f["severity"] != "info"}
    assert not {"shadowed-caffe", "caffe-missing"} & ids, res.stdout
    [winner] = [i for i in report["facts"]["caffe"]["installs"] if i["wins"]]
    assert winner["in_tree"]
    assert Path(winner["origin"]).name == PTH_NAME
    assert Path(winner["origin"]).read_text() == pin_line(built_caffe.prefix / "python")

    fix = fix_cli(*args, "--only", "shadowed-caffe", "--json", env=env)
    assert json.loads(fix.stdout)["status"] == "nothing-to-do", fix.stdout + fix.stderr
