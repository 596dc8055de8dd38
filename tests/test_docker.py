"""`caffedoc docker`: the committed Dockerfiles are what the recipes generate, their
structure keeps the final image small, and every caffedoc command they run is one the
real CLI accepts; the Debian 12 image's verification commands run here for real.

Docker itself cannot run on these machines: building the images is not tested here.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import distro
import pytest
import typer.main

from caffedoc import docker
from caffedoc.cli import app
from caffedoc.layout import PTH_NAME, pin
from caffedoc.recipes import load_all
from tests.conftest import REPO, caffedoc
from tests.fixtures.envs import check_env
from tests.fixtures.roots import PATH, copy_checkout, debootstrap, in_root, ok, reach_registries

COMMITTED = REPO / "docker"
RECIPES = load_all()
IMAGED = [r for r in RECIPES if r.status != "bad"]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = text.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            out.append([])
        out[-1].append(ins)
    return out


def caffedoc_commands(text: str) -> list[list[str]]:
    """Each caffedoc invocation in a RUN, as argv (without a trailing redirection)."""
    found = []
    for word, args in instructions(text):
        if word != "RUN":
            continue
        for part in args.split("&&"):
            argv = shlex.split(part)
            if argv and argv[0] == "caffedoc":
                found.append(argv[: argv.index(">")] if ">" in argv else argv)
    return found


def parse_with_the_cli(argv: list[str]) -> None:
    """Let the real command line parse (and convert) the arguments, without running."""
    group = typer.main.get_command(app)
    with group.make_context("caffedoc", argv[1:2]) as ctx:
        command = group.get_command(ctx, argv[1])
        assert command is not None, argv
        command.make_context(argv[1], argv[2:], parent=ctx).close()


# ---------------------------------------------------------------- generation


def test_committed_dockerfiles_are_what_the_command_generates(tmp_path):
    res = caffedoc("docker", "--out", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    generated = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in COMMITTED.glob("*.Dockerfile"))
    assert generated == committed, "regenerate with `caffedoc docker` at the repository root"
    for name in generated:
        assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes(), name
    assert res.stdout.split() == [str(tmp_path / n) for n in generated]


def test_one_image_per_recipe_with_a_base_image_and_none_for_a_bad_one(tmp_path):
    assert sorted(f"{r.name}.Dockerfile" for r in IMAGED) == sorted(
        p.name for p in COMMITTED.glob("*.Dockerfile")
    )
    bad = [r for r in RECIPES if r.status == "bad"]
    assert bad, "the recipes record a known-bad combination"
    for r in bad:
        res = caffedoc("docker", "--recipe", r.name, "--out", str(tmp_path), cwd=tmp_path)
        assert res.returncode == 2
        [line] = res.stderr.strip().splitlines()
        assert line.startswith(f"caffedoc: error: recipe {r.name} is known to be bad")
    assert list(tmp_path.iterdir()) == []
    res = caffedoc("docker", "--recipe", "no-such", "--out", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 2 and "no recipe named 'no-such'" in res.stderr


def test_one_recipe_only_and_the_same_bytes_each_time(tmp_path):
    for out in (tmp_path / "a", tmp_path / "b"):
        res = caffedoc("docker", "--recipe", "debian12-cpu", "--out", str(out), cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert [p.name for p in out.iterdir()] == ["debian12-cpu.Dockerfile"]
    assert (tmp_path / "a" / "debian12-cpu.Dockerfile").read_bytes() == (
        tmp_path / "b" / "debian12-cpu.Dockerfile"
    ).read_bytes()


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize("recipe", IMAGED, ids=lambda r: r.name)
def test_structure(recipe):
    text = (COMMITTED / f"{recipe.name}.Dockerfile").read_text()
    uv, build, final = stages(text)
    assert uv[0] == ("FROM", f"{docker.UV_IMAGE} AS uv")
    assert build[0] == ("FROM", f"{recipe.base_image} AS build")
    assert final[0] == ("FROM", docker.runtime_image(recipe.base_image))
    # The build stage builds exactly this recipe into the prefix the final stage takes.
    build_argv = [a for a in caffedoc_commands("\n".join(f"{w} {a}" for w, a in build))]
    assert ["caffedoc", "build", "--recipe", recipe.name] == build_argv[0][:4]
    assert build_argv[0][build_argv[0].index("--prefix") + 1] == docker.PREFIX
    # The final stage takes installed things only: no source, no build tree, no cache.
    copies = [a for w, a in final if w == "COPY"]
    taken = [a.split()[1] for a in copies]
    assert all(a.startswith("--from=build ") for a in copies), copies
    assert sorted(taken) == sorted([docker.RUNTIME_LIST, docker.PYTHONS, docker.TOOL,
                                    docker.PYCAFFE, docker.PREFIX])  # fmt: skip
    assert not any(t.startswith(("/src", "/root", "/tmp")) for t in taken)
    assert not [w for w, _ in final if w == "ADD"]
    # It ends with its own proof: check, then a real training step.
    runs = [a for w, a in final if w == "RUN"]
    assert f"RUN {docker.LINK}" in [f"{w} {a}" for w, a in final]
    assert ("ENV", f"PATH={docker.PYCAFFE}/bin:$PATH") in final
    assert runs[-2].startswith("caffedoc check --python /opt/pycaffe/bin/python")
    assert runs[-1] == "caffedoc smoke --python /opt/pycaffe/bin/python --cpu"
    assert f"recipe={recipe.name}" in text  # the build stage is held to its recipe


def test_runtime_images():
    assert (
        docker.runtime_image("nvidia/cuda:10.0-cudnn7-devel-ubuntu18.04")
        == "nvidia/cuda:10.0-cudnn7-runtime-ubuntu18.04"
    )
    assert docker.runtime_image("debian:12") == "debian:12"


@pytest.mark.parametrize("recipe", IMAGED, ids=lambda r: r.name)
def test_every_caffedoc_command_is_accepted_by_the_real_cli(recipe):
    commands = caffedoc_commands((COMMITTED / f"{recipe.name}.Dockerfile").read_text())
    assert [c[1] for c in commands] == ["build", "check", "docker", "check", "smoke"]
    for argv in commands:
        parse_with_the_cli(argv)


def test_the_parser_check_rejects_what_the_cli_rejects():
    # typer's own click or a vendored copy: the messages are the stable part.
    with pytest.raises(Exception, match="No such option: --recipie"):
        parse_with_the_cli(["caffedoc", "build", "--recipie", "debian12-cpu"])
    with pytest.raises(Exception, match="is not a valid int"):
        parse_with_the_cli(["caffedoc", "smoke", "--gpu", "first"])


# ---------------------------------------------------------------- for real, here


@pytest.mark.caffe
def test_the_debian12_images_verification_runs_here(built_caffe, tmp_path):
    """The image's own commands with its paths mapped onto the Caffe built here."""
    text = (COMMITTED / "debian12-cpu.Dockerfile").read_text()
    mapped = {f"{docker.PYCAFFE}/bin/python": str(built_caffe.python),
              docker.PREFIX: str(built_caffe.prefix)}  # fmt: skip
    env = check_env(tmp_path / "home", built_caffe.python.parent)
    ran = []
    for argv in caffedoc_commands(text)[1:]:  # all but the build (the fixture did that)
        argv = [mapped.get(a, a) for a in argv]
        res = caffedoc(*argv[1:], env=env, cwd=tmp_path)
        assert res.returncode == 0, f"{argv}\n{res.stdout}\n{res.stderr}"
        ran.append((argv[1], res.stdout))
    assert [name for name, _ in ran] == ["check", "docker", "check", "smoke"]
    packages = ran[1][1].split()
    for expected in ("libprotobuf32", "libopenblas0-pthread", "libboost-python1.74.0",
                     "libgoogle-glog0v6", "libhdf5-103-1", "libpython3.11"):  # fmt: skip
        assert expected in packages, packages
    assert not [p for p in packages if p.endswith("-dev")]
    status = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev}\n", *packages],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")  # fmt: skip
    assert all(s.startswith("ii") for s in status if s), status


def test_runtime_packages_of_a_folder_without_caffe(tmp_path):
    res = caffedoc("docker", "--runtime-packages", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 2
    [line] = res.stderr.strip().splitlines()
    assert line == f"caffedoc: error: {tmp_path}: no installed Caffe (no ELF files) in it"


def test_the_docker_readme_names_every_image():
    readme = (COMMITTED / "README.md").read_text()
    for recipe in IMAGED:
        assert f"docker/{recipe.name}.Dockerfile" in readme


# ---------------------------------------------------------------- the final stage, without Docker


def in_root_here(root: Path, command: str, **kw) -> subprocess.CompletedProcess:
    """As the image runs its commands: pycaffe's environment first on PATH."""
    return in_root(root, command, path=f"{docker.PYCAFFE}/bin:{PATH}", **kw)


@pytest.mark.caffe
def test_the_debian12_final_stage_works_from_what_it_holds(built_caffe, tmp_path):
    """The final stage, built without Docker: a bare Debian 12 (debootstrap minbase), the
    final stage's own apt RUN with the runtime list derived from the Caffe built here, the
    installed prefix and pycaffe's environment copied in; then its caffedoc RUNs, chrooted.
    What differs from the image: caffedoc runs on Debian's Python, not uv's."""
    if (distro.id(), distro.major_version()) != ("debian", "12"):
        pytest.skip("needs Debian 12 (chroot into a Debian 12 root)")
    final = stages((COMMITTED / "debian12-cpu.Dockerfile").read_text())[-1]
    root = debootstrap(tmp_path / "root")
    listed = caffedoc("docker", "--runtime-packages", str(built_caffe.prefix))
    (root / docker.RUNTIME_LIST[1:]).write_text(ok(listed))
    [apt_run] = [a for w, a in final if w == "RUN" and "apt-get install" in a]
    ok(in_root_here(root, apt_run))
    ok(
        in_root_here(
            root,
            "apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv",
        )
    )
    reach_registries(root)
    # What the build stage makes and the final stage copies: the two environments, the prefix.
    copy_checkout(root / "src" / "caffedoc")
    shutil.copytree(built_caffe.prefix, root / docker.PREFIX[1:], symlinks=True)
    ok(in_root_here(root, " && ".join([
        f"python3 -m venv {docker.TOOL}", f"{docker.TOOL}/bin/pip install -q /src/caffedoc",
        docker.LINK, f"python3 -m venv {docker.PYCAFFE}",
        f"{docker.PYCAFFE}/bin/pip install -q {' '.join(docker.PYCAFFE_PIP)}",
        "apt-get purge -y -qq python3-venv python3.11-venv", "rm -rf /src /var/lib/apt/lists/*",
    ])))  # fmt: skip
    site = next((root / docker.PYCAFFE[1:] / "lib").glob("python3*/site-packages"))
    pin(site / PTH_NAME, Path(docker.PREFIX))  # as `caffedoc build` pins, to the image's path

    nothing = ok(in_root_here(root, "command -v gcc c++ cmake; dpkg-query -W -f='${Package}\\n'"))
    assert not [p for p in nothing.split() if p.endswith("-dev") or p.startswith("/")], nothing
    runs = [a for w, a in final if w == "RUN" and a.startswith("caffedoc ")]
    assert [r.split()[1] for r in runs] == ["check", "smoke"]
    check = ok(in_root_here(root, runs[0] + " --strict", timeout=300))
    assert "No problems found" in check
    assert f"imports {docker.PREFIX}/python/caffe (CPU build)" in check
    smoke = ok(in_root_here(root, runs[1], timeout=300))
    assert smoke.startswith("smoke: passed on cpu")
    shutil.rmtree(root)  # 1.3 GB; nothing is mounted there outside the command's namespace
