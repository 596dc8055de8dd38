"""The source steps on the real Caffe tarball: fetch, verify, patch; tampering is refused."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from caffedoc.build import engine, paths, source
from caffedoc.build.plan import make_plan
from caffedoc.build.steps import Log, StepError
from caffedoc.errors import CaffedocError
from caffedoc.probes.machine import host_facts
from caffedoc.recipes import load_all
from tests.conftest import caffedoc
from tests.fixtures.caffe_build import clean_env, runtime_venv

RECIPE = next(r for r in load_all() if r.name == "debian12-cpu")


@pytest.fixture(scope="session")
def caffe_tarball(tmp_path_factory) -> Path:
    """The hash-pinned upstream tarball: from the cache, else fetched from Debian for real."""
    cached = paths.sources_dir() / RECIPE.source.tarball
    if not cached.is_file():
        log = tmp_path_factory.mktemp("fetch") / "fetch.log"
        src = RECIPE.source
        source.apt_source(src.apt_package, src.apt_suite, src.tarball, cached, log)
    return cached


@pytest.fixture
def pristine(caffe_tarball, tmp_path) -> Path:
    tree = tmp_path / "caffe"
    source.extract(caffe_tarball, tree)
    return tree


@pytest.fixture(scope="session")
def runtime_python() -> Path:
    where = paths.cache_root() / "test"
    where.mkdir(parents=True, exist_ok=True)
    return runtime_venv(where)


def test_the_tarball_matches_the_recipe(caffe_tarball):
    assert caffe_tarball.stat().st_size == RECIPE.source.size
    source.verify_tarball(caffe_tarball, RECIPE.source)


def test_a_tampered_tarball_is_refused(caffe_tarball, tmp_path):
    bad = tmp_path / caffe_tarball.name
    shutil.copy(caffe_tarball, bad)
    with open(bad, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(CaffedocError, match="tampered"):
        source.verify_tarball(bad, RECIPE.source)


@pytest.mark.parametrize("given", ["tampered tarball", "not a tarball"])
def test_a_wrong_source_is_refused_before_any_plan_or_cache_hit(
    given, caffe_tarball, runtime_python, tmp_path
):
    """A finished build of the recipe may be cached, but it rests on the recipe's source:
    a --source that is not that source is refused, even by --dry-run, in one line."""
    bad = tmp_path / caffe_tarball.name
    if given == "tampered tarball":
        shutil.copy(caffe_tarball, bad)
        with open(bad, "ab") as fh:
            fh.write(b"\0")
    else:
        bad.write_text("not a tarball\n")
    res = caffedoc("build", "--recipe", "debian12-cpu", "--source", str(bad),
                   "--python", str(runtime_python), "--dry-run", env=clean_env())  # fmt: skip
    assert res.returncode == 2, res.stdout
    assert res.stdout == "" and res.stderr.count("\n") == 1, res.stderr
    assert "is not the recipe's" in res.stderr and "tampered" in res.stderr


def test_the_pristine_tree_matches_the_manifest(pristine):
    assert (pristine / "CMakeLists.txt").is_file()  # members at the top level
    source.verify_tree(pristine, RECIPE.source)


@pytest.mark.parametrize("how", ["changed", "missing", "not in the source"])
def test_a_tampered_tree_is_refused(pristine, how):
    target = pristine / "src" / "caffe" / "net.cpp"
    if how == "changed":
        target.write_text(target.read_text().replace("Net", "Nett", 1))
    elif how == "missing":
        target.unlink()
    else:
        (pristine / "src" / "caffe" / "backdoor.cpp").write_text("int x;\n")
    with pytest.raises(CaffedocError) as err:
        source.verify_tree(pristine, RECIPE.source)
    assert how in str(err.value) and "tampered" in str(err.value)


def test_the_cli_refuses_a_tampered_tree_before_building(pristine, runtime_python, tmp_path):
    (pristine / "include" / "caffe" / "net.hpp").write_text("// replaced\n")
    prefix = tmp_path / "prefix"
    res = caffedoc(
        "build", "--recipe", "debian12-cpu", "--source", str(pristine),
        "--python", str(runtime_python), "--prefix", str(prefix),
        env={**clean_env(), "CAFFEDOC_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "include/caffe/net.hpp" in res.stderr and "tampered" in res.stderr
    assert not prefix.exists()


def test_the_patches_apply_to_the_real_tree(pristine, tmp_path):
    io_cpp = pristine / "src" / "caffe" / "util" / "io.cpp"
    assert "CV_LOAD_IMAGE_COLOR" in io_cpp.read_text()
    log = Log(tmp_path / "patch.log")
    engine.apply_patches(RECIPE.patches, pristine, log)
    patched = io_cpp.read_text()
    assert "CV_LOAD_IMAGE" not in patched and "cv::IMREAD_COLOR" in patched
    assert "SetTotalBytesLimit(kProtoReadBytesLimit);" in patched
    for rel in ("src/caffe/layers/window_data_layer.cpp", "src/caffe/test/test_io.cpp"):
        assert "CV_LOAD_IMAGE" not in (pristine / rel).read_text()
    assert not list(pristine.rglob("*.orig")) and not list(pristine.rglob("*.rej"))
    # A second application is an error, not a silent double patch.
    with pytest.raises(StepError, match="does not apply"):
        engine.apply_patches(RECIPE.patches[:1], pristine, log)


def test_extract_strips_a_single_top_folder(pristine, tmp_path):
    tarball = tmp_path / "wrapped.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(pristine / "python", arcname="caffe-1.0/python")
        tar.add(pristine / "CMakeLists.txt", arcname="caffe-1.0/CMakeLists.txt")
    out = tmp_path / "out"
    source.extract(tarball, out)
    assert (out / "CMakeLists.txt").is_file() and (out / "python" / "caffe").is_dir()


def test_the_debian_mirror_comes_from_the_apt_configuration(tmp_path):
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    assert source.debian_mirror((deb822,)) == "http://mirror.example/debian"
    legacy = tmp_path / "sources.list"
    legacy.write_text("deb http://sec.example/ bookworm-security main\n"
                      "deb [arch=amd64] http://old.example/debian bookworm main\n")  # fmt: skip
    assert source.debian_mirror((tmp_path / "absent", legacy)) == "http://old.example/debian"
    with pytest.raises(CaffedocError, match="no Debian archive"):
        source.debian_mirror((tmp_path / "absent",))


def test_dry_run_prints_the_whole_plan_and_changes_nothing(runtime_python, tmp_path):
    prefix = tmp_path / "prefix"
    pth = next(Path(runtime_python).parent.parent.glob("lib/python*/site-packages"))
    before = sorted(p.name for p in pth.iterdir())
    env = {**clean_env(), "CAFFEDOC_CACHE_DIR": str(tmp_path / "cache")}
    args = ["build", "--recipe", "debian12-cpu", "--python", str(runtime_python),
            "--prefix", str(prefix), "--jobs", "3", "--dry-run"]  # fmt: skip
    res = caffedoc(*args, env=env)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for expected in (
        "debian12-cpu",
        RECIPE.source.sha256,
        "opencv4-imread-flags.patch",
        "protobuf-3.6-total-bytes-limit.patch",
        "-DCPU_ONLY=ON",
        "-DBLAS=Open",
        f"-DPYTHON_EXECUTABLE={runtime_python}",
        str(prefix),
        "libopenblas-dev",
        "caffedoc-caffe.pth",
        "jobs      3",
    ):
        assert expected in out, expected
    assert not prefix.exists() and not (tmp_path / "cache").exists()
    assert sorted(p.name for p in pth.iterdir()) == before
    plan = json.loads(caffedoc(*args, "--json", env=env).stdout)
    assert plan["recipe"] == "debian12-cpu" and plan["jobs"] == 3
    assert plan["source"]["sha256"] == RECIPE.source.sha256
    assert plan["patches"] == [p.name for p in RECIPE.patches]
    assert len(plan["cache_key"]) == 64


def _plan_with_status(status: str, reason: str, python: Path, tmp_path: Path, monkeypatch):
    """A plan for a copy of the CPU recipe given `status` (no shipped recipe has each)."""
    folder = tmp_path / "recipes"
    shutil.copytree(load_all()[0].path.parent, folder)
    path = folder / "debian12-cpu.toml"
    path.write_text(
        re.sub(
            r'status = "verified"\nverified = .*\n',
            f'status = "{status}"\nreason = "{reason}"\n',
            path.read_text(),
        )
    )
    recipe = next(r for r in load_all(folder) if r.name == "debian12-cpu")
    monkeypatch.setenv("CAFFEDOC_CACHE_DIR", str(tmp_path / "cache"))
    return make_plan(recipe, "a test", host_facts(), Path(python), prefix=tmp_path / "p")


def test_a_blocked_recipe_plans_but_does_not_build(runtime_python, tmp_path, monkeypatch):
    plan = _plan_with_status("blocked", "not yet", runtime_python, tmp_path, monkeypatch)
    assert "BLOCKED   a real build is refused: not yet" in plan.render()
    with pytest.raises(CaffedocError, match="cannot be built yet: not yet"):
        engine.execute(plan)
    assert not (tmp_path / "p").exists() and not plan.workdir.exists()


def test_an_interpreter_without_numpy_or_pip_is_refused(tmp_path):
    """Build installs pycaffe's packages with the interpreter's own pip: none, refused."""
    venv = tmp_path / "bare"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", venv], check=True)
    res = caffedoc("build", "--recipe", "debian12-cpu", "--python", str(venv), "--dry-run")
    assert res.returncode == 2 and "lacks pycaffe's numpy" in res.stderr
    assert "has no pip" in res.stderr and "-m ensurepip" in res.stderr


def test_an_unverified_recipe_plans_says_so_and_is_not_refused(runtime_python, tmp_path,
                                                                monkeypatch):  # fmt: skip
    plan = _plan_with_status("unverified", "no box", runtime_python, tmp_path, monkeypatch)
    assert "UNTRIED   caffedoc has not built this recipe: no box" in plan.render()
    engine.refuse_unbuildable(plan)  # builds like a good one
