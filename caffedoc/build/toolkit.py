"""A CUDA toolkit root assembled from NVIDIA's PyPI wheels and, when it fits, the machine's nvcc.

Caffe's CMake (FindCUDA) wants one CUDA root holding nvcc, the CUDA headers and the
libraries it links (cudart, cuBLAS, cuRAND, cuDNN). NVIDIA publishes every piece as a
wheel. The recipe pins them with their sha256; each is downloaded and unpacked once
into the cache, and a toolkit root is only a farm of symlinks over them, laid out like
/usr/local/cuda: bin/, nvvm/, include/, lib64/, targets/<arch>/.

nvcc finds its own pieces relative to the path it was started by (it does not resolve
symlinks), so the farm must be a whole toolkit, not only the directories CMake reads.
When the machine has an nvcc of the recipe's CUDA release, its compiler, headers and
cudart are used and only the libraries come from wheels.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from caffedoc import host
from caffedoc.build import install, paths
from caffedoc.build.steps import Log, StepError
from caffedoc.elf import readelf_dynamic
from caffedoc.errors import CaffedocError
from caffedoc.recipes import Recipe, Wheel

COMPLETE = ".caffedoc-toolkit.json"
TOOLKIT_DIRS = ("bin", "nvvm", "include", "lib", "lib64")
# cuDNN 9 loads these at run time with dlopen, so no DT_NEEDED names them.
DLOPENED = re.compile(r"^libcudnn_\w+\.so\.\d+$")


@dataclass(frozen=True)
class ToolkitPlan:
    cuda: str
    compiler: Path | None  # the machine's toolkit root whose nvcc is used; None: the wheels'
    wheels: tuple[Wheel, ...]  # what is downloaded: libraries, plus the compiler's if None
    key: str

    @property
    def root(self) -> Path:
        return paths.cache_root() / "toolkits" / self.key[:16]

    @property
    def nvcc(self) -> Path:
        return self.root / "bin" / "nvcc"

    def describe(self) -> str:
        names = ", ".join(w.requirement for w in self.wheels)
        nvcc = (
            f"nvcc from {self.compiler}"
            if self.compiler
            else f"nvcc from NVIDIA's CUDA {self.cuda} wheels"
        )
        return f"{nvcc}; wheels {names}"

    def to_json(self) -> dict[str, object]:
        return {
            "cuda": self.cuda,
            "compiler": str(self.compiler) if self.compiler else "wheels",
            "wheels": [w.requirement for w in self.wheels],
            "root": str(self.root),
            "ready": (self.root / COMPLETE).is_file(),
        }


def release(nvcc: Path) -> str | None:
    """The X.Y release an nvcc reports ("release 13.0, V13.0.88" → "13.0")."""
    res = host.run([nvcc, "--version"], timeout=30)
    m = re.search(r"release (\d+\.\d+)", res.stdout)
    return m.group(1) if res.ok and m else None


def plan_toolkit(recipe: Recipe, machine_roots: Iterable[Path]) -> ToolkitPlan:
    """Use a machine toolkit of the recipe's release for the compiler, else the wheels."""
    same = [r for r in machine_roots if root_release(r) == recipe.cuda]
    compiler = same[0] if same else None
    wheels = (() if compiler else recipe.toolkit_compiler) + recipe.toolkit_libraries
    if compiler is None and not recipe.toolkit_compiler:
        raise CaffedocError(
            f"recipe {recipe.name} takes nvcc from a CUDA {recipe.cuda} install, and none was "
            "found (install it, or set CUDA_HOME or put its bin/ on PATH)"
        )
    identity = {
        "cuda": recipe.cuda,
        "compiler": _identity(compiler) if compiler else None,
        "wheels": [(w.requirement, w.sha256) for w in wheels],
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return ToolkitPlan(recipe.cuda or "", compiler, wheels, key)


def root_release(root: Path) -> str | None:
    """The release of a toolkit root's nvcc; None without one."""
    nvcc = root / "bin" / "nvcc"
    return release(nvcc) if nvcc.is_file() else None


def _identity(root: Path) -> list[object]:
    """What makes a machine toolkit itself: its path and nvcc's size and mtime."""
    st = (root / "bin" / "nvcc").stat()
    return [str(root), st.st_size, int(st.st_mtime)]


def supported_architectures(nvcc: Path) -> tuple[str, ...]:
    """The real GPU targets this nvcc can build for, as "75", "86", … (`--list-gpu-code`)."""
    res = host.run([nvcc, "--list-gpu-code"], timeout=30)
    if not res.ok:
        raise CaffedocError(f"{nvcc} --list-gpu-code: {res.describe()}")
    return tuple(m.group(1) for m in re.finditer(r"\bsm_(\d+)\b", res.stdout))


# ---- wheels ------------------------------------------------------------------------------------


def wheel_dir() -> Path:
    return paths.cache_root() / "wheels"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _cached(wheel: Wheel) -> Path | None:
    prefix = f"{wheel.name.replace('-', '_')}-{wheel.version}-"
    for path in sorted(wheel_dir().glob(f"{prefix}*.whl")):
        if _sha256(path) == wheel.sha256:
            return path
    return None


def download(wheels: Iterable[Wheel], log: Log) -> list[Path]:
    """The wheels' files, from the cache or PyPI; pip checks each hash (--require-hashes)."""
    wheels = tuple(wheels)
    missing = [w for w in wheels if _cached(w) is None]
    if missing:
        folder = wheel_dir()
        folder.mkdir(parents=True, exist_ok=True)
        reqs = folder / f"requirements-{os.getpid()}.txt"
        reqs.write_text("".join(f"{w.requirement} --hash=sha256:{w.sha256}\n" for w in missing))
        try:
            res = log.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                 "--require-hashes", "--disable-pip-version-check", "--no-cache-dir", "-d", folder,
                 "-r", reqs],
                timeout=3600,
            )  # fmt: skip
        finally:
            reqs.unlink(missing_ok=True)
        log.check(res, "pip download of NVIDIA's wheels")
    found = []
    for w in wheels:
        path = _cached(w)
        if path is None:
            raise StepError(
                f"{w.requirement}: no wheel with sha256 {w.sha256[:12]}… was downloaded"
            )
        found.append(path)
    return found


def unpacked(wheel: Path, log: Log) -> Path:
    """The wheel extracted once into the cache (shared by every toolkit root that uses it),
    keeping each file's mode bits: zipfile alone drops them, and nvcc must stay executable."""
    dest = paths.cache_root() / "unpacked" / wheel.stem
    if (dest / COMPLETE).is_file():
        return dest
    log.note(f"unpacking {wheel.name}")
    with paths.staged(dest) as stage, zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            target = Path(zf.extract(info, stage))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                target.chmod(mode)
        (stage / COMPLETE).write_text(wheel.name + "\n")
    return dest


# ---- the root ----------------------------------------------------------------------------------


def assemble(plan: ToolkitPlan, log: Log) -> Path:
    """The toolkit root for `plan`, built once (staged, then renamed) and reused after."""
    root = plan.root
    if (root / COMPLETE).is_file() and release(root / "bin" / "nvcc") == plan.cuda:
        return root  # reused; one whose links broke (a toolkit removed) is made again
    parts = [plan.compiler] if plan.compiler else []
    for path in download(plan.wheels, log):
        parts += _package_roots(unpacked(path, log))
    with paths.staged(root) as stage:
        _farm(parts, stage)
        nvcc = stage / "bin" / "nvcc"
        if release(nvcc) != plan.cuda:
            raise StepError(f"the assembled toolkit's nvcc is not CUDA {plan.cuda}: {nvcc}")
        (stage / COMPLETE).write_text(json.dumps(plan.to_json(), indent=2))
    return root


def _package_roots(unpacked: Path) -> list[Path]:
    """Folders of the unpacked wheels that look like part of a toolkit (nvidia/cu13, …)."""
    found = []
    for d in sorted((unpacked / "nvidia").iterdir()):
        if d.is_dir() and any((d / sub).is_dir() for sub in TOOLKIT_DIRS):
            found.append(d)
    return found


def _farm(parts: list[Path], root: Path) -> None:
    """Symlink every file of the parts' toolkit folders into one root; first part wins."""
    for part in parts:
        for sub in TOOLKIT_DIRS:
            src = part / sub
            if not src.is_dir():
                continue
            dest = root / ("lib64" if sub == "lib" else sub)
            if sub in ("bin", "nvvm"):
                _link_tree(src, dest)
            else:
                _link_entries(src, dest)
    lib = root / "lib64"
    lib.mkdir(parents=True, exist_ok=True)
    for real in sorted(lib.iterdir()):
        m = re.match(r"^(lib[\w+-]+\.so)\.\d+$", real.name)
        if m and not (lib / m.group(1)).exists():
            (lib / m.group(1)).symlink_to(real.name)  # the link-time name CMake looks for
    (root / "lib").symlink_to("lib64")
    target = root / "targets" / f"{os.uname().machine}-linux"
    target.mkdir(parents=True)
    (target / "include").symlink_to("../../include")
    (target / "lib").symlink_to("../../lib64")


def _link_tree(src: Path, dest: Path) -> None:
    """Real directories, symlinked files: nvcc's TOP stays the farm, the bytes stay put."""
    for dirpath, _dirs, names in os.walk(src):
        here = dest / Path(dirpath).relative_to(src)
        here.mkdir(parents=True, exist_ok=True)
        for name in names:
            _link(here / name, Path(dirpath) / name)


def _link_entries(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for entry in sorted(src.iterdir()):
        if entry.name in ("cmake", "stubs", "__pycache__") or entry.name.startswith("__init__"):
            continue
        _link(dest / entry.name, entry)


def _link(link: Path, target: Path) -> None:
    if not (link.exists() or link.is_symlink()):  # else an earlier part provides it
        link.symlink_to(target.resolve())


def runtime_libraries(root: Path, sonames: Iterable[str]) -> list[Path]:
    """The toolkit libraries an install must carry: what it needs, transitively, and the
    cuDNN parts that cuDNN itself loads with dlopen. A name the toolkit does not hold is a
    system library (libc, libstdc++…): not the toolkit's to carry."""
    lib = root / "lib64"
    found: dict[str, Path] = {}
    todo = set(sonames) | {p.name for p in lib.iterdir() if DLOPENED.match(p.name)}
    while todo:
        new = {n: lib / n for n in todo if n not in found and (lib / n).exists()}
        found.update(new)
        todo = needed([p.resolve() for p in new.values()]) - found.keys()
    return sorted(found.values())


def needed(files: list[Path]) -> set[str]:
    """The DT_NEEDED names of these ELF files (one readelf run, as the probes read them)."""
    elves = readelf_dynamic(files, timeout=60)
    return {name for elf in elves.values() for name in elf.needed}


def ccache_wrapper(nvcc: Path, work: Path) -> Path:
    """An `nvcc` that runs the toolkit's through ccache (FindCUDA has no launcher option):
    the .cu files are most of a CUDA build's compile time."""
    wrapper = work / "ccache-nvcc" / "nvcc"  # ccache knows nvcc by this name
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\nexec ccache {shlex.quote(str(nvcc))} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def bundle(root: Path, staged: Path) -> str:
    """Carry the CUDA libraries the install needs in its lib/, so the prefix stands alone.

    They are hard links into the toolkit cache where the file system allows (no extra
    disk), copies otherwise, and read-only: an install shares them instead of copying.
    """
    sonames = needed(install.elf_files(staged))
    lib = staged / "lib"
    names = []
    for src in runtime_libraries(root, sonames):
        real, dest = src.resolve(), lib / src.name
        if dest.exists():
            continue
        try:
            os.link(real, dest)
        except OSError:
            shutil.copy2(real, dest)
        dest.chmod(0o444)
        names.append(src.name)
    return f"bundled {len(names)} CUDA libraries: {', '.join(names)}"
