"""Benchmark rebuilding a verification image after a change of caffedoc (one run).

A change of caffedoc's source invalidates every image layer from `COPY caffedoc` on, Caffe's
compile among them; the compile then runs again with caffedoc's ccache mounted. Each run
below builds from a copy of this checkout whose caffedoc differs by one comment line (a
real change of the build context), with `caffedoc docker --build RECIPE --engine buildah
--base-from-debootstrap`, and reads the compile's ccache counters from the build log:

1. warm:  the ccache as it is (shared with `caffedoc build` on this machine);
2. cold (--cold): the same with an empty ccache folder (what a rebuild cost while every
   object missed).

Usage (root, buildah): python benchmarks/image_rebuild.py [--recipe debian12-cpu] [--cold]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHECKOUT = ("pyproject.toml", "README.md", "caffedoc", "recipes")
COUNTER = re.compile(r"^\s*(Hits|Misses|Direct|Preprocessed|Cacheable calls):\s+(\d+)", re.M)


def snapshot(where: Path) -> Path:
    """A copy of the checkout (what an image's build context is made from)."""
    for name in CHECKOUT:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, where / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, where / name)
    return where


def changed_checkout(where: Path, mark: str) -> Path:
    """A copy of the checkout whose caffedoc differs by one comment line."""
    snapshot(where)
    init = where / "caffedoc" / "__init__.py"
    init.write_text(init.read_text() + f"# image rebuild benchmark: {mark}\n")
    return where


def rebuild(recipe: str, ccache: Path | None) -> dict[str, object]:
    """One image build from a changed checkout: seconds, and the compile's ccache counters."""
    env = dict(os.environ)
    if ccache is not None:
        env["CAFFEDOC_CCACHE_DIR"] = str(ccache)
    with tempfile.TemporaryDirectory(prefix="image-rebuild-") as scratch:
        copy = changed_checkout(Path(scratch), f"{time.time_ns()}")
        argv = [sys.executable, "-m", "caffedoc", "docker", "--build", recipe,
                "--engine", "buildah", "--base-from-debootstrap"]  # fmt: skip
        start = time.monotonic()
        res = subprocess.run(argv, cwd=copy, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - start
    if res.returncode != 0:
        sys.exit(f"failed ({res.returncode}):\n{res.stdout}\n{res.stderr[-3000:]}")
    log = Path.home() / ".cache" / "caffedoc" / "images" / f"{recipe}.log"
    text = log.read_text()
    after = text[text.rfind("ccache, this compile:") :]
    counters = {k: int(v) for k, v in COUNTER.findall(after[:2000])}
    return {"seconds": round(seconds), "ccache": counters, "said": res.stdout.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="debian12-cpu")
    parser.add_argument("--cold", action="store_true", help="also with an empty ccache")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    warm = rebuild(args.recipe, None)
    print(f"warm ccache: {warm}", flush=True)
    if args.cold:
        with tempfile.TemporaryDirectory(prefix="empty-ccache-") as empty:
            cold = rebuild(args.recipe, Path(empty))
        print(f"empty ccache: {cold}")
        print(f"ratio cold/warm: {cold['seconds'] / warm['seconds']:.2f}")  # type: ignore[operator]
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
