"""Benchmark the CUDA 13 image for one GPU target: first build, rebuilds (one run).

`caffedoc docker --build current-gpu-cuda13 --cuda-arch 75 --engine buildah
--base-from-debootstrap`, three times, each from a copy of this checkout taken at the start
(another engineer's edit of the shared tree would otherwise change the build context):

1. first: as cold as the machine allows; it reports how many of its steps buildah took
   from its layer cache and the compile's ccache counters (caffedoc's ccache is shared
   with `caffedoc build` here; the image's nvcc is the wheels', so its CUDA objects miss
   unless an image compiled them before);
2. changed: caffedoc differs by one comment line, which invalidates every layer from
   `COPY caffedoc` on: the compile runs again, from the ccache the first one filled;
3. unchanged: the same context again: every step from buildah's cache.

Reported for each: seconds, steps from cache, ccache counters, the final image's size and
the build stage's (buildah's sizes; vfs storage here).

Usage (root, buildah, NVIDIA's wheels in caffedoc's cache):
    python benchmarks/image_cuda.py [--cuda-arch 75]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from image_rebuild import COUNTER, snapshot  # beside this script

RECIPE = "current-gpu-cuda13"
COMMITTED = re.compile(r"^--> ([0-9a-f]{11})$", re.M)
ENV = {**os.environ, "STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}


def size(image: str) -> str:
    res = subprocess.run(["buildah", "images", "--format", "{{.Size}}", image],
                         capture_output=True, text=True, env=ENV)  # fmt: skip
    return res.stdout.strip() or f"unknown ({res.stderr.strip()})"


def build(checkout: Path, arch: str) -> dict[str, object]:
    """One image build: seconds, steps from cache, ccache counters, sizes."""
    argv = [sys.executable, "-m", "caffedoc", "docker", "--build", RECIPE, "--cuda-arch", arch,
            "--engine", "buildah", "--base-from-debootstrap"]  # fmt: skip
    start = time.monotonic()
    res = subprocess.run(argv, cwd=checkout, capture_output=True, text=True)
    seconds = time.monotonic() - start
    log = (Path.home() / ".cache" / "caffedoc" / "images" / f"{RECIPE}.log").read_text()
    if res.returncode != 0:
        sys.exit(f"failed ({res.returncode}):\n{res.stdout}\n{res.stderr[-3000:]}\n{log[-4000:]}")
    after = log[log.rfind("ccache, this compile:") :] if "ccache, this compile:" in log else ""
    stage = COMMITTED.findall(log[: log.index("[2/2] STEP 1/")])[-1]
    return {
        "seconds": round(seconds),
        "steps": len(re.findall(r"^\[\d/\d\] STEP ", log, re.M)),
        "from_cache": log.count("--> Using cache"),
        "ccache": {k: int(v) for k, v in COUNTER.findall(after[:2000])},
        "final": size(f"caffe:{RECIPE}-sm{arch}"),
        "build_stage": size(stage),
        "said": res.stdout.strip().splitlines()[-2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuda-arch", default="75")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    seconds: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="image-cuda-") as scratch:
        copy = snapshot(Path(scratch))
        for name in ("first", "changed", "unchanged"):
            if name == "changed":
                init = copy / "caffedoc" / "__init__.py"
                init.write_text(init.read_text() + f"# image benchmark: {time.time_ns()}\n")
            run = build(copy, args.cuda_arch)
            seconds[name] = max(int(str(run["seconds"])), 1)
            print(f"{name}: {run}", flush=True)
            print(f"load average: {os.getloadavg()}", flush=True)
    print(f"ratio first/changed: {seconds['first'] / seconds['changed']:.1f}, "
          f"first/unchanged: {seconds['first'] / seconds['unchanged']:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
