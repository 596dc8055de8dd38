"""The wheel beyond the machine that built it: a cp313 wheel made by `caffedoc build --wheel`
inside the trixie root that tests/test_platforms.py builds debian13-cpu in (a cache hit),
installed by pip alone into a second, clean trixie root with no -dev packages and no
compilers, where smoke passes and the installed `caffe train` runs; and a bullseye root
(glibc 2.31), where pip refuses the Debian 12 wheel and `caffedoc check` and `caffedoc
explain --here` of pip's message say why and what to do there."""

from __future__ import annotations

import json
import shlex
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from caffedoc.detect.wheel_platform import WHEEL_TAGS
from caffedoc.recipes import load_all
from tests.fixtures.roots import cached_root, copy_checkout, in_root, ok, reach_registries
from tests.test_platforms import (
    CHECKOUT,
    PLATFORMS,
    TARBALL_DIR,
    VENV,
    caffe_tarball,
    overlay,
    prepared_root,
)
from tests.test_wheel_cpu import NET, SOLVER

pytestmark = pytest.mark.caffe

TRIXIE = next(p for p in PLATFORMS if p.suite == "trixie")
NAME = "caffe-1.0.0+debian13.cpu-cp313-cp313-{tag}_x86_64.whl"


@pytest.fixture(scope="module")
def trixie_wheel(tmp_path_factory) -> Iterator[tuple[Path, dict]]:
    """`caffedoc build --wheel` in a trixie root over test_platforms' prepared one, with its
    cache (the debian13-cpu build there is a hit); the wheel copied out."""
    from caffedoc.build import paths

    scratch = tmp_path_factory.mktemp("trixie-build")
    tarball = caffe_tarball(TRIXIE.recipe, scratch)
    with overlay(prepared_root(TRIXIE), scratch / "overlay") as root:
        reach_registries(root)
        shutil.rmtree(root / CHECKOUT.lstrip("/"))
        copy_checkout(root / CHECKOUT.lstrip("/"))
        (root / TARBALL_DIR.lstrip("/")).mkdir(parents=True, exist_ok=True)
        shutil.copy2(tarball, root / TARBALL_DIR.lstrip("/") / tarball.name)
        pip = f"{VENV}/bin/python -m pip install -q --disable-pip-version-check"
        ok(in_root(root, f"{pip} '{CHECKOUT}[wheel]'"))
        build = (
            f"{VENV}/bin/caffedoc build --recipe {TRIXIE.recipe} --jobs 2 --python {VENV} "
            f"--source {TARBALL_DIR}/{tarball.name} --wheel --out /wheels --json"
        )
        cache = paths.cache_root() / "platforms" / TRIXIE.suite
        cache.mkdir(parents=True, exist_ok=True)
        res = in_root(root, build, timeout=3600, binds=((cache, "/root/.cache/caffedoc"),))
        out = json.loads(ok(res))
        [wheel] = (root / "wheels").glob("*.whl")
        kept = tmp_path_factory.mktemp("trixie-wheels") / wheel.name
        shutil.copy2(wheel, kept)
    yield kept, out


def test_the_trixie_build_makes_a_cp313_wheel_from_its_cache(trixie_wheel):
    wheel, out = trixie_wheel
    assert out["result"]["cache"] in ("prefix", "artifact", "built")
    made = out["wheel"]
    assert wheel.name == NAME.format(tag=WHEEL_TAGS[TRIXIE.recipe]), wheel.name
    with zipfile.ZipFile(wheel) as z:
        meta = z.read("caffe-1.0.0+debian13.cpu.dist-info/METADATA").decode()
    assert "Requires-Python: ==3.13.*" in meta and "Requires-Dist: protobuf>=3.20" in meta
    assert made["size"] == wheel.stat().st_size and made["installed"] > made["size"]


def test_a_clean_trixie_root_installs_it_with_pip_alone(trixie_wheel, tmp_path):
    wheel, _ = trixie_wheel
    root = cached_root(tmp_path / "root", "trixie", ("python3-venv",))
    dpkg = ok(in_root(root, "dpkg-query -W -f '${Package}\\n'")).split()
    assert not [p for p in dpkg if p.endswith("-dev")] and not {"gcc", "g++", "cpp"} & set(dpkg)
    reach_registries(root)
    (root / "wheels").mkdir()
    shutil.copy2(wheel, root / "wheels" / wheel.name)
    copy_checkout(root / "src")
    ok(in_root(root, "python3 -m venv /v && /v/bin/pip install -q --find-links /wheels caffe /src"))
    smoke = in_root(root, "/v/bin/caffedoc smoke --python /v/bin/python --json", timeout=600)
    assert smoke.returncode == 0, smoke.stdout[-2000:] + smoke.stderr[-2000:]
    assert json.loads(smoke.stdout)["passed"] is True
    # Caffe's tools preload libpython, a runtime package (no -dev, no compiler) on Debian.
    (root / "tiny").mkdir()
    (root / "tiny" / "net.prototxt").write_text(NET)
    (root / "tiny" / "solver.prototxt").write_text(SOLVER)
    train = in_root(
        root,
        "apt-get update -qq && apt-get install -y -qq libpython3.13 >/dev/null && "
        "cd /tiny && /v/bin/caffe train --solver solver.prototxt",
    )
    assert train.returncode == 0, train.stderr[-3000:]
    assert "Optimization Done." in train.stderr
    assert (root / "tiny" / "tiny_iter_20.caffemodel").is_file()


def test_a_debian11_root_is_refused_the_wheel_and_told_why(cpu_wheel, tmp_path):
    wheel, made = cpu_wheel
    root = cached_root(tmp_path / "root", "bullseye", ("python3-venv",))
    reach_registries(root)
    (root / "wheels").mkdir()
    shutil.copy2(wheel, root / "wheels" / wheel.name)
    copy_checkout(root / "src")
    ok(
        in_root(
            root, "python3 -m venv /c && /c/bin/pip install -q -U pip && /c/bin/pip install -q /src"
        )
    )
    # What pip accepts here, by packaging.tags: glibc 2.31, so manylinux up to 2_31.
    accepts = "from packaging import tags; print(' '.join(tags.platform_tags()))"
    platforms = ok(in_root(root, f"/c/bin/python -c {shlex.quote(accepts)}")).split()
    assert "manylinux_2_31_x86_64" in platforms and made["platform"] not in platforms
    # pip refuses the wheel, given as a file or found in a folder.
    ok(in_root(root, "python3 -m venv /v"))
    direct = in_root(root, f"/v/bin/pip install /wheels/{wheel.name} > /pip.log 2>&1")
    assert direct.returncode != 0
    assert "is not a supported wheel on this platform" in (root / "pip.log").read_text()
    # (--no-index: without it pip takes PyPI's unrelated `caffe` 0.1.0 instead.)
    found = in_root(root, "/v/bin/pip install --no-index --find-links /wheels caffe")
    assert found.returncode != 0, found.stdout
    assert "Could not find a version that satisfies the requirement caffe" in found.stderr
    # check: why (its glibc against the wheels' tags) and what to do (this release's recipe).
    res = in_root(root, "/c/bin/caffedoc check --python /v/bin/python --json")
    report = json.loads(res.stdout)
    [hit] = [f for f in report["findings"] if f["id"] == "wheel-platform"]
    assert hit["severity"] == "warning"
    seen = " ".join(hit["evidence"])
    assert "glibc 2.31" in seen and "manylinux_2_31_x86_64" in seen, seen
    assert f"glibc {WHEEL_TAGS['debian12-cpu'].split('_', 1)[1].replace('_', '.')}" in seen
    assert "caffedoc build --recipe debian11-cpu" in hit["fix"]
    assert any(r.name == "debian11-cpu" for r in load_all())
    # explain of pip's own message names the problem, and --here gives this machine's form.
    res = in_root(root, "/c/bin/caffedoc explain /pip.log --here --python /v/bin/python --json")
    assert res.returncode == 0, res.stderr
    told = json.loads(res.stdout)
    assert told["matches"][0]["id"] == "wheel-platform"
    assert [h["id"] for h in told["here"]] == ["wheel-platform"]
    assert "debian11-cpu" in told["here"][0]["fix"]
