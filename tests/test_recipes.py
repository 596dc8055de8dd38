"""Recipes: validation of the shipped data, malformed files, resolution for many hosts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from caffedoc.errors import CaffedocError
from caffedoc.recipes import RecipeError, load, load_all, recipes_dir
from caffedoc.resolution import HostFacts, Request, resolve
from tests.conftest import REPO, caffedoc

RECIPES = load_all()
BY_NAME = {r.name: r for r in RECIPES}


def test_recipe_targets_are_ones_their_cuda_builds_for():
    """Two data files checked against each other: each CUDA recipe's GPU targets lie in
    the range the cuda-arch rule says its CUDA release builds for."""
    from caffedoc.detect.cuda import target_ranges

    ranges = target_ranges()
    cuda_recipes = [r for r in RECIPES if r.kind == "cuda"]
    assert cuda_recipes
    for r in cuda_recipes:
        low, high = ranges[int(r.cuda.split(".")[0])]
        outside = [a for a in r.architectures if int(a) < low or (high and int(a) > high)]
        assert not outside, (r.name, outside, (low, high))


def test_a_bad_recipe_points_to_a_good_one_and_its_pair_is_what_check_flags():
    from caffedoc.detect.cudnn_version import _bad_pairs

    bad = [r for r in RECIPES if r.status == "bad"]
    assert bad
    for r in bad:
        alt = BY_NAME[r.alternative]
        assert (
            alt.status in ("verified", "reported")
            and alt.kind == r.kind
            and alt.distros == r.distros
        ), r.name
        if r.cuda and r.cudnn:
            assert (r.cuda, r.cudnn) in {(c, d) for c, d, _ in _bad_pairs()}


def test_every_recipe_names_its_packages_for_a_known_package_manager():
    from caffedoc import platform

    for r in RECIPES:
        assert r.manager().name == r.package_manager in platform.MANAGERS
    # its headers would shadow the interpreter's numpy
    assert "python3-numpy" not in BY_NAME["debian12-cpu"].apt


def test_digest_covers_the_patches(tmp_path):
    folder = tmp_path / "recipes"
    shutil.copytree(recipes_dir(), folder)
    before = load(folder / "debian12-cpu.toml").digest
    patch = folder / "patches" / "caffe-99bd997" / "opencv4-imread-flags.patch"
    patch.write_text(patch.read_text() + "\n")
    assert load(folder / "debian12-cpu.toml").digest != before


MALFORMED = [
    ('sha256 = "e0eb', 'sha256 = "zz', "field 'source.sha256'"),
    ('status = "verified"', 'status = "great"', "field 'status'"),
    ('status = "verified"', 'status = "bad"', "field 'reason'"),
    ('status = "verified"', 'status = "reported"\nreason = "seen"', "field 'verified'"),
    ("verified = {", "verifiedx = {", "field 'verified'"),
    ('distros = ["debian 12"]', 'distros = ["bookworm"]', "field 'platform.distros'"),
    ('distros = ["debian 12"]', "distros = []", "field 'platform.distros'"),
    ('kind = "cpu"', 'kind = "tpu"', "field 'compute.kind'"),
    ("size = 8518844", 'size = "big"', "field 'source.size'"),
    ("static_protobuf = false", 'static_protobuf = "no"', "field 'stack.static_protobuf'"),
    ("opencv4-imread-flags.patch", "no-such.patch", "field 'build.patches'"),
    ('name = "debian12-cpu"', 'name = "other"', "field 'name'"),
    ("[stack]", "[stacks]", "field 'stack'"),
    ('base_image = "debian:12"', "", "field 'platform.base_image'"),
    ('CPU_ONLY = "ON"', "CPU_ONLY = true", "field 'build.cmake'"),
    ("[platform]", "[platform", "not valid TOML"),
]


@pytest.mark.parametrize(("old", "new", "message"), MALFORMED)
def test_a_malformed_recipe_names_file_and_field(tmp_path, old, new, message):
    folder = tmp_path / "recipes"
    shutil.copytree(recipes_dir(), folder)
    path = folder / "debian12-cpu.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(RecipeError) as err:
        load_all(folder)
    assert "debian12-cpu.toml" in str(err.value) and message in str(err.value)


def test_an_unknown_alternative_is_reported(tmp_path):
    folder = tmp_path / "recipes"
    shutil.copytree(recipes_dir(), folder)
    path = folder / "ubuntu18.04-cuda10.2-cudnn7.6.5.toml"
    path.write_text(
        path.read_text().replace('alternative = "ubuntu18.04-cuda10.0"', 'alternative = "x"')
    )
    with pytest.raises(RecipeError, match=r"cudnn7.6.5.toml: field 'alternative'"):
        load_all(folder)


DEBIAN12 = HostFacts("debian", "12")
UBUNTU1604_GPU = HostFacts("ubuntu", "16.04", cuda="8.0", cudnn="5.1.10", gpu_arches=("61",))
UBUNTU1804 = HostFacts("ubuntu", "18.04")
UBUNTU1804_GPU = HostFacts("ubuntu", "18.04", cuda="10.0", cudnn="7.3.1", gpu_arches=("75",))
UBUNTU1804_ADA = HostFacts("ubuntu", "18.04", cuda="10.0", gpu_arches=("89",))
UBUNTU2404_ADA = HostFacts("ubuntu", "24.04", cuda="12.8", gpu_arches=("89",))
DEBIAN12_BLACKWELL = HostFacts("debian", "12", gpu_arches=("120",))
DEBIAN12_HOPPER = HostFacts("debian", "12", cuda="13.0", gpu_arches=("90",))
DEBIAN12_PASCAL = HostFacts("debian", "12", cuda="13.0", gpu_arches=("61",))
FEDORA = HostFacts("fedora", "40")
DEBIAN12_ARM = HostFacts("debian", "12", machine="aarch64")
DEBIAN12_RISCV = HostFacts("debian", "12", machine="riscv64")

RESOLVES = [
    (DEBIAN12, Request(), "debian12-cpu"),
    (DEBIAN12, Request(cpu_only=True), "debian12-cpu"),
    (DEBIAN12_ARM, Request(), "debian12-cpu"),
    (DEBIAN12, Request(recipe="debian12-cpu"), "debian12-cpu"),
    (UBUNTU1604_GPU, Request(), "ubuntu16.04-cuda8.0"),
    (UBUNTU1804_GPU, Request(), "ubuntu18.04-cuda10.0"),
    (UBUNTU1804, Request(cuda="10.0"), "ubuntu18.04-cuda10.0"),
    (UBUNTU1804, Request(cuda="10.0", cudnn="7.3"), "ubuntu18.04-cuda10.0"),
    (UBUNTU1804_GPU, Request(cuda="10.0", cudnn="7.3.1"), "ubuntu18.04-cuda10.0"),
    (DEBIAN12_BLACKWELL, Request(), "current-gpu-cuda13"),
    (UBUNTU2404_ADA, Request(), "current-gpu-cuda12"),  # CUDA 12.8 is what is installed
    (DEBIAN12_HOPPER, Request(), "current-gpu-cuda13"),
    (DEBIAN12_HOPPER, Request(cuda="12"), "current-gpu-cuda12"),
    (DEBIAN12_PASCAL, Request(), "current-gpu-cuda12"),  # CUDA 13 dropped Pascal
    (DEBIAN12_HOPPER, Request(cpu_only=True), "debian12-cpu"),
]


@pytest.mark.parametrize(("host", "request_", "expected"), RESOLVES)
def test_resolution(host, request_, expected):
    chosen = resolve(RECIPES, host, request_)
    assert chosen.recipe.name == expected
    assert chosen.why


REFUSALS = [
    (UBUNTU1804, Request(cuda="10.2"), ["known to be bad", "cuDNN 7.6.5", "ubuntu18.04-cuda10.0"]),
    (UBUNTU1804, Request(cuda="10.2", cudnn="7.6.5"), ["known to be bad", "use ubuntu18.04"]),
    (DEBIAN12, Request(recipe="ubuntu18.04-cuda10.2-cudnn7.6.5"), ["known to be bad"]),
    (DEBIAN12, Request(cuda="9.0"), ["no recipe for CUDA 9.0", "8.0, 10.0, 10.2, 12.8, 13.0"]),
    (DEBIAN12_PASCAL, Request(cuda="13.0"), ["cannot target this GPU", "sm_61"]),
    (DEBIAN12, Request(cuda="10.0"), ["fits Debian 12", "needs Ubuntu 18.04"]),
    (DEBIAN12, Request(recipe="ubuntu16.04-cuda8.0"), ["needs Ubuntu 16.04", "is Debian 12"]),
    (DEBIAN12, Request(recipe="nope"), ["no recipe named 'nope'", "debian12-cpu"]),
    (UBUNTU1804_ADA, Request(cuda="10.0"), ["cannot target this GPU", "sm_89", "sm_75"]),
    (UBUNTU1804, Request(cuda="10.0", cudnn="8.0"), ["no recipe for CUDA 10.0 with cuDNN 8.0"]),
    (FEDORA, Request(), ["no CPU-only recipe fits Fedora 40", "needs Debian 12"]),
    (DEBIAN12_RISCV, Request(), ["riscv64"]),
    (DEBIAN12, Request(cudnn="7.3.1"), ["--cudnn needs --cuda"]),
    (DEBIAN12, Request(cuda="10.0", cpu_only=True), ["--cpu-only cannot be combined"]),
    (DEBIAN12, Request(recipe="debian12-cpu", cuda="10.0"), ["CPU only, not CUDA 10.0"]),
]


@pytest.mark.parametrize(("host", "request_", "words"), REFUSALS)
def test_refusals_say_why(host, request_, words):
    with pytest.raises(CaffedocError) as err:
        resolve(RECIPES, host, request_)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_recipes_command_lists_them():
    res = caffedoc("recipes")
    assert res.returncode == 0, res.stderr
    for r in RECIPES:
        assert r.name in res.stdout
    assert "BAD" in res.stdout and "cuDNN 7.6.5" in res.stdout
    data = json.loads(caffedoc("recipes", "--json").stdout)
    assert {d["name"] for d in data} == set(BY_NAME)
    assert next(d for d in data if d["name"] == "debian12-cpu")["base_image"] == "debian:12"
    # One status scale; a verified recipe names the test that proves it and where.
    assert {d["status"] for d in data} <= {"verified", "reported", "unverified", "blocked", "bad"}
    assert next(d for d in data if d["name"] == "debian12-cpu")["verified"]["by"].startswith(
        "tests/test_build_real.py"
    )
    assert "by: tests/test_build_real.py" in res.stdout
    for d in data:
        assert (d["status"] == "verified") == (d["verified"] is not None), d["name"]
        assert (d["status"] == "verified") == (d["reason"] is None), d["name"]
        if d["verified"]:
            tests = [t.strip() for t in d["verified"]["by"].split(",")]
            assert all((REPO / t).is_file() for t in tests), tests


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--cuda", "10.2"], ["known to be bad", "ubuntu18.04-cuda10.0"]),
        (["--cuda", "9.0"], ["no recipe for CUDA 9.0"]),
        (["--recipe", "ubuntu16.04-cuda8.0"], ["needs Ubuntu 16.04"]),
        (["--recipe", "nope"], ["no recipe named"]),
    ],
)
def test_build_refuses_with_one_line(args, words):
    """This machine is Debian 12 without a GPU, as the project's machines are."""
    res = caffedoc("build", *args, "--dry-run")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("caffedoc: error: ")
    for word in words:
        assert word in lines[0]


def test_the_recipes_folder_is_found_from_the_package():
    assert (recipes_dir() / "debian12-cpu.toml").is_file()
    assert Path(recipes_dir(), "patches").is_dir()


def test_a_non_editable_install_finds_the_recipes(tmp_path):
    """`pip install .` copies the package: the recipes, patches and manifests must travel."""
    tree, wheels = tmp_path / "tree", tmp_path / "wheels"
    junk = shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "tests", "benchmarks")
    shutil.copytree(REPO, tree, symlinks=True, ignore=junk)  # pip builds in the tree it gets
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", str(tree), "-w", wheels], check=True)
    wheel = next(wheels.glob("caffedoc-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for r in RECIPES:
        assert f"caffedoc/data/recipes/{r.path.name}" in names
        for p in (*r.patches, r.source.manifest):
            assert f"caffedoc/data/recipes/{p.relative_to(recipes_dir().resolve())}" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], check=True)
    res = subprocess.run(
        [venv / "bin" / "caffedoc", "recipes", "--json"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    listed = json.loads(res.stdout)
    assert {d["name"] for d in listed} == set(BY_NAME)
    assert all(str(venv) in d["file"] for d in listed)
