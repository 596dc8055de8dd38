"""Benchmark the CUDA 13 + cuDNN 9 build (`current-gpu-cuda13`) and measure its disk.

All in one run, in a private cache root (the machine's own cache is not touched):
1. cold: wheels downloaded, unpacked, toolkit assembled, every file compiled (ccache
   empty), installed, smoke-tested;
2. warm compile: the finished build and the work tree removed, ccache kept: what a
   changed option or patch costs when the compiler cache is warm;
3. repeat with nothing changed: a cache hit;
4. disk: the wheels, the unpacked wheels, the toolkit root (symlinks), the prefix (its
   CUDA libraries are hard links into the unpacked wheels).

Usage: python benchmarks/gpu_build.py --python VENV_PYTHON [--cuda-arch 7.5] [--jobs N]
The interpreter needs pycaffe's runtime deps; its site-packages gets caffedoc's pin.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = "current-gpu-cuda13"


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.monotonic()
    res = subprocess.run(argv, env=env, capture_output=True, text=True)
    took = time.monotonic() - start
    if res.returncode != 0:
        sys.exit(f"failed ({res.returncode}): {' '.join(argv)}\n{res.stdout}\n{res.stderr[-3000:]}")
    return took, res.stderr


def step(stderr: str, name: str) -> float:
    m = re.search(rf"{name}\s+ok \(([\d.]+) s", stderr)
    return float(m.group(1)) if m else float("nan")


def du_mb(*paths: Path) -> int:
    """Disk used by these paths together, as du counts it: a hard link once."""
    out = subprocess.run(["du", "-sck", *map(str, paths)], capture_output=True, text=True).stdout
    return round(int(out.splitlines()[-1].split()[0]) / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True)
    parser.add_argument("--cuda-arch", default="7.5")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="caffedoc-gpu-bench-") as tmp:
        root = Path(tmp)
        cache = root / "cache"
        skip = ("PYTHONPATH", "CAFFEDOC_CCACHE_DIR")
        env = {k: v for k, v in os.environ.items() if k not in skip}
        env["CAFFEDOC_CACHE_DIR"] = str(cache)
        source = Path.home() / ".cache" / "caffedoc" / "sources"
        shutil.copytree(source, cache / "sources")  # the Caffe tarball: not what is measured
        cli = [sys.executable, "-m", "caffedoc", "build", "--recipe", RECIPE,
               "--cuda-arch", args.cuda_arch, "--jobs", str(args.jobs),
               "--python", args.python, "--prefix", str(root / "prefix")]  # fmt: skip
        cold, cold_log = timed(cli, env)
        dry = [*cli, "--dry-run", "--json"]
        plan = json.loads(subprocess.run(dry, env=env, capture_output=True, text=True).stdout)
        figures = {
            "cuda_arch": args.cuda_arch,
            "jobs": args.jobs,
            "cold_s": round(cold, 1),
            "cold_toolkit_s": step(cold_log, "toolkit"),
            "cold_compile_s": step(cold_log, "compile"),
        }
        shutil.rmtree(plan["workdir"])
        shutil.rmtree(cache / "builds")
        shutil.rmtree(root / "prefix")
        warm, warm_log = timed(cli, env)
        figures |= {"warm_s": round(warm, 1), "warm_compile_s": step(warm_log, "compile")}
        figures["repeat_s"] = round(timed(cli, env)[0], 2)
        unpacked, prefix = cache / "unpacked", root / "prefix"
        figures |= {
            "disk_wheels_mb": du_mb(cache / "wheels"),
            "disk_unpacked_mb": du_mb(unpacked),
            "disk_toolkit_root_mb": du_mb(Path(plan["toolkit"]["root"])),
            "disk_prefix_alone_mb": du_mb(prefix),
            "disk_prefix_beyond_unpacked_mb": du_mb(unpacked, prefix) - du_mb(unpacked),
            "disk_ccache_mb": du_mb(cache / "ccache"),
        }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
