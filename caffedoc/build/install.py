"""Install all-or-nothing, relocatably (the prefix's layout, record and pin: `layout`).

The finished tree is staged beside its destination and renamed into place, so an
interrupted install leaves either the old prefix or the new one, never a mix. Every
ELF file's RUNPATH is made $ORIGIN-relative (CMake writes absolute paths into the
build or install tree), so a moved prefix keeps working.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from caffedoc import host
from caffedoc.elf import not_elf
from caffedoc.errors import CaffedocError
from caffedoc.layout import BuildRecord


def elf_files(tree: Path) -> list[Path]:
    return sorted(
        p for p in tree.rglob("*") if p.is_file() and not p.is_symlink() and not not_elf(p)
    )


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


def install_tree(tree: Path, prefix: Path) -> None:
    """Copy `tree` into `prefix` atomically; a previous caffedoc install there is replaced."""
    if prefix.exists() and not (
        prefix.is_dir() and (BuildRecord.read(prefix) or not any(prefix.iterdir()))
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
