"""`caffedoc docker --build`: the debian12-cpu image built for real with buildah from a
base image made here by debootstrap (no registry is reachable), offline from its build
context; its own RUN steps prove it (`check --strict --require`, `check --strict`,
`smoke`); its final stage is pip alone installing the portable wheel the build stage
packed; the final image holds no trace of the host's CA bundle; an image held to the
wrong recipe fails the build with the finding.

The image's compile reuses caffedoc's ccache (a build volume): `built_caffe` runs first
so a CI run compiles Caffe once, and a warm run's image build is mostly package installs.
The Debian 13 image is built only where CAFFEDOC_SLOW_IMAGES=1 asks (its compile is not a
cache hit in CI's time).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import distro
import pytest

from caffedoc import docker
from caffedoc.build import paths
from caffedoc.build.engine import build_env
from caffedoc.images import context
from caffedoc.images.engine import BUILDAH_DEFAULTS
from caffedoc.recipes import load_all
from tests.conftest import caffedoc

BY_NAME = {r.name: r for r in load_all()}
RECIPE = BY_NAME["debian12-cpu"]
TAG = "caffe:debian12-cpu"
PYTHON = f"{docker.PYCAFFE}/bin/python"


def buildah(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, **BUILDAH_DEFAULTS}
    return subprocess.run(["buildah", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)  # fmt: skip


def needs_buildah() -> None:
    if os.geteuid() != 0 or distro.id() != "debian" or not shutil.which("buildah"):
        pytest.skip("needs root on Debian with buildah (.ci/run installs it)")


def run_in(image: str, command: str) -> subprocess.CompletedProcess:
    made = buildah("from", "--pull-never", image)
    assert made.returncode == 0, made.stderr
    ctr = made.stdout.strip().splitlines()[-1]
    try:
        return buildah("run", ctr, "--", "sh", "-c", command, timeout=900)
    finally:
        buildah("rm", ctr)


STEP = re.compile(r"^\[\d+/\d+\] STEP \d+/\d+: ", re.M)


def proof_steps(log: str) -> dict[str, list[str]]:
    """The image's `caffedoc check` and `caffedoc smoke` RUN steps, each with its output."""
    steps = STEP.split(log)[1:]
    out: dict[str, list[str]] = {"check": [], "smoke": []}
    for step in steps:
        for what in out:
            if step.startswith(f"RUN caffedoc {what} "):
                out[what].append(step)
    return out


def cases(junit: Path) -> dict[str, ET.Element]:
    return {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}


@pytest.fixture(scope="module")
def image(built_caffe, tmp_path_factory):
    """The debian12-cpu image, built as a user would (the ccache warm from built_caffe)."""
    needs_buildah()
    junit = tmp_path_factory.mktemp("junit") / "images.xml"
    start = time.monotonic()
    res = caffedoc("docker", "--build", "debian12-cpu", "--engine", "buildah",
                   "--base-from-debootstrap", "--junit", str(junit), timeout=3 * 3600)  # fmt: skip
    seconds = time.monotonic() - start
    log = paths.cache_root() / "images" / "debian12-cpu.log"
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}\n{log.read_text()[-6000:]}"
    print(f"\ndebian12-cpu image: {seconds:.0f} s; {res.stdout}")
    return res, junit, log.read_text()


@pytest.mark.caffe
def test_the_debian12_image_builds_offline_and_proves_itself(image):
    res, junit, log = image
    assert f"debian12-cpu: built and verified as {TAG}" in res.stdout
    case = cases(junit)["debian12-cpu"]
    assert case.find("failure") is None and case.find("skipped") is None
    # The base came from debootstrap, cached; nothing was pulled.
    assert (paths.cache_root() / "roots" / "bookworm.tar").is_file()
    # Its own RUN steps proved it: held to the recipe in the build stage, then checked
    # strictly and trained in the final stage, which has only what Caffe runs with. A
    # layer taken from buildah's cache had the same inputs: it was proved when it was made
    # (and `buildah run` proves the image again below).
    assert "--require recipe=debian12-cpu" in log
    proof = proof_steps(log)
    assert (len(proof["check"]), len(proof["smoke"])) == (2, 1), log[-4000:]
    for what, said in (("check", "No problems found"), ("smoke", "smoke: passed on cpu")):
        for step in proof[what]:
            assert "--> Using cache" in step or said in step, step[-3000:]
    assert "github" not in docker.render(RECIPE).lower()


@pytest.mark.caffe
def test_the_final_image_runs_caffe_and_keeps_no_trace_of_the_host_ca(image):
    inspect = buildah("inspect", "--type", "image", TAG)
    assert inspect.returncode == 0, inspect.stderr
    config = json.loads(inspect.stdout)
    env = config["OCIv1"]["config"].get("Env", [])
    assert not [e for e in env if "PIP_CERT" in e or "host-ca" in e], env
    history = json.dumps(config["OCIv1"].get("history", []))
    assert "PIP_CERT" not in history and docker.HOST_CA not in history
    look = [
        # buildah leaves the build volume's mount point behind as an empty file: the CA's
        # bytes never reach a layer.
        f"test ! -s {docker.HOST_CA} && echo no-ca-file",
        "grep -rs host-ca /etc/pip.conf /root/.config/pip /etc/ssl/certs | head -1",
        "command -v gcc cmake",
        "dpkg-query -W -f='${Package}\\n' | grep -c -- -dev$",
    ]
    out = run_in(TAG, "; ".join(look))
    assert out.stdout.split() == ["no-ca-file", "0"], out.stdout + out.stderr
    check = run_in(TAG, f"caffedoc check --strict --python {PYTHON}")
    assert check.returncode == 0 and "No problems found" in check.stdout, check.stdout
    site = f"{docker.PYCAFFE}/lib/python{docker.DISTRO_PYTHON3['debian 12']}/site-packages"
    assert f"imports {site}/caffe (CPU build)" in check.stdout, check.stdout
    smoke = run_in(TAG, f"caffedoc smoke --python {PYTHON} --cpu")
    assert smoke.returncode == 0 and smoke.stdout.startswith("smoke: passed on cpu"), smoke


@pytest.mark.caffe
def test_the_final_stage_is_the_wheel_installed_by_pip(image):
    """No prefix copied: pip put Caffe's wheel (and caffedoc's) into the venvs, offline
    from the build stage's wheelhouse, which no layer of the final image keeps; Caffe's own
    tools run from the wheel."""
    look = [
        f"test -e {docker.PREFIX} || echo no-prefix",
        f"test -e {docker.WHEELHOUSE} || echo no-wheelhouse",
        f"{PYTHON} -m pip list --format=freeze | grep -i ^caffe==",
        f"{docker.TOOL}/bin/python -m pip list --format=freeze | grep ^caffedoc==",
        "caffe --version",
    ]
    out = run_in(TAG, "; ".join(look))
    lines = out.stdout.split()
    assert lines[:2] == ["no-prefix", "no-wheelhouse"], out.stdout + out.stderr
    assert lines[2] == "caffe==1.0.0+debian12.cpu" and lines[3] == "caffedoc==0.1.0", lines
    assert "caffe version 1.0.0" in out.stdout + out.stderr, out.stdout + out.stderr


@pytest.mark.caffe
def test_an_image_held_to_the_wrong_recipe_fails_with_the_finding(image, tmp_path):
    """The same Dockerfile but its build stage held to the Debian 13 recipe: the layers up
    to that step come from the first build, and the build fails there, in caffedoc's words."""
    right = "--require recipe=debian12-cpu"
    text = docker.render(RECIPE, ccache_volume=True)
    assert right in text
    wrong = tmp_path / "wrong.Dockerfile"
    wrong.write_text(text.replace(right, "--require recipe=debian13-cpu"))
    junit = tmp_path / "wrong.xml"
    start = time.monotonic()
    res = caffedoc("docker", "--build", "debian12-cpu", "--engine", "buildah", "--file",
                   str(wrong), "--junit", str(junit), timeout=3600)  # fmt: skip
    print(f"\nwrong-recipe image (cached layers): {time.monotonic() - start:.0f} s")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "debian12-cpu: failed:" in res.stdout
    assert "recipe debian13-cpu" in res.stdout and "the recipe needs Debian 13" in res.stdout, (
        res.stdout
    )
    failure = cases(junit)["debian12-cpu"].find("failure")
    assert failure is not None and "debian13-cpu" in (failure.text or "")


SLOW = os.environ.get("CAFFEDOC_SLOW_IMAGES") == "1"


@pytest.mark.caffe
@pytest.mark.skipif(not SLOW, reason="compiles Caffe for Debian 13 (a cache miss in CI's time): "
                    "CAFFEDOC_SLOW_IMAGES=1 builds it")  # fmt: skip
def test_the_debian13_image_builds_from_a_trixie_root_and_proves_itself(tmp_path):
    """Debian 13 (trixie, gcc 14, Python 3.13): the same Dockerfile shape, its base made by
    debootstrap, its final stage the wheel installed by pip, check and smoke passing."""
    needs_buildah()
    start = time.monotonic()
    res = caffedoc("docker", "--build", "debian13-cpu", "--engine", "buildah",
                   "--base-from-debootstrap", timeout=3 * 3600)  # fmt: skip
    print(f"\ndebian13-cpu image: {time.monotonic() - start:.0f} s; {res.stdout}")
    log = (paths.cache_root() / "images" / "debian13-cpu.log").read_text()
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}\n{log[-6000:]}"
    assert "debian13-cpu: built and verified as caffe:debian13-cpu" in res.stdout
    assert (paths.cache_root() / "roots" / "trixie.tar").is_file()
    proof = proof_steps(log)
    assert (len(proof["check"]), len(proof["smoke"])) == (2, 1), log[-4000:]
    check = run_in("caffe:debian13-cpu", f"caffedoc check --strict --python {PYTHON}")
    assert check.returncode == 0 and "No problems found" in check.stdout, check.stdout
    site = f"{docker.PYCAFFE}/lib/python{docker.DISTRO_PYTHON3['debian 13']}/site-packages"
    assert f"imports {site}/caffe (CPU build)" in check.stdout, check.stdout


# ---------------------------------------------------------------- cheap, real


def test_the_context_holds_caffedoc_and_the_verified_source(tmp_path):
    tarball = paths.sources_dir() / RECIPE.source.tarball
    if not tarball.is_file():
        pytest.skip("the source cache is filled by the build tests")
    ctx = context.make(RECIPE, tmp_path / "ctx")
    copied = ctx / docker.CONTEXT_SOURCES / RECIPE.source.tarball
    assert hashlib.sha256(copied.read_bytes()).hexdigest() == RECIPE.source.sha256
    own = ctx / docker.CONTEXT_CAFFEDOC
    assert (own / "pyproject.toml").is_file() and (own / "recipes" / "debian12-cpu.toml").is_file()
    assert not list(own.rglob("__pycache__"))
    # What the Dockerfile copies is exactly what the context holds.
    copies = [line.split()[1] for line in docker.render(RECIPE).splitlines()
              if line.startswith("COPY ") and "--from" not in line]  # fmt: skip
    held = [docker.CONTEXT_CAFFEDOC, f"{docker.CONTEXT_SOURCES}/{RECIPE.source.tarball}"]
    assert sorted(copies) == sorted(held)
    # A tarball that is not the recipe's is refused before anything is built.
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not caffe")
    res = caffedoc("docker", "--build", "debian12-cpu", "--source", str(bad), "--engine",
                   "buildah", "--base-from-debootstrap")  # fmt: skip
    if shutil.which("buildah") and os.geteuid() == 0:
        assert res.returncode == 2, res.stdout + res.stderr
        assert res.stderr.startswith("caffedoc: error:") and "sha256" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--build", "no-such"], "no recipe named 'no-such'"),
        (["--build", "ubuntu18.04-cuda10.2-cudnn7.6.5"], "is known to be bad"),
        (["--build", "--engine", "rkt", "debian12-cpu"], "--engine rkt: one of docker"),
        (["debian12-cpu"], "go with --build"),
        (["--build", "--file", "/no/such", "debian12-cpu"], "--file /no/such: no such file"),
        (["--build", "--file", "/etc/hostname"], "name exactly one RECIPE"),
    ],
)
def test_bad_usage_is_one_line(args, message, tmp_path):
    res = caffedoc("docker", *args, cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    [line] = res.stderr.strip().splitlines()
    assert line.startswith("caffedoc: error:") and message in line, line
    assert list(tmp_path.iterdir()) == []


def test_an_image_whose_base_is_not_here_is_not_built_and_says_why(tmp_path):
    needs_buildah()
    junit = tmp_path / "j.xml"
    res = caffedoc("docker", "--build", "ubuntu16.04-cuda8.0", "--engine", "buildah",
                   "--base-from-debootstrap", "--junit", str(junit))  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    assert "ubuntu16.04-cuda8.0: skipped: the base image nvidia/cuda:8.0-cudnn5-devel" in res.stdout
    skipped = cases(junit)["ubuntu16.04-cuda8.0"].find("skipped")
    assert skipped is not None and "cannot be pulled" in skipped.get("message", "")


def test_a_compile_hits_the_cache_from_an_image_shell(tmp_path, monkeypatch):
    """Why the image's compile once missed the host's ccache, fixed in build's environment:
    ccache hashes LANG, which a host shell sets and an image does not. Two real compiles
    through ccache, as `caffedoc build` runs them: in the host's work folder with
    LANG=C.UTF-8 and one venv's include folder, then in another work folder with no LANG
    and another venv's (as in the image): the second is a preprocessor-mode hit; a third
    like the second, a direct hit."""
    if not (shutil.which("ccache") and shutil.which("c++")):
        pytest.skip("needs ccache and a C++ compiler")
    cache = tmp_path / "ccache"
    monkeypatch.setenv("CAFFEDOC_CCACHE_DIR", str(cache))
    counters = []
    for n, (lang, venv) in enumerate([("C.UTF-8", "host-venv"), (None, "opt"), (None, "opt")]):
        work = tmp_path / f"work{n}"
        (work / "src").mkdir(parents=True)
        (tmp_path / venv / "include").mkdir(parents=True, exist_ok=True)
        (work / "src" / "blob.cpp").write_text("#include <vector>\nint f() { return 7; }\n")
        if lang:
            monkeypatch.setenv("LANG", lang)
        else:
            monkeypatch.delenv("LANG", raising=False)
        env = build_env(SimpleNamespace(workdir=work))  # only its work folder is read
        argv = ["ccache", "c++", "-O2", "-I", str(tmp_path / venv / "include"), "-c",
                str(work / "src" / "blob.cpp"), "-o", str(work / "blob.o")]  # fmt: skip
        done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        stats = subprocess.run(["ccache", "--print-stats"], env=env, capture_output=True,
                               text=True, check=True).stdout  # fmt: skip
        counters.append(dict(line.split("\t") for line in stats.splitlines()))
    first, second, third = counters
    assert first["cache_miss"] == "1"
    assert second["preprocessed_cache_hit"] == "1" and second["cache_miss"] == "1", second
    assert third["direct_cache_hit"] == "1", third
