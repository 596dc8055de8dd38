"""Install all-or-nothing, relocatably, and pin the interpreter to what was installed.

The finished tree is staged beside its destination and renamed into place, so an
interrupted install leaves either the old prefix or the new one, never a mix. Every
ELF file's RUNPATH is made $ORIGIN-relative (CMake writes absolute paths into the
build or install tree), so a moved prefix keeps working.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from caffedoc import host, safefs
from caffedoc.errors import CaffedocError

RECORD = ".caffedoc-build.json"
PTH_NAME = "caffedoc-caffe.pth"  # the one pin per interpreter, by build and fix alike
ELF_MAGIC = b"\x7fELF"


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == ELF_MAGIC
    except OSError:
        return False


def elf_files(tree: Path) -> list[Path]:
    return sorted(p for p in tree.rglob("*") if p.is_file() and not p.is_symlink() and is_elf(p))


def relocate(tree: Path) -> list[str]:
    """Point every ELF file's RUNPATH at the prefix's lib/, relative to the file itself."""
    done = []
    lib = tree / "lib"
    for path in elf_files(tree):
        rel = os.path.relpath(lib, path.parent)
        runpath = "$ORIGIN" if rel == "." else f"$ORIGIN/{rel}"
        res = host.run(["patchelf", "--set-rpath", runpath, path], timeout=60)
        if not res.ok:
            raise CaffedocError(
                f"patchelf failed on {path}: {res.describe()}: {res.stderr.strip()}"
            )
        done.append(f"{path.relative_to(tree)} -> {runpath}")
    return done


def unresolved(tree: Path, env: dict[str, str] | None = None) -> list[str]:
    """Libraries an installed ELF file needs but the loader cannot find."""
    missing = []
    for path in elf_files(tree):
        res = host.run(["ldd", path], timeout=60, env=env)
        missing += [
            f"{path.name}: {line.split()[0]}"
            for line in res.stdout.splitlines()
            if "not found" in line
        ]
    return missing


def read_record(prefix: Path) -> dict | None:
    try:
        return json.loads((prefix / RECORD).read_text())
    except (OSError, ValueError):
        return None


def install_tree(tree: Path, prefix: Path) -> None:
    """Copy `tree` into `prefix` atomically; a previous caffedoc install there is replaced."""
    if prefix.exists() and not (
        prefix.is_dir() and (read_record(prefix) or not any(prefix.iterdir()))
    ):
        raise CaffedocError(
            f"--prefix {prefix} exists and was not installed by caffedoc: choose another prefix"
        )
    prefix.parent.mkdir(parents=True, exist_ok=True)
    new = prefix.with_name(f".{prefix.name}.caffedoc-new-{os.getpid()}")
    old = prefix.with_name(f".{prefix.name}.caffedoc-old-{os.getpid()}")
    try:
        shutil.copytree(tree, new, symlinks=True, copy_function=_share_or_copy)
        if prefix.exists():
            os.replace(prefix, old)
        os.replace(new, prefix)
    except BaseException:
        if old.exists() and not prefix.exists():
            os.replace(old, prefix)
        shutil.rmtree(new, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _share_or_copy(src: str, dst: str) -> None:
    """Read-only files (the bundled CUDA libraries, 1 GB) are hard-linked, the rest copied."""
    if not os.stat(src).st_mode & 0o222:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


def pin_line(python_dir: Path | str) -> str:
    """The .pth content that puts `python_dir` first on sys.path (build and fix both pin so).

    A plain path line would land after site-packages and PYTHONPATH (a stale caffe
    there would win); an import line runs at start-up and inserts the path in front.
    """
    target = str(python_dir)
    return f"import sys; {target!r} in sys.path or sys.path.insert(0, {target!r})\n"


def pin(pth: Path, prefix: Path) -> str:
    """Put the prefix's python/ first on the interpreter's sys.path, via a .pth file,
    written as fix writes it (`safefs`: a fresh temporary, no link followed, the
    site directory's owner)."""
    target = str(prefix / "python")
    try:
        safefs.write_file(pth, [pin_line(target).encode()], 0o644)
    except OSError as exc:
        raise CaffedocError(
            f"cannot write {pth}: {exc.strerror}: build for an interpreter you can write to "
            "(a virtual environment), or run as its owner"
        ) from exc
    return target
