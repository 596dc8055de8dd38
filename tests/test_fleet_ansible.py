"""The playbook in deploy/ansible, run for real by ansible-core against three Debian roots
made with debootstrap, reached through Ansible's chroot connection, each with its own
real problem; caffedoc is installed on them from wheels alone, and the fleet report names
each host's problem and the drift between them.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, caffedoc
from tests.fixtures.roots import cached_root, copy_checkout, in_root, ok

PACKAGES = ("python3-venv", "libprotobuf32", "binutils")  # a python3, Caffe's libprotobuf, readelf
SITE = "/srv/caffe-env/lib/python3.11/site-packages"
# host name → protobuf it runs, whether a stale caffe shadows the pinned build
HOSTS = {
    "node-stale": ("3.20.3", True),
    "node-proto": ("3.19.6", False),
    "node-ok": ("3.20.3", False),
}


def _pip(*args: str, cwd: Path | None = None) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=600, cwd=cwd
    )
    return ok(res)


@pytest.fixture(scope="module")
def collections() -> Path:
    """community.general (its chroot connection), taken from the `ansible` wheel on PyPI
    without installing the hundred other collections that wheel carries."""
    from caffedoc.build import paths

    if shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("needs ansible-core (pip install -e '.[test]')")
    out = paths.cache_root() / "ansible-collections"
    if not (out / "ansible_collections/community/general/plugins/connection/chroot.py").is_file():
        wheels = paths.cache_root() / "wheels" / "ansible"
        _pip("download", "--quiet", "--no-deps", "--dest", str(wheels), "ansible>=9")
        wheel = max(wheels.glob("ansible-*.whl"))
        part = out.with_name(f"{out.name}.{os.getpid()}")
        shutil.rmtree(part, ignore_errors=True)
        with zipfile.ZipFile(wheel) as zf:
            prefix = "ansible_collections/community/general/"
            zf.extractall(part, [n for n in zf.namelist() if n.startswith(prefix)])
        shutil.rmtree(out, ignore_errors=True)
        os.replace(part, out)
    return out


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, build_pycaffe, gencode, collections) -> dict:
    """Three roots, the playbook run over them; what it printed, its exit, the reports."""
    base = tmp_path_factory.mktemp("fleet")
    wheels = base / "protobuf-wheels"
    for version in {v for v, _ in HOSTS.values()}:
        _pip("download", "--quiet", "--no-deps", "--dest", str(wheels), f"protobuf=={version}")
    tree = build_pycaffe(base / "caffe", Path(sys.executable), gencode("builder"))
    inventory = ["[caffe]"]
    for name, (protobuf, stale) in HOSTS.items():
        root = cached_root(base / name, "bookworm", PACKAGES)
        shutil.copytree(tree.root, root / "opt/caffe", symlinks=True)
        shutil.copytree(wheels, root / "tmp/wheels")
        pip = "/srv/caffe-env/bin/python -m pip install -q --no-index --find-links /tmp/wheels"
        ok(in_root(root, f"python3 -m venv /srv/caffe-env && {pip} protobuf=={protobuf}"))
        site = root / SITE.lstrip("/")
        (site / "caffe.pth").write_text("/opt/caffe/python\n")  # the build, pinned
        if stale:  # an old copy in site-packages, earlier on sys.path than any .pth entry
            (site / "caffe").mkdir()
            (site / "caffe/__init__.py").write_text("from ._caffe import *  # an old build's\n")
        inventory.append(f"{name} ansible_host={root}")
    inventory += [
        "[caffe:vars]",
        "ansible_connection=community.general.chroot",
        "caffedoc_python=/srv/caffe-env/bin/python",
    ]
    (base / "inventory.ini").write_text("\n".join(inventory) + "\n")
    reports = base / "reports"
    extra = {
        "caffedoc_source": str(copy_checkout(base / "checkout")),
        "caffedoc_wheels": str(base / "wheels"),
        "caffedoc_reports": str(reports),
        "caffedoc_controller": str(Path(sys.executable).parent / "caffedoc"),
    }
    playbook = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i", str(base / "inventory.ini"), str(REPO / "deploy/ansible/fleet.yml"),
        "-e", json.dumps(extra),
    ]  # fmt: skip
    # Each root gets a /proc of its own, in a mount namespace that ends with the play.
    mounts = " && ".join(f"mount -t proc proc {shlex.quote(str(base / n / 'proc'))}" for n in HOSTS)
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_LOCAL_TEMP": str(base / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
        "PYTHONWARNINGS": "ignore",
    }
    res = subprocess.run(
        ["unshare", "--mount", "--fork", "sh", "-c", f"{mounts} && exec {shlex.join(playbook)}"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    reported = caffedoc("report", "--json", str(reports))
    return {
        "play": res,
        "reports": reports,
        "fleet": json.loads(reported.stdout),
        "roots": {n: base / n for n in HOSTS},
    }


def test_the_playbook_fails_because_hosts_have_errors(fleet):
    play = fleet["play"]
    out = play.stdout + play.stderr
    assert play.returncode == 2, out[-4000:]  # ansible-playbook: a task failed
    assert "caffedoc report: exit 1" in out
    # The fleet report, printed by the play: each host with its own problem.
    assert "node-stale" in out and "shadowed-caffe" in out, out[-4000:]
    assert "protobuf-version-drift" in out
    for name in HOSTS:  # installed from wheels on every host, no host unreachable
        assert f"{name}                  : ok=" in out or f"{name} " in out
        assert "unreachable=1" not in out


def test_each_host_installed_caffedoc_from_the_wheels(fleet):
    for root in fleet["roots"].values():
        assert (root / "opt/caffedoc/bin/caffedoc").is_file()
        assert list((root / "var/tmp/caffedoc/wheels").glob("caffedoc-*.whl"))


def test_each_report_carries_its_inventory_name(fleet):
    files = sorted(p.name for p in fleet["reports"].glob("*.json"))
    assert files == sorted(f"{n}.json" for n in HOSTS)
    for name in HOSTS:
        report = json.loads((fleet["reports"] / f"{name}.json").read_text())
        assert report["schema"] == 1
        assert report["host"]["name"] == name
        assert report["facts"]["python"]["target"]["path"] == "/srv/caffe-env/bin/python"
    assert (fleet["reports"] / "fleet.html").is_file()


def test_the_report_names_each_hosts_problem(fleet):
    hosts = {h["name"]: h for h in fleet["fleet"]["hosts"]}
    errors = {
        n: {f["id"] for f in h["findings"] if f["severity"] == "error"} for n, h in hosts.items()
    }
    assert "shadowed-caffe" in errors["node-stale"], hosts["node-stale"]
    assert "protobuf-version-drift" in errors["node-proto"], hosts["node-proto"]
    assert hosts["node-ok"]["status"] == "ok", hosts["node-ok"]["findings"]
    spread = {f["id"]: f["hosts"] for f in fleet["fleet"]["findings"]}
    assert spread["shadowed-caffe"] == ["node-stale"]
    assert spread["protobuf-version-drift"] == ["node-proto"]


def test_the_report_names_the_odd_ones_out(fleet):
    drift = {d["fact"]: d for d in fleet["fleet"]["drift"]}
    assert drift["protobuf"]["odd_ones_out"] == ["node-proto"]
    assert drift["protobuf"]["majority"].startswith("3.20.3")
    assert drift["caffe"]["odd_ones_out"] == ["node-stale"]
    assert f"{SITE}/caffe" in drift["caffe"]["values"][1]["value"]
    assert "python" not in drift  # all three run Debian's Python: no drift claimed there
