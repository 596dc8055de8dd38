"""A GPU wheel: Caffe's own code, with CUDA and cuDNN taken from NVIDIA's wheels.

As PyTorch does it: the wheel bundles no CUDA library. Its METADATA requires NVIDIA's
wheels at exactly the versions the recipe pins, and its ELF files find them at run time
in site-packages, where pip puts them beside the `caffe` package, through relative
RUNPATHs (`$ORIGIN/../nvidia/cudnn/lib`, …). Which wheel holds which library, and
where, is read from the wheels themselves (the pinned, hash-checked files the build
used), so the RUNPATHs follow their real layout. libcuda.so.1 is the driver's, the
machine's own: never bundled, never required.

`retarget` is the one step a CPU wheel does not have: between packing and
`auditwheel repair` (which is told to leave these libraries out), in wheel.make.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from caffedoc.build import toolkit
from caffedoc.build.steps import Log, StepError
from caffedoc.build.wheel import set_runpath, write_zip
from caffedoc.elf import not_elf, readelf_dynamic
from caffedoc.errors import CaffedocError
from caffedoc.recipes import Recipe
from caffedoc.recipes import Wheel as Pinned

DRIVER = "libcuda.so.1"  # the driver's: every GPU machine has its own
RUNTIME_WHEEL = "nvidia-cuda-runtime"  # libcudart, listed among the recipe's compiler wheels
LIBRARY = re.compile(r"^(nvidia/[\w.-]+/lib)/(lib[\w.+-]+\.so\.\d+)$")


@dataclass(frozen=True)
class Provider:
    """One of NVIDIA's wheels and the libraries it puts into site-packages."""

    requirement: str  # nvidia-cudnn-cu13==9.13.1.26
    libdir: str  # nvidia/cudnn/lib, relative to site-packages
    sonames: tuple[str, ...]


def runtime_wheels(recipe: Recipe) -> tuple[Pinned, ...]:
    """The recipe's wheels that hold run-time libraries (CUDA runtime, cuBLAS, cuRAND,
    cuDNN); refused before any build when the recipe does not pin them all."""
    runtime = tuple(w for w in recipe.toolkit_compiler if w.name == RUNTIME_WHEEL)
    if not recipe.toolkit_libraries or not runtime:
        raise CaffedocError(
            f"--wheel: recipe {recipe.name} takes the CUDA runtime from a CUDA install, "
            "not from NVIDIA's wheels, so a wheel could not depend on them; use a recipe "
            "that pins them all (current-gpu-cuda13)"
        )
    return runtime + recipe.toolkit_libraries


def providers(wheels: tuple[Pinned, ...], scratch: Path) -> list[Provider]:
    """Each pinned wheel's libraries and folder, read from its file (cached, or downloaded
    by pip with its hash checked)."""
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        files = toolkit.download(wheels, Log(scratch / "pip-download.log"))
    except StepError as exc:
        raise CaffedocError(f"--wheel: {exc}", code=1) from None
    out = []
    for pinned, path in zip(wheels, files):
        with zipfile.ZipFile(path) as z:
            found = [m.groups() for m in map(LIBRARY.match, z.namelist()) if m]
        for libdir in sorted({d for d, _ in found}):
            names = tuple(sorted(n for d, n in found if d == libdir))
            out.append(Provider(pinned.requirement, libdir, names))
    return out


def retarget(recipe: Recipe, prefix: Path, raw: Path, scratch: Path) -> tuple[Path, list[str]]:
    """The packed wheel `raw` made to take its CUDA libraries from NVIDIA's wheels: RUNPATHs
    into their site-packages folders, their pins as Requires-Dist. Returns the new wheel
    and the sonames `auditwheel repair` must leave out."""
    tree = scratch / "tree"
    with zipfile.ZipFile(raw) as z:
        z.extractall(tree)
        names = z.namelist()
    known = providers(runtime_wheels(recipe), scratch / "wheels")
    by_soname = {n: p for p in known for n in p.sonames}
    # What the build bundled into the install's lib/ besides libcaffe is CUDA's: each must
    # come from a wheel the recipe pins, or the wheel would not load where it is installed.
    carried = {p.name for p in (prefix / "lib").iterdir() if not p.name.startswith("libcaffe")}
    elves = [tree / n for n in names if (tree / n).is_file() and not_elf(tree / n) is None]
    needs = toolkit.needed(elves) if elves else set()
    orphans = sorted(n for n in needs & carried if n not in by_soname)
    if orphans:
        raise CaffedocError(
            f"--wheel: {', '.join(orphans)} is in none of recipe {recipe.name}'s NVIDIA wheels",
            code=1,
        )
    required: dict[str, Provider] = {}
    for elf in elves:
        mine = [by_soname[n] for n in toolkit.needed([elf]) if n in by_soname]
        if not mine:
            continue
        dirs = dict.fromkeys(os.path.relpath(tree / p.libdir, elf.parent) for p in mine)
        runpath = ":".join([*current_runpath(elf), *(f"$ORIGIN/{d}" for d in sorted(dirs))])
        elf.write_bytes(set_runpath(elf.read_bytes(), runpath, scratch / "patch"))
        required.update((p.requirement, p) for p in mine)
    [meta] = [n for n in names if n.endswith(".dist-info/METADATA")]
    lines = "".join(f"Requires-Dist: {r}\n" for r in sorted(required))
    (tree / meta).write_text((tree / meta).read_text() + lines)
    files = {n: (tree / n).read_bytes() for n in names if not n.endswith(".dist-info/RECORD")}
    [record] = [n for n in names if n.endswith(".dist-info/RECORD")]
    out = scratch / raw.name
    write_zip(out, files, record)
    excluded = sorted({n for p in required.values() for n in p.sonames} | {DRIVER})
    return out, excluded


def current_runpath(elf: Path) -> list[str]:
    found = readelf_dynamic([elf], timeout=60).get(str(elf))
    return list(found.runpath or found.rpath) if found else []
