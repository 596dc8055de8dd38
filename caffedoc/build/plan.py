"""The build plan: everything a build will do, decided before anything changes.

`--dry-run` prints it; the build executes it. The cache key is a hash of every input
that changes the result (recipe and patches, source, toolchain and -dev package
versions, options, the interpreter's ABI), so an unchanged request is a cache hit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from caffedoc import host, pycaffe
from caffedoc.build import arches, interpreter, opencv, paths, source, toolkit
from caffedoc.build.arches import Choice
from caffedoc.build.interpreter import BuildPython
from caffedoc.build.toolkit import ToolkitPlan
from caffedoc.errors import CaffedocError
from caffedoc.layout import PTH_NAME, RECORD, BuildRecord
from caffedoc.recipes import BUILDABLE, Recipe, load_all
from caffedoc.resolution import HostFacts

GB_PER_JOB = 1.2  # peak RSS of one Caffe compile job, measured


@dataclass(frozen=True)
class Plan:
    recipe: Recipe
    why: str
    host: HostFacts
    python: BuildPython
    prefix: Path
    origin: source.Origin
    jobs: int
    jobs_why: str
    static_protobuf: bool
    packages: tuple[str, ...]
    missing: tuple[str, ...]  # recipe packages not installed on this machine
    cmake_args: tuple[str, ...]  # without the per-build paths (source, build, protobuf)
    toolchain: dict[str, str]
    key: str
    toolkit: ToolkitPlan | None = None  # a CUDA root assembled from wheels (CUDA recipes)
    arches: Choice | None = None  # the GPU targets, when the recipe assembles its toolkit
    portable: bool = False  # static protobuf and a minimal OpenCV: what a small wheel packs

    @property
    def workdir(self) -> Path:
        return paths.cache_root() / "work" / self.key[:16]

    @property
    def artifact(self) -> Path:
        return paths.cache_root() / "builds" / self.key[:16]

    @property
    def pth(self) -> Path:
        return self.python.purelib / PTH_NAME

    def install_command(self) -> list[str]:
        return self.recipe.manager().install_argv(self.missing)

    def to_json(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.name,
            "why": self.why,
            "status": self.recipe.status,
            "blocked_reason": self.recipe.reason if self.recipe.status == "blocked" else None,
            "platform": self.host.platform(),
            "packages": list(self.packages),
            "missing_packages": list(self.missing),
            "apt_command": shlex.join(self.install_command()) if self.missing else None,
            "source": {
                "tarball": self.recipe.source.tarball,
                "sha256": self.recipe.source.sha256,
                "commit": self.recipe.source.commit,
                "from": self.origin.to_json(),
            },
            "patches": [p.name for p in self.recipe.patches],
            "static_protobuf": self.static_protobuf,
            "portable": self.portable,
            "cmake_args": list(self.cmake_args),
            "toolkit": self.toolkit.to_json() if self.toolkit else None,
            "architectures": self.arches.names() if self.arches else None,
            "architectures_why": self.arches.why if self.arches else None,
            "jobs": self.jobs,
            "prefix": str(self.prefix),
            "python": str(self.python.path),
            "python_version": self.python.version,
            "numpy": self.python.numpy,
            "python_deps": list(self.python.missing),
            "pin": str(self.pth),
            "toolchain": self.toolchain,
            "cache_key": self.key,
            "cache_hit": (self.artifact / RECORD).is_file(),
            "workdir": str(self.workdir),
        }

    def render(self) -> str:
        j = self.to_json()
        src = self.recipe.source
        lines = [
            f"recipe    {self.recipe.name}: {self.recipe.summary}",
            f"why       {self.why}",
        ]
        if self.recipe.status == "blocked":
            lines.append(f"BLOCKED   a real build is refused: {self.recipe.reason}")
        if self.recipe.status == "unverified":
            lines.append(f"UNTRIED   caffedoc has not built this recipe: {self.recipe.reason}")
        if self.recipe.status == "reported":
            lines.append(f"REPORTED  {self.recipe.reason}")
        lines.append(f"packages  {' '.join(self.packages) or '(none)'}")
        lines.append(
            f"          missing: {' '.join(self.missing)}; install with: {j['apt_command']}"
            if self.missing
            else "          all installed"
        )
        lines += [
            f"source    {src.repository} at {src.commit}: {src.tarball}",
            f"          sha256 {src.sha256}",
            f"          from {self.origin.detail}",
            f"patches   {', '.join(p.name for p in self.recipe.patches) or '(none)'}",
            "protobuf  "
            + (
                f"static: a position-independent protobuf {self.recipe.protobuf} built from "
                "source (cached), its symbols hidden"
                if self.static_protobuf
                else "the distro's shared libprotobuf"
            ),
            "opencv    "
            + (
                f"minimal {opencv.RELEASE} built from source (cached): "
                f"{', '.join(opencv.MODULES)}; JPEG and PNG"
                if self.portable
                else "the distro's"
            ),
            *(
                [
                    f"toolkit   CUDA {self.toolkit.cuda}: {self.toolkit.describe()}",
                    f"          assembled in {self.toolkit.root}",
                    f"gpu code  {', '.join(self.arches.names())} ({self.arches.why})",
                ]
                if self.toolkit and self.arches
                else []
            ),
            f"cmake     {shlex.join(self.cmake_args)}",
            f"jobs      {self.jobs} ({self.jobs_why})",
            f"prefix    {self.prefix} (installed all-or-nothing, relocatable)",
            f"python    {self.python.path} (Python {self.python.version}, "
            f"numpy {self.python.numpy}); pinned by {self.pth}",
            *(
                [
                    f"          first: {shlex.join(interpreter.deps_argv(self.python))} "
                    "(pycaffe's packages; the plan is then made again)"
                ]
                if self.python.missing
                else []
            ),
            f"cache     key {self.key[:16]}: "
            + ("a finished build exists (cache hit)" if j["cache_hit"] else "not built yet"),
            f"work dir  {self.workdir} (logs, resumable state)",
            "then      the smoke step: a real training step through pycaffe",
        ]
        return "\n".join(lines)


def default_jobs(cores: int, available_gb: float) -> tuple[int, str]:
    by_memory = max(1, int(available_gb / GB_PER_JOB))
    jobs = max(1, min(cores, by_memory))
    return jobs, f"{cores} cores, {available_gb:.1f} GB free at {GB_PER_JOB} GB a job"


def toolchain() -> dict[str, str]:
    out = {}
    for tool in ("c++", "cmake"):
        res = host.run([tool, "--version"], timeout=15)
        out[tool] = res.stdout.splitlines()[0].strip() if res.ok and res.stdout else "missing"
    return out


def cmake_args(recipe: Recipe, py: BuildPython) -> tuple[str, ...]:
    opts = dict(recipe.cmake)
    opts.update(
        {
            "python_version": py.major_minor.split(".")[0],
            "PYTHON_EXECUTABLE": str(py.path),
            "PYTHON_INCLUDE_DIR": str(py.include),
            "PYTHON_LIBRARY": str(interpreter.link_library(py)),
            # Caffe's export(PACKAGE Caffe) would write the build tree into the user's
            # ~/.cmake/packages, outside the prefix and beyond an undo.
            "CMAKE_EXPORT_NO_PACKAGE_REGISTRY": "ON",
        }
    )
    return tuple(f"-D{k}={v}" for k, v in opts.items())


def make_plan(
    recipe: Recipe,
    why: str,
    host_facts: HostFacts,
    python: Path,
    *,
    prefix: Path | None = None,
    given_source: Path | None = None,
    jobs: int | None = None,
    static_protobuf: bool = False,
    cuda_arch: tuple[str, ...] = (),
    portable: bool = False,
) -> Plan:
    py = interpreter.inspect(python)
    py = replace(py, missing=pycaffe.requirements(py.missing, recipe.protobuf))
    if not py.major_minor.startswith(recipe.python):
        raise CaffedocError(
            f"recipe {recipe.name} builds for Python {recipe.python}; {python} is {py.version}"
        )
    interpreter.deps_argv(py)  # refuses, before anything changes, what pip cannot install
    shadow = interpreter.numpy_shadow(py)
    if shadow is not None:
        raise CaffedocError(
            f"{shadow} holds another numpy's headers, which CMake would pick before numpy "
            f"{py.numpy}'s: remove the package that installed it (Debian: python3-numpy)"
        )
    mem = psutil.virtual_memory()
    if jobs is None:
        jobs, jobs_why = default_jobs(psutil.cpu_count() or 1, mem.available / 2**30)
    elif jobs < 1:
        raise CaffedocError(f"--jobs {jobs}: must be at least 1")
    else:
        jobs_why = "--jobs"
    static = static_protobuf or recipe.static_protobuf or portable
    args = cmake_args(recipe, py)
    tk, choice = cuda_targets(recipe, host_facts, cuda_arch)
    if tk and choice:
        args += (f"-DCUDA_TOOLKIT_ROOT_DIR={tk.root}", *choice.cmake_args())
    versions, missing = recipe.packages_here() or ({}, recipe.apt)
    tools = toolchain()
    key_inputs = {
        "recipe": recipe.digest,
        "source": recipe.source.sha256,
        "toolchain": tools,
        "packages": versions,
        "static_protobuf": static,
        "cmake": [a for a in args if not a.startswith("-DPYTHON_EXECUTABLE=")],
        "python": [py.version, py.abi],
        "machine": host_facts.machine,
    }
    if tk is not None:  # only then: CPU builds keep the keys (and caches) they had
        key_inputs["toolkit"] = tk.key
    if portable:  # likewise
        key_inputs["opencv"] = opencv.cache_dir().name
    key = hashlib.sha256(json.dumps(key_inputs, sort_keys=True).encode()).hexdigest()
    return Plan(
        recipe=recipe,
        why=why,
        host=host_facts,
        python=py,
        prefix=check_prefix(prefix or default_prefix(recipe)),
        origin=source.origin(recipe.source, given_source),
        jobs=jobs,
        jobs_why=jobs_why,
        static_protobuf=static,
        packages=recipe.apt,
        missing=missing,
        cmake_args=args,
        toolchain=tools,
        key=key,
        toolkit=tk,
        arches=choice,
        portable=portable,
    )


def cuda_targets(
    recipe: Recipe, host_facts: HostFacts, asked: tuple[str, ...]
) -> tuple[ToolkitPlan | None, Choice | None]:
    """For a recipe that assembles its CUDA toolkit: that toolkit, and the GPU targets."""
    if not recipe.toolkit_libraries:
        if asked:
            raise CaffedocError(
                f"--cuda-arch: recipe {recipe.name} takes its architectures from its CMake options"
            )
        return None, None
    tk = toolkit.plan_toolkit(recipe, host_facts.cuda_roots)
    supported = (
        toolkit.supported_architectures(tk.compiler / "bin" / "nvcc") if tk.compiler else None
    )
    return tk, arches.choose(
        recipe.architectures,
        supported,
        host_facts.gpu_arches,
        asked,
        toolkit=f"CUDA {recipe.cuda}",
        elsewhere=other_recipes_for(recipe),
    )


def other_recipes_for(recipe: Recipe) -> dict[str, str]:
    """Architecture → another buildable CUDA recipe that targets it (for refusals)."""
    out: dict[str, str] = {}
    for r in load_all(recipe.path.parent):
        if r.kind == "cuda" and r.status in BUILDABLE and r.name != recipe.name:
            for a in r.architectures:
                out.setdefault(a, r.name)
    return out


def check_prefix(prefix: Path) -> Path:
    """Refuse, before anything is built, a prefix the install would have to destroy or
    that another user controls: a file, someone else's non-empty directory, and as root
    a path whose owner (or its parent directory's) is another user."""
    prefix = prefix.absolute()
    if prefix.is_symlink() or (prefix.exists() and not prefix.is_dir()):
        raise CaffedocError(f"--prefix {prefix}: not a directory; choose one to install into")
    if prefix.is_dir() and BuildRecord.read(prefix) is None and any(prefix.iterdir()):
        raise CaffedocError(
            f"--prefix {prefix} is not empty and was not installed by caffedoc "
            f"(no {RECORD}): choose another prefix"
        )
    if os.geteuid() == 0:
        _owned_by_root(prefix)
    return prefix


def _owned_by_root(prefix: Path) -> None:
    """As root: the prefix and the directory it is renamed into are root's own, so no user
    can swap in a link while the install copies and renames."""
    parent = prefix.parent
    while not parent.exists():
        parent = parent.parent
    for path in (prefix, parent):
        uid = path.lstat().st_uid if path.exists() else 0
        if uid != 0:
            raise CaffedocError(
                f"--prefix {prefix}: {path} belongs to {_user(uid)}, not root: install as that "
                "user, or into a directory of root's own"
            )


def _user(uid: int) -> str:
    import pwd

    try:
        return f"user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"uid {uid}"


def default_prefix(recipe: Recipe) -> Path:
    return Path.home() / ".local" / "opt" / f"caffe-{recipe.name}"
