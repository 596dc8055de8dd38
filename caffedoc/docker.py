"""Verification images: one Dockerfile per recipe, generated from it so the two cannot drift.

Each image is multi-stage. The build stage installs caffedoc on a Python of its own
(old platforms ship a Python 3 older than caffedoc needs), makes a virtual environment
for pycaffe on the recipe's Python, and runs `caffedoc build` for the recipe. The final
stage starts again from the runtime flavour of the base image and receives only the
installed prefix, the two environments and the runtime packages; then `caffedoc check`
and `caffedoc smoke` run as build steps, so an image whose Caffe does not work is never
produced.

Runtime packages are not written in the recipe: the build stage derives them from the
result (`runtime_packages`): the Debian packages that own the shared libraries the
installed Caffe loads. That is exact for whatever the -dev packages pulled in, where a
renaming rule (libfoo-dev → libfooN) would have to guess sonames and versions.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path

from caffedoc import host, platform
from caffedoc.build.install import elf_files
from caffedoc.errors import CaffedocError
from caffedoc.recipes import Recipe

# The uv image supplies caffedoc's own Python (a relocatable CPython built for old glibc).
UV_IMAGE = "ghcr.io/astral-sh/uv:0.9.5"
CAFFEDOC_PYTHON = "3.11"
PYTHONS = "/opt/python"  # uv's managed Pythons
TOOL = "/opt/caffedoc"  # caffedoc's virtual environment
PYCAFFE = "/opt/pycaffe"  # the recipe's Python, pinned to the prefix by `caffedoc build`
PREFIX = "/opt/caffe"
SOURCE = "/src/caffe"
RUNTIME_LIST = "/opt/caffe-runtime-packages"
# caffedoc on PATH without its environment's python3 there: `python`, `pip` and `python3`
# stay pycaffe's, so a check sees no second interpreter on PATH.
LINK = f"ln -s {TOOL}/bin/caffedoc /usr/local/bin/caffedoc"
# What pycaffe imports besides itself (caffe/__init__.py, io.py, pycaffe.py).
PYCAFFE_PIP = ("numpy", "six", "protobuf", "scikit-image", "scipy")
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


def has_image(recipe: Recipe) -> bool:
    """A recipe known to be bad gets no image: building it would only prove it bad."""
    return recipe.status != "bad" and bool(recipe.base_image)


def file_name(recipe: Recipe) -> str:
    return f"{recipe.name}.Dockerfile"


def runtime_image(base: str) -> str:
    """The final stage's image: NVIDIA's runtime flavour of a CUDA devel image, else the same."""
    name, _, tag = base.partition(":")
    if name == "nvidia/cuda" and "-devel-" in tag:
        return f"{name}:{tag.replace('-devel-', '-runtime-')}"
    return base


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
    return [
        f"RUN python{recipe.python} -m venv {PYCAFFE} \\\n"
        f" && {PYCAFFE}/bin/python -m pip install --no-cache-dir {' '.join(PYCAFFE_PIP)}",
    ]


def build_command(recipe: Recipe) -> list[str]:
    return ["caffedoc", "build", "--recipe", recipe.name, "--prefix", PREFIX,
            "--python", f"{PYCAFFE}/bin/python", "--source", SOURCE]  # fmt: skip


def image_commands(recipe: Recipe) -> list[list[str]]:
    """After the build: the proof against the recipe and the runtime package list (build
    stage), then the final image's own proof."""
    python = f"{PYCAFFE}/bin/python"
    return [
        ["caffedoc", "check", "--python", python, "--require", f"recipe={recipe.name}"],
        ["caffedoc", "docker", "--runtime-packages", PREFIX],
        ["caffedoc", "check", "--python", python],
        # `docker build` sees no GPU: the training step runs on the CPU (a GPU build can).
        ["caffedoc", "smoke", "--python", python, "--cpu"],
    ]


def render(recipe: Recipe) -> str:
    """The Dockerfile for one recipe: a pure function of it, so output is reproducible."""
    if not has_image(recipe):
        raise CaffedocError(f"recipe {recipe.name} is known to be bad: it gets no image")
    manager = recipe.manager()
    require, packages, check, smoke = image_commands(recipe)
    base, final = recipe.base_image, runtime_image(recipe.base_image)
    setup = ["ca-certificates", _interpreter_package(recipe)]
    setup += ["virtualenv", *PYCAFFE_APT_PY2] if _py2(recipe) else ["python3-venv"]
    runtime = [_interpreter_package(recipe), *(PYCAFFE_APT_PY2 if _py2(recipe) else ())]
    runtime += CHECK_TOOLS
    archive = f"{recipe.source.repository}/archive/{recipe.source.commit}.tar.gz"
    header = [
        "# syntax=docker/dockerfile:1",
        f"# Generated by `caffedoc docker` from recipes/{recipe.name}.toml: do not edit.",
        f"# {recipe.summary}",
        f"# Build from the repository root: docker build -f docker/{file_name(recipe)} .",
    ]
    if recipe.status == "unverified":
        header.append(f"# Status unverified: caffedoc has not built it: {recipe.reason}")
    elif recipe.status != "good":
        header.append(f"# Status {recipe.status}: `caffedoc build` refuses it: {recipe.reason}")
    lines = [
        *header,
        "",
        f"FROM {UV_IMAGE} AS uv",
        "",
        f"FROM {base} AS build",
        "ENV DEBIAN_FRONTEND=noninteractive \\",
        f"    UV_PYTHON_INSTALL_DIR={PYTHONS} \\",
        "    UV_PYTHON_PREFERENCE=only-managed",
        "RUN " + manager.image_install(setup, keep_lists=True),
        "COPY --from=uv /uv /usr/local/bin/uv",
        "COPY pyproject.toml README.md /src/caffedoc/",
        "COPY caffedoc /src/caffedoc/caffedoc",
        "COPY recipes /src/caffedoc/recipes",
        f"RUN uv venv --python {CAFFEDOC_PYTHON} {TOOL} \\",
        f" && uv pip install --no-cache --python {TOOL}/bin/python /src/caffedoc \\",
        f" && {LINK}",
        *_pycaffe_env(recipe),
        f"ENV PATH={PYCAFFE}/bin:$PATH",
        "# The source at the recipe's commit; `caffedoc build` checks every file against",
        f"# recipes/{recipe.source.manifest.parent.name}/{recipe.source.manifest.name}.",
        f"ADD {archive} /src/caffe.tar.gz",
        f"RUN mkdir -p {SOURCE} && tar -xzf /src/caffe.tar.gz --strip-components=1 -C {SOURCE}",
        "RUN " + shlex.join(build_command(recipe)),
        "RUN " + shlex.join(require),
        f"RUN {shlex.join(packages)} > {RUNTIME_LIST}",
        "",
        f"FROM {final}",
        "ENV DEBIAN_FRONTEND=noninteractive",
        f"COPY --from=build {RUNTIME_LIST} {RUNTIME_LIST}",
        "RUN " + manager.image_install([*runtime, f"$(cat {RUNTIME_LIST})"], keep_lists=False),
        f"COPY --from=build {PYTHONS} {PYTHONS}",
        f"COPY --from=build {TOOL} {TOOL}",
        f"COPY --from=build {PYCAFFE} {PYCAFFE}",
        f"COPY --from=build {PREFIX} {PREFIX}",
        f"RUN {LINK}",
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
