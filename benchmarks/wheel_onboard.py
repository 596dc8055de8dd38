"""Benchmark onboarding a machine from a wheel against building Caffe there (one run).

1. onboarding: a fresh venv, `pip install --find-links WHEELHOUSE caffe` (the wheel, its
   dependencies from pip's cache, warmed by one untimed install first), then
   `caffedoc smoke`: median of 3 (goal: <= 60 s);
2. the cold build it replaces: `caffedoc build` of the same recipe for a venv of the
   same Python that already has pycaffe's packages, with a private cache root and ccache
   off, from the cached source tarball, smoke included.

Usage: python benchmarks/wheel_onboard.py --python BASE_PYTHON --wheelhouse DIR [--jobs N]
Make DIR first: caffedoc build --recipe debian12-cpu --portable --python VENV --wheel --out DIR
(the load average before and after is printed: others may share the machine)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEPS = ("numpy", "protobuf", "six", "scipy", "scikit-image")


def run(argv: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    res = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"failed ({res.returncode}): {' '.join(argv)}\n{res.stdout}\n{res.stderr[-3000:]}")
    return time.monotonic() - start


def onboard(base: str, wheelhouse: str, where: Path, env: dict[str, str]) -> float:
    """Fresh venv + pip install of the wheel + smoke, timed as one."""
    python = str(where / "bin" / "python")
    start = time.monotonic()
    run([base, "-m", "venv", str(where)], env)
    run([python, "-m", "pip", "install", "-q", "--find-links", wheelhouse, "caffe"], env)
    run([sys.executable, "-m", "caffedoc", "smoke", "--python", python], env)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="the base interpreter (not a venv)")
    parser.add_argument("--wheelhouse", required=True, help="folder holding the caffe wheel")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    from caffedoc.build import paths
    from caffedoc.recipes import load_all

    recipe = next(r for r in load_all() if r.name == "debian12-cpu")
    tarball = paths.sources_dir() / recipe.source.tarball
    if not tarball.is_file():
        sys.exit(f"{tarball} is not cached: run `caffedoc build --recipe debian12-cpu` once")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    wheels = sorted(Path(args.wheelhouse).glob("caffe-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"{args.wheelhouse}: expected one caffe wheel, found {len(wheels)}")
    wheel = wheels[0]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="caffedoc-onboard-") as tmp:
        root = Path(tmp)
        onboard(args.python, args.wheelhouse, root / "warm", env)  # fills pip's cache
        runs = [onboard(args.python, args.wheelhouse, root / f"v{i}", env) for i in range(3)]
        venv = root / "build-venv"
        run([args.python, "-m", "venv", str(venv)], env)
        run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *DEPS], env)
        cold_env = {**env, "CAFFEDOC_CACHE_DIR": str(root / "cache"), "CCACHE_DISABLE": "1"}
        cold = run([sys.executable, "-m", "caffedoc", "build", "--recipe", recipe.name,
                    "--source", str(tarball), "--jobs", str(args.jobs),
                    "--python", str(venv), "--prefix", str(root / "prefix")], cold_env)  # fmt: skip
    median = statistics.median(runs)
    print(json.dumps({
        "onboard_wheel_s": round(median, 1),
        "onboard_runs_s": [round(r, 1) for r in runs],
        "cold_build_s": round(cold, 1),
        "ratio": round(cold / median, 1),
        "jobs": args.jobs,
        "cores": os.cpu_count(),
        "wheel": wheel.name,
        "wheel_mb": round(wheel.stat().st_size / 1e6, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
