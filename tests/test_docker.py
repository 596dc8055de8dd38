"""`caffedoc docker`: the committed Dockerfiles are what the recipes generate, their
structure keeps the final image small, they build offline from their context (no GitHub,
the distro's Python where new enough), their headers say the recipe's status and what
they still need from outside, and every caffedoc command they run is one the real CLI
accepts; the Debian 12 image's verification commands run here for real. Building the
images with buildah is tests/test_images.py's.
"""

from __future__ import annotations

import shlex
import subprocess

import pytest
import typer.main

from caffedoc import docker
from caffedoc.cli import app
from caffedoc.recipes import load_all
from tests.conftest import REPO, caffedoc
from tests.fixtures.envs import check_env

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
            # RUN flags (a cache mount) and environment assignments before the command
            while argv and (argv[0].startswith("--mount=") or "=" in argv[0]):
                argv = argv[1:]
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
    *uv, build, final = stages(text)
    # caffedoc on the distro's own Python where it is new enough; uv's only where not.
    assert bool(uv) == (not docker.distro_python(recipe))
    assert [s[0] for s in uv] == ([("FROM", f"{docker.UV_IMAGE} AS uv")] if uv else [])
    assert build[0] == ("FROM", f"{recipe.base_image} AS build")
    assert final[0] == ("FROM", docker.runtime_image(recipe.base_image))
    # Offline from the context: nothing added from a URL, caffedoc and the verified source
    # copied in; the host's CA is an ARG of the build stage only.
    assert not [w for stage in stages(text) for w, _ in stage if w == "ADD"]
    assert "github" not in text.lower() or uv
    tarball = recipe.source.tarball
    assert ("COPY", f"{docker.CONTEXT_SOURCES}/{tarball} /src/{tarball}") in build
    assert ("COPY", f"{docker.CONTEXT_CAFFEDOC} /src/caffedoc") in build
    assert ("ARG", "PIP_CERT") in build and not [a for w, a in final if w == "ARG"]
    # The build stage builds exactly this recipe, from that source, into the prefix the
    # final stage takes, with ccache in a cache mount.
    [build_run] = [a for w, a in build if w == "RUN" and " caffedoc build " in a]
    mounts = [
        docker.CCACHE_MOUNT,
        *([docker.WHEELS_MOUNT] if docker.toolkit_wheels(recipe) else []),
    ]
    assert build_run.startswith(f"{' '.join(mounts)} CAFFEDOC_CCACHE_DIR={docker.CCACHE} ")
    build_argv = caffedoc_commands("\n".join(f"{w} {a}" for w, a in build))
    assert ["caffedoc", "build", "--recipe", recipe.name] == build_argv[0][:4]
    assert build_argv[0][build_argv[0].index("--prefix") + 1] == docker.PREFIX
    assert build_argv[0][build_argv[0].index("--source") + 1] == f"/src/{tarball}"
    # The final stage takes installed things only: no source, no build tree, no cache.
    copies = [a for w, a in final if w == "COPY"]
    taken = [a.split()[1] for a in copies]
    assert all(a.startswith("--from=build ") for a in copies), copies
    if docker.packs_wheel(recipe):
        # The build packs the wheel into the wheelhouse; the final stage is pip alone from
        # it, offline, through a mount (no layer holds the wheels), and copies nothing.
        assert build_argv[0][-3:] == ["--wheel", "--out", docker.WHEELHOUSE]
        assert taken == []
        [install] = [a for w, a in final if w == "RUN" and docker.WHEELHOUSE in a]
        assert install.startswith(docker.WHEELHOUSE_MOUNT + " ")
        pips = [p.split() for p in install.split("&&") if " install " in p]
        assert [p[-1] for p in pips] == ["caffedoc", "caffe"], pips
        assert all("--no-index" in p for p in pips) and "ARG" not in [w for w, _ in final]
    else:
        assert "--wheel" not in build_argv[0]
        own_python = [] if docker.distro_python(recipe) else [docker.PYTHONS]
        assert sorted(taken) == sorted([docker.RUNTIME_LIST, *own_python, docker.TOOL,
                                        docker.PYCAFFE, docker.PREFIX])  # fmt: skip
        assert not any(t.startswith(("/src", "/root", "/tmp")) for t in taken)
    # It ends with its own proof: check, then a real training step.
    runs = [a for w, a in final if w == "RUN"]
    assert any(a.endswith(docker.LINK) for w, a in final if w == "RUN")
    assert ("ENV", f"PATH={docker.PYCAFFE}/bin:$PATH") in final
    strict = "--strict " if recipe.kind == "cpu" or docker.toolkit_wheels(recipe) else ""
    strict += "--no-gpu " if recipe.kind == "cuda" else ""
    assert runs[-2] == f"caffedoc check {strict}--python /opt/pycaffe/bin/python"
    assert runs[-1] == "caffedoc smoke --python /opt/pycaffe/bin/python --cpu"
    assert f"--require recipe={recipe.name}" in text  # the build stage is held to its recipe


@pytest.mark.parametrize("recipe", IMAGED, ids=lambda r: r.name)
def test_the_header_says_the_status_and_what_comes_from_outside(recipe):
    head = [line for line in (COMMITTED / f"{recipe.name}.Dockerfile").read_text().splitlines()
            if line.startswith("#")]  # fmt: skip
    assert f"# Status {recipe.proof()}" in head
    needs = next(line for line in head if line.startswith("# Needs from outside"))
    if recipe.base_image.startswith("debian:"):
        assert needs.endswith("PyPI (nothing else)."), needs
    else:
        assert f"the base image {recipe.base_image} from a registry" in needs
    assert ("uv's CPython" in needs) == (not docker.distro_python(recipe))
    assert f"caffedoc docker --build {recipe.name}" in "\n".join(head)


def test_the_ccache_volume_form_differs_only_by_the_cache_mount():
    recipe = next(r for r in IMAGED if r.name == "debian12-cpu")
    mounted, volume = docker.render(recipe), docker.render(recipe, ccache_volume=True)
    assert mounted.replace(f"{docker.CCACHE_MOUNT} ", "") == volume != mounted


def test_runtime_images():
    assert (
        docker.runtime_image("nvidia/cuda:10.0-cudnn7-devel-ubuntu18.04")
        == "nvidia/cuda:10.0-cudnn7-runtime-ubuntu18.04"
    )
    assert docker.runtime_image("debian:12") == "debian:12"


@pytest.mark.parametrize("recipe", IMAGED, ids=lambda r: r.name)
def test_every_caffedoc_command_is_accepted_by_the_real_cli(recipe):
    commands = caffedoc_commands((COMMITTED / f"{recipe.name}.Dockerfile").read_text())
    runtime = [] if docker.packs_wheel(recipe) else ["docker"]
    assert [c[1] for c in commands] == ["build", "check", *runtime, "check", "smoke"]
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
    # All but the build (the fixture did that), and the runtime package list a CUDA
    # image's final stage installs beside the copied prefix.
    for argv in [*caffedoc_commands(text)[1:], docker.RUNTIME_COMMAND]:
        argv = [mapped.get(a, a) for a in argv]
        res = caffedoc(*argv[1:], env=env, cwd=tmp_path)
        assert res.returncode == 0, f"{argv}\n{res.stdout}\n{res.stderr}"
        ran.append((argv[1], res.stdout))
    assert [name for name, _ in ran] == ["check", "check", "smoke", "docker"]
    packages = ran[3][1].split()
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


def test_the_docker_readme_names_every_image_and_its_status():
    readme = (COMMITTED / "README.md").read_text()
    for recipe in IMAGED:
        [row] = [line for line in readme.splitlines()
                 if line.startswith(f"| `docker/{recipe.name}.Dockerfile`")]  # fmt: skip
        assert f"| {recipe.status} |" in row, row
