"""`check --require recipe=NAME`: does this machine match the recipe a team standardised on?

The comparison is a pure function of what the probes saw (plus the recipe's packages
that the platform's package manager reports installed) and the recipe, so machines we
do not have are tested through their facts. Differences become one finding, so text,
JSON and JUnit all say where the machine differs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from caffedoc import findings, platform
from caffedoc.errors import CaffedocError
from caffedoc.findings import Finding, Hit, Severity
from caffedoc.probes import Facts
from caffedoc.recipes import Recipe
from caffedoc.resolution import compute_seen
from caffedoc.shellwords import cmd

_VERSION = re.compile(r"(\d+(?:\.\d+)+)")
NOT_INSTALLED = "packages of the recipe not installed: "


@dataclass(frozen=True)
class Machine:
    """The facts a recipe constrains, as seen on one machine (None: not seen)."""

    distro: str | None
    version: str | None
    machine: str | None
    compiler: str | None  # first line of `c++ --version`
    python: str | None  # the checked interpreter's version: 3.11.2
    cuda: str | None  # the CUDA toolkit's version
    cudnn: str | None
    gpu_arches: tuple[str, ...] = ()  # compute capabilities as "86"
    packages: Mapping[str, str] | None = None  # recipe packages installed; None: unknown


def recipe_name(spec: str) -> str:
    """The NAME of `recipe=NAME`; anything else is bad usage."""
    key, sep, name = spec.partition("=")
    if key.strip() != "recipe" or not sep or not name.strip():
        raise CaffedocError(f"--require {spec!r}: expected recipe=NAME (see `caffedoc recipes`)")
    return name.strip()


def find(recipes: tuple[Recipe, ...], spec: str) -> Recipe:
    name = recipe_name(spec)
    for recipe in recipes:
        if recipe.name == name:
            return recipe
    known = ", ".join(r.name for r in recipes)
    raise CaffedocError(f"--require: no recipe named {name!r}; known recipes: {known}")


def machine_from(facts: Facts, packages: Mapping[str, str] | None) -> Machine:
    """Read the system, python and cuda areas of a check's facts."""
    system, python, cuda = facts.get("system"), facts.get("python"), facts.get("cuda")
    toolkit, cudnn, arches = compute_seen(
        (t.version for t in cuda.toolkits) if cuda else (),
        (h.version for h in cuda.cudnn_headers) if cuda else (),
        (g.compute_capability for g in cuda.gpus) if cuda else (),
    )
    return Machine(
        distro=system.os_id if system else None,
        version=system.os_version if system else None,
        machine=system.machine if system else None,
        compiler=system.compiler if system else None,
        python=python.target.version if python else None,
        cuda=toolkit,
        cudnn=cudnn,
        gpu_arches=arches,
        packages=packages,
    )


def _fits(want: str, have: str) -> bool:
    """At the recipe's precision: "3" fits 3.11.2, "7.3.1" fits only 7.3.1."""
    return have == want or have.startswith(want + ".")


def compiler_version(line: str | None) -> tuple[str, str] | None:
    """(family, version) from the first line of `c++ --version`: ("gcc", "12.2.0")."""
    if not line:
        return None
    found = _VERSION.findall(line)
    if not found:
        return None
    return ("clang" if "clang" in line.lower() else "gcc", found[-1])


def differences(recipe: Recipe, m: Machine) -> list[str]:
    """Where the machine differs from the recipe, one sentence each; empty when it matches."""
    out = []
    if m.distro is None or m.version is None:
        out.append(f"the distribution could not be read; the recipe needs {recipe.platform()}")
    elif not recipe.fits(m.distro, m.version):
        out.append(f"distribution: {m.distro} {m.version}, the recipe needs {recipe.platform()}")
    if m.machine not in recipe.machines:
        seen = m.machine or "unknown"
        out.append(f"machine: {seen}, the recipe is for {', '.join(recipe.machines)}")
    family, _, version = recipe.compiler.partition(" ")
    have = compiler_version(m.compiler)
    if have is None:
        out.append(f"compiler: no C++ compiler found, the recipe uses {recipe.compiler}")
    elif have[0] != family or have[1].split(".")[0] != version.split(".")[0]:
        out.append(f"compiler: {have[0]} {have[1]}, the recipe uses {recipe.compiler}")
    if m.python is None:
        out.append(f"python: the interpreter could not be run, the recipe is for {recipe.python}")
    elif not _fits(recipe.python, m.python):
        out.append(f"python: {m.python}, the recipe is for Python {recipe.python}")
    if recipe.kind == "cuda":
        out += _cuda_differences(recipe, m)
    missing = platform.missing(recipe.apt, m.packages) if m.packages is not None else ()
    if missing:
        out.append(f"{NOT_INSTALLED}{' '.join(missing)}")
    return out


def _cuda_differences(recipe: Recipe, m: Machine) -> list[str]:
    out = [] if recipe.toolkit_libraries else _toolkit_differences(recipe, m)
    beyond = [a for a in m.gpu_arches if a not in recipe.architectures]
    if beyond:
        out.append(
            f"GPU: sm_{', sm_'.join(beyond)} is beyond the recipe's CUDA {recipe.cuda} "
            f"(sm_{recipe.architectures[0]} to sm_{recipe.architectures[-1]})"
        )
    return out


def _toolkit_differences(recipe: Recipe, m: Machine) -> list[str]:
    """The machine's own CUDA and cuDNN, for a recipe that does not bring its own."""
    out = []
    if m.cuda is None:
        out.append(f"CUDA: no toolkit found, the recipe needs CUDA {recipe.cuda}")
    elif not _fits(recipe.cuda or "", m.cuda):
        out.append(f"CUDA: {m.cuda}, the recipe needs CUDA {recipe.cuda}")
    if recipe.cudnn and m.cudnn is None:
        out.append(f"cuDNN: none found, the recipe needs cuDNN {recipe.cudnn}")
    elif recipe.cudnn and m.cudnn and not _fits(recipe.cudnn, m.cudnn):
        out.append(f"cuDNN: {m.cudnn}, the recipe needs cuDNN {recipe.cudnn}")
    return out


def judge(recipe: Recipe, facts: Facts, env: Mapping[str, str]) -> Finding:
    """Compare this machine (a check's facts, and its package database) with the recipe."""
    here = recipe.packages_here(env)
    machine = machine_from(facts, here[0] if here else None)
    return finding(recipe, differences(recipe, machine))


def finding(recipe: Recipe, diffs: list[str]) -> Finding:
    """An error naming each difference, or a note that the machine matches."""
    what = f"recipe {recipe.name} ({recipe.summary})"
    if not diffs:
        checked = ("checked: platform, machine, compiler, Python, compute, packages",)
        return findings.finding("recipe-match", Hit(Severity.INFO, checked, detail=what))
    missing = [d[len(NOT_INSTALLED) :].split() for d in diffs if d.startswith(NOT_INSTALLED)]
    fix = (
        f"Install them: {cmd(*recipe.manager().install_argv(missing[0], unattended=False))}"
        if missing and len(diffs) == 1
        else f"Use a machine that fits {recipe.platform()}, or the image "
        f"docker/{recipe.name}.Dockerfile; or require the recipe that fits this machine "
        "(`caffedoc recipes`)."
    )
    return findings.finding(
        "recipe-mismatch", Hit(Severity.ERROR, tuple(diffs), fix=fix, detail=what)
    )
