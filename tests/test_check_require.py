"""`check --require recipe=NAME` and `--strict`: on this machine for real, and on other
machines through their facts (the comparison is a function of facts and recipe)."""

from __future__ import annotations

import json
import subprocess

import distro
import pytest

from caffedoc.probes import Facts
from caffedoc.recipes import load_all
from caffedoc.require import (
    Machine,
    compiler_version,
    differences,
    finding,
    machine_from,
    recipe_name,
)
from tests.conftest import caffedoc
from tests.fixtures.envs import check_env, removed_venv_pip

RECIPES = {r.name: r for r in load_all()}
CUDA10 = RECIPES["ubuntu18.04-cuda10.0"]
CUDA8 = RECIPES["ubuntu16.04-cuda8.0"]
CPU = RECIPES["debian12-cpu"]


def _check(built, tmp_path, *args: str, path=()):
    env = check_env(tmp_path / "home", *path, built.python.parent)
    res = caffedoc("check", "--python", str(built.python), *args, env=env, cwd=tmp_path)
    assert "Traceback" not in res.stderr, res.stderr
    return res


# ---------------------------------------------------------------- this machine, for real


@pytest.mark.caffe
def test_this_machine_matches_debian12_cpu(built_caffe, tmp_path):
    if (distro.id(), distro.major_version()) != ("debian", "12"):
        pytest.skip("the debian12-cpu recipe describes Debian 12 machines")
    res = _check(built_caffe, tmp_path, "--require", "recipe=debian12-cpu", "--json")
    report = json.loads(res.stdout)
    assert res.returncode == 0, res.stdout
    [match] = [f for f in report["findings"] if f["id"] == "recipe-match"]
    assert match["severity"] == "info"
    assert "debian12-cpu" in match["title"]
    assert not [f for f in report["findings"] if f["id"] == "recipe-mismatch"]


@pytest.mark.caffe
def test_this_machine_differs_from_ubuntu18_cuda10(built_caffe, tmp_path):
    res = _check(built_caffe, tmp_path, "--require", "recipe=ubuntu18.04-cuda10.0")
    assert res.returncode == 1
    text = res.stdout
    title = "this machine does not match the required recipe: recipe ubuntu18.04-cuda10.0"
    assert f"✗ [recipe-mismatch] {title}" in text
    os_line = f"distribution: {distro.id()} {distro.version()}, the recipe needs Ubuntu 18.04"
    assert os_line in text
    assert "the recipe is for Python 2.7" in text  # the venv is Python 3
    assert "the recipe needs CUDA 10.0" in text  # no toolkit, or another one
    assert "the recipe needs cuDNN 7.3.1" in text
    # Packages only Ubuntu 18.04 has: dpkg-query was asked for real.
    packages = next(line for line in text.splitlines() if "packages of the recipe" in line)
    assert "libhdf5-serial-dev" in packages
    assert "python-dev" in packages
    assert "1 error(s)" in text


@pytest.mark.caffe
def test_strict_fails_on_warnings_and_only_then(built_caffe, tmp_path):
    # A pip first on PATH naming a removed venv's Python (a real warning).
    stale = removed_venv_pip(tmp_path / "stale" / "bin")
    plain = _check(built_caffe, tmp_path, "--json", path=(stale,))
    report = json.loads(plain.stdout)
    assert report["status"] == "warning", report["findings"]
    assert plain.returncode == 0
    strict = _check(built_caffe, tmp_path, "--strict", path=(stale,))
    assert strict.returncode == 1
    assert "[interpreter-drift]" in strict.stdout
    # Without the warning, --strict passes.
    clean = _check(built_caffe, tmp_path, "--strict", "--json")
    assert json.loads(clean.stdout)["status"] == "ok"
    assert clean.returncode == 0


@pytest.mark.parametrize(
    "spec,says",
    [
        ("recipe", "expected recipe=NAME"),
        ("recipe=", "expected recipe=NAME"),
        ("cuda=10.0", "expected recipe=NAME"),
        ("recipe=no-such", "no recipe named 'no-such'; known recipes: "),
    ],
)
def test_bad_require_is_bad_usage(tmp_path, spec, says):
    res = caffedoc("check", "--require", spec, cwd=tmp_path, timeout=60)
    assert res.returncode == 2
    assert res.stdout == ""  # refused before anything was examined
    [line] = res.stderr.strip().splitlines()
    assert line.startswith("caffedoc: error: --require")
    assert says in line


# ---------------------------------------------------------------- other machines, by facts


def _ubuntu18(**change) -> Machine:
    """An Ubuntu 18.04 GPU machine set up as the cuda10.0 recipe says."""
    facts = {
        "distro": "ubuntu",
        "version": "18.04",
        "machine": "x86_64",
        "compiler": "c++ (Ubuntu 7.5.0-3ubuntu1~18.04) 7.5.0",
        "python": "2.7.17",
        "cuda": "10.0",
        "cudnn": "7.3.1",
        "gpu_arches": ("75",),
        "packages": {p: "1" for p in CUDA10.apt},
    }
    facts.update(change)
    return Machine(**facts)


def test_a_machine_set_up_as_the_recipe_says_matches():
    assert differences(CUDA10, _ubuntu18()) == []
    f = finding(CUDA10, [])
    assert (f.id, f.severity.value) == ("recipe-match", "info")


@pytest.mark.parametrize(
    "change,says",
    [
        ({"version": "20.04"}, "distribution: ubuntu 20.04, the recipe needs Ubuntu 18.04"),
        ({"distro": "debian", "version": "12"}, "distribution: debian 12"),
        ({"machine": "aarch64"}, "machine: aarch64, the recipe is for x86_64"),
        ({"compiler": "c++ (Ubuntu 8.4.0-1ubuntu1~18.04) 8.4.0"}, "compiler: gcc 8.4.0"),
        ({"compiler": "Ubuntu clang version 10.0.0-4ubuntu1"}, "compiler: clang 10.0.0"),
        ({"compiler": None}, "compiler: no C++ compiler found"),
        ({"python": "3.6.9"}, "python: 3.6.9, the recipe is for Python 2.7"),
        ({"python": None}, "python: the interpreter could not be run"),
        ({"cuda": "10.2"}, "CUDA: 10.2, the recipe needs CUDA 10.0"),
        ({"cuda": None}, "CUDA: no toolkit found, the recipe needs CUDA 10.0"),
        # The cuDNN that the seeds found broken with upstream Caffe:
        ({"cudnn": "7.6.5"}, "cuDNN: 7.6.5, the recipe needs cuDNN 7.3.1"),
        ({"cudnn": None}, "cuDNN: none found"),
        ({"gpu_arches": ("75", "86")}, "GPU: sm_86 is beyond the recipe's CUDA 10.0"),
    ],
)
def test_each_difference_is_named(change, says):
    diffs = differences(CUDA10, _ubuntu18(**change))
    assert len(diffs) == 1, diffs
    assert diffs[0].startswith(says), diffs


def test_missing_packages_are_listed_with_the_command_that_installs_them():
    have = {p: "1" for p in CUDA10.apt if p not in ("libopenblas-dev", "python-numpy")}
    diffs = differences(CUDA10, _ubuntu18(packages=have))
    assert diffs == ["packages of the recipe not installed: libopenblas-dev python-numpy"]
    f = finding(CUDA10, diffs)
    assert f.severity.value == "error"
    assert f.fix == "Install them: `apt-get install libopenblas-dev python-numpy`"
    assert f.evidence == tuple(diffs)


def test_without_dpkg_packages_are_not_judged():
    assert differences(CUDA10, _ubuntu18(packages=None)) == []


def test_version_precision_is_the_recipes():
    # "gcc 5.4" means gcc 5; "Python 3" any 3.x; "cuDNN 9" any 9.x.
    xenial = _ubuntu18(version="16.04", compiler="c++ (Ubuntu 5.4.0-6ubuntu1~16.04.12) 5.4.0",
                       cuda="8.0", cudnn="5.1.10", gpu_arches=("61",),
                       packages={p: "1" for p in CUDA8.apt})  # fmt: skip
    assert differences(CUDA8, xenial) == []
    assert differences(CUDA10, _ubuntu18(cudnn="7.6.5")) == [
        "cuDNN: 7.6.5, the recipe needs cuDNN 7.3.1"
    ]


def test_a_recipe_that_brings_its_toolkit_needs_no_cuda_on_the_machine():
    current = RECIPES["current-gpu-cuda13"]
    bare = Machine("debian", "12", "x86_64", "c++ (Debian 12.2.0-14) 12.2.0", "3.11.2",
                   cuda=None, cudnn=None, packages={p: "1" for p in current.apt})  # fmt: skip
    assert differences(current, bare) == []
    pascal = Machine("debian", "12", "x86_64", "c++ (Debian 12.2.0-14) 12.2.0", "3.11.2",
                     cuda=None, cudnn=None, gpu_arches=("61",),
                     packages={p: "1" for p in current.apt})  # fmt: skip
    assert differences(current, pascal) == [
        "GPU: sm_61 is beyond the recipe's CUDA 13.0 (sm_75 to sm_120)"
    ]


def test_a_cpu_recipe_ignores_cuda():
    debian = Machine("debian", "12", "x86_64", "c++ (Debian 12.2.0-14) 12.2.0", "3.11.2",
                     cuda="13.0", cudnn=None, packages={p: "1" for p in CPU.apt})  # fmt: skip
    assert differences(CPU, debian) == []


def test_compiler_version_of_this_machines_compiler():
    res = subprocess.run(["c++", "--version"], capture_output=True, text=True, check=True)
    first = res.stdout.splitlines()[0]
    family, version = compiler_version(first)
    assert family in ("gcc", "clang")
    macro = "__clang_major__" if family == "clang" else "__GNUC__"
    out = subprocess.run(
        ["c++", "-dM", "-E", "-x", "c++", "/dev/null"], capture_output=True, text=True, check=True
    ).stdout
    major = next(
        line.split()[2] for line in out.splitlines() if line.startswith(f"#define {macro} ")
    )
    assert version.split(".")[0] == major


def test_recipe_name_parsing():
    assert recipe_name("recipe=debian12-cpu") == "debian12-cpu"
    assert recipe_name(" recipe = debian12-cpu ") == "debian12-cpu"


def test_facts_of_failed_probes_are_differences_not_crashes():
    """A crashed or hung probe leaves its area empty: the requirement is not met."""
    machine = machine_from(Facts(failures={"system": "crashed", "python": "hung"}), None)
    diffs = differences(CPU, machine)
    assert diffs[0].startswith("the distribution could not be read")
    assert "machine: unknown, the recipe is for x86_64, aarch64" in diffs
    assert "compiler: no C++ compiler found, the recipe uses gcc 12" in diffs
    assert "python: the interpreter could not be run, the recipe is for 3" in diffs
