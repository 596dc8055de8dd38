"""The Debian releases beside the test machine's own: each recipe built for real by
`caffedoc build` inside a clean root of its suite made by debootstrap, as a user of that
release would run it (a venv, `--deps-only`, the build, `smoke`, `check --require`).

Cold, a root is debootstrapped, given the recipe's packages by caffedoc itself, and
Caffe compiled. Everything is cached under ~/.cache/caffedoc: the debootstrap roots as
tarballs (cached_root), the roots with the packages in as folders that each session's
root overlays (roots/<suite>-<recipe>-<key>), and each suite's own caffedoc cache
(ccache, finished builds) in platforms/<suite>/, bind-mounted at the root's
~/.cache/caffedoc so compilers of different releases never share entries. Warm, every
step still runs and the build is a cache hit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from caffedoc.build import paths, source
from caffedoc.recipes import load_all
from tests.fixtures.roots import cached_root, copy_checkout, in_root, ok, reach_registries

pytestmark = pytest.mark.caffe

VENV = "/opt/venv"
CHECKOUT = "/opt/caffedoc"
TARBALL_DIR = "/opt/source"


# pycaffe's io on the release's numpy and scikit-image (the pycaffe-numpy2-skimage patch):
# a uint8 datum's round trip, and an image read in colour and in grey.
PYCAFFE_IO = """
import json, sys, tempfile
import numpy as np, skimage.io, caffe.io
arr = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
back = caffe.io.datum_to_array(caffe.io.array_to_datum(arr))
back[0, 0, 0] = 1  # writable, as np.fromstring's copy was
png = tempfile.mkstemp(suffix=".png")[1]
skimage.io.imsave(png, np.full((8, 6, 3), 200, np.uint8), check_contrast=False)
shapes = [list(caffe.io.load_image(png, color=c).shape) for c in (True, False)]
print(json.dumps({"same": back[1:].tolist() == arr[1:].tolist(), "shapes": shapes}))
"""


@dataclass(frozen=True)
class Platform:
    suite: str
    version: str
    recipe: str
    # What the venv gets before caffedoc builds into it: numpy for the compile, and
    # pycaffe's run-time packages. protoc 3.12 (bullseye) writes the old descriptor-style
    # caffe_pb2.py, which protobuf 4.21 and later refuse: 3.20.3 is the newest that loads it.
    runtime: tuple[str, ...]


PLATFORMS = (
    Platform(
        "bullseye",
        "11",
        "debian11-cpu",
        ("numpy", "six", "protobuf==3.20.3", "scikit-image", "scipy"),
    ),
    Platform("trixie", "13", "debian13-cpu", ("numpy", "six", "protobuf", "scikit-image", "scipy")),
)


@dataclass(frozen=True)
class Root:
    platform: Platform
    path: Path
    cache: Path  # the host folder mounted at the root's ~/.cache/caffedoc

    def run(self, command: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        return in_root(
            self.path, command, timeout=timeout, binds=((self.cache, "/root/.cache/caffedoc"),)
        )

    def caffedoc(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        return self.run(" ".join([f"{VENV}/bin/caffedoc", *args]), timeout=timeout)


def prepared_root(platform: Platform) -> Path:
    """A root of the suite with a venv holding caffedoc and the recipe's packages installed
    by `caffedoc build --deps-only`: made once (from cached_root's debootstrap tarball) and
    kept as a folder that each session's root lies over, so no session changes it."""
    recipe = next(r for r in load_all() if r.name == platform.recipe)
    key = hashlib.sha256(
        json.dumps([platform.suite, recipe.apt, platform.runtime]).encode()
    ).hexdigest()[:12]
    ready = paths.cache_root() / "roots" / f"{platform.suite}-{recipe.name}-{key}"
    if ready.is_dir():
        return ready
    ready.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ready.parent, prefix=".making-") as scratch:
        root = cached_root(Path(scratch) / "root", platform.suite, ("python3-venv",))
        reach_registries(root)
        copy_checkout(root / CHECKOUT.lstrip("/"))
        pip = f"{VENV}/bin/python -m pip install -q --disable-pip-version-check"
        ok(
            in_root(
                root, f"python3 -m venv {VENV} && {pip} {CHECKOUT} {' '.join(platform.runtime)}"
            )
        )
        deps = f"{VENV}/bin/caffedoc build --recipe {recipe.name} --deps-only"
        ok(in_root(root, f"apt-get update -qq && {deps}", timeout=3600))
        ok(in_root(root, "apt-get clean && rm -rf /var/lib/apt/lists/*"))
        for stale in ready.parent.glob(f"{platform.suite}-{recipe.name}-*"):
            if stale.is_dir():
                shutil.rmtree(stale)  # an older package list's root
        with contextlib.suppress(OSError):  # another session may have made it first
            root.rename(ready)
    return ready


@contextlib.contextmanager
def overlay(lower: Path, where: Path) -> Iterator[Path]:
    """A root whose writes land in `where` (overlayfs over `lower`), unmounted and removed
    after the block: seconds, where unpacking and deleting gigabytes took minutes."""
    upper, work, merged = where / "upper", where / "work", where / "root"
    for d in (upper, work, merged):
        d.mkdir(parents=True)
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
    ok(
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", opts, merged], capture_output=True
        )
    )
    try:
        yield merged
    finally:
        ok(subprocess.run(["umount", merged], capture_output=True))
        shutil.rmtree(where)


def caffe_tarball(name: str, scratch: Path) -> Path:
    """The recipe's Caffe tarball from this machine's cache, fetched as caffedoc does."""
    src = next(r for r in load_all() if r.name == name).source
    here = paths.sources_dir() / src.tarball
    if not here.is_file():
        source.apt_source(
            src.apt_package or "", src.apt_suite or "", src.tarball, here, scratch / "fetch.log"
        )
    return here


@pytest.fixture(scope="module", params=PLATFORMS, ids=lambda p: p.recipe)
def root(request, tmp_path_factory) -> Iterator[Root]:
    """A fresh root over the prepared one, with today's checkout of caffedoc installed into
    its venv and the Caffe tarball copied in."""
    platform: Platform = request.param
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        pytest.skip("needs root and debootstrap (.ci/run installs it)")
    scratch = tmp_path_factory.mktemp(platform.suite)
    tarball = caffe_tarball(platform.recipe, scratch)
    with overlay(prepared_root(platform), scratch / "overlay") as path:
        reach_registries(path)
        shutil.rmtree(path / CHECKOUT.lstrip("/"))
        copy_checkout(path / CHECKOUT.lstrip("/"))
        (path / TARBALL_DIR.lstrip("/")).mkdir(parents=True, exist_ok=True)
        shutil.copy2(tarball, path / TARBALL_DIR.lstrip("/") / tarball.name)
        cache = paths.cache_root() / "platforms" / platform.suite
        cache.mkdir(parents=True, exist_ok=True)
        pip = f"{VENV}/bin/python -m pip install -q --disable-pip-version-check"
        ok(in_root(path, f"{pip} {CHECKOUT}"))
        yield Root(platform, path, cache)


@pytest.fixture(scope="module")
def built(root: Root) -> dict:
    """`caffedoc build --recipe NAME` in the root, as its documentation says: the packages
    first, then the build from the verified tarball, which ends with the smoke step."""
    name = root.platform.recipe
    deps = ok(root.caffedoc("build", "--recipe", name, "--deps-only"))
    assert f"{name}: all installed" in deps  # the prepared root got them from caffedoc
    tarball = f"{TARBALL_DIR}/{next(r for r in load_all() if r.name == name).source.tarball}"
    args = ("build", "--recipe", name, "--jobs", "2", "--python", VENV, "--source", tarball)
    return json.loads(ok(root.caffedoc(*args, "--json", timeout=3600)))


def test_dry_run_picks_the_release_recipe(root: Root):
    plan = json.loads(
        ok(root.caffedoc("build", "--cpu-only", "--dry-run", "--json", "--python", VENV))
    )
    assert plan["recipe"] == root.platform.recipe
    assert plan["why"].endswith(f"fits Debian {root.platform.version}"), plan["why"]
    assert plan["missing_packages"] == []


def test_the_build_passes_its_smoke_step(built: dict):
    assert built["result"]["cache"] in ("built", "artifact", "prefix")
    smoke = built["result"]["smoke"]
    assert smoke["passed"] and smoke["loss_end"] < smoke["loss_start"], smoke


def test_a_second_build_is_a_cache_hit(root: Root, built: dict):
    name = root.platform.recipe
    again = json.loads(ok(root.caffedoc("build", "--recipe", name, "--python", VENV, "--json")))
    assert again["result"]["cache"] == "prefix"
    assert again["plan"]["cache_key"] == built["plan"]["cache_key"]


def test_smoke_trains_in_the_root(root: Root, built: dict):
    res = root.caffedoc("smoke", "--python", VENV, "--cpu", "--json")
    smoke = json.loads(ok(res))
    assert smoke["passed"] and smoke["loss_end"] < smoke["loss_start"] / 3, smoke


def test_check_requires_the_recipe(root: Root, built: dict):
    name = root.platform.recipe
    res = root.caffedoc("check", "--python", VENV, "--require", f"recipe={name}", "--json")
    report = json.loads(res.stdout)
    assert res.returncode == 0, [f for f in report["findings"] if f["severity"] == "error"]
    assert "recipe-mismatch" not in {f["id"] for f in report["findings"]}
    other = root.caffedoc("check", "--python", VENV, "--require", "recipe=debian12-cpu", "--json")
    assert other.returncode == 1
    assert "recipe-mismatch" in {f["id"] for f in json.loads(other.stdout)["findings"]}


def test_pycaffe_io_works_on_the_release_numpy_and_scikit_image(root: Root, built: dict):
    out = ok(
        root.run(f"{VENV}/bin/python -W error::DeprecationWarning -c {shlex.quote(PYCAFFE_IO)}")
    )
    assert json.loads(out.splitlines()[-1]) == {"same": True, "shapes": [[8, 6, 3], [8, 6, 1]]}


def test_a_fresh_venv_gets_pycaffe_packages_that_load_the_release_code(root: Root, built: dict):
    """Only numpy in a new venv: the build installs pycaffe's packages into it, a protobuf
    that loads this release's caffe_pb2.py (3.20.3 at most beside bullseye's protoc 3.12),
    reuses the finished build, and its smoke step passes."""
    name = root.platform.recipe
    pip = "/opt/fresh/bin/python -m pip install -q --disable-pip-version-check"
    ok(root.run(f"python3 -m venv /opt/fresh && {pip} numpy"))
    args = ("--recipe", name, "--python", "/opt/fresh", "--prefix", "/opt/fresh-caffe", "--json")
    out = json.loads(ok(root.caffedoc("build", *args)))
    assert out["result"]["cache"] == "artifact" and out["result"]["smoke"]["passed"]
    version = ok(
        root.run("/opt/fresh/bin/python -c 'import google.protobuf as p; print(p.__version__)'")
    )
    major_minor = tuple(int(p) for p in version.split(".")[:2])
    assert (major_minor <= (3, 20)) == (root.platform.suite == "bullseye"), version
