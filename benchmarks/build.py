"""Benchmark `caffedoc build` (ratios from one run, same machine, same job count).

1. cold `caffedoc build` (private cache root, ccache disabled): the whole pipeline,
   from the cached tarball to a pinned, smoke-tested install;
2. a plain `cmake --build` of the same configured tree after `clean`, same -j,
   ccache disabled: the compile alone, the floor caffedoc's overhead is measured against;
3. `caffedoc build` again with nothing changed (goal: under 5 s), median of 3.

On a shared machine the two long runs see different loads; the cold run's total against
its own compile step (printed too) isolates caffedoc's overhead from that noise.

Usage: python benchmarks/build.py --python VENV_PYTHON [--jobs N] [--json]
The interpreter needs pycaffe's runtime deps (numpy, six, protobuf, scikit-image, scipy);
its site-packages gets caffedoc's pin .pth.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed(argv: list[str], env: dict[str, str], cwd: Path = REPO) -> tuple[float, str]:
    start = time.monotonic()
    res = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    took = time.monotonic() - start
    if res.returncode != 0:
        sys.exit(f"failed ({res.returncode}): {' '.join(argv)}\n{res.stdout}\n{res.stderr[-3000:]}")
    return took, res.stderr


def compile_step(stderr: str) -> float:
    """The compile step's own time, as caffedoc reported it ("compile    ok (312.4 s)")."""
    m = re.search(r"compile\s+ok \(([\d.]+) s", stderr)
    return float(m.group(1)) if m else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="interpreter to build for and pin")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from caffedoc.build import paths
    from caffedoc.recipes import load_all

    recipe = next(r for r in load_all() if r.name == "debian12-cpu")
    tarball = paths.sources_dir() / recipe.source.tarball
    if not tarball.is_file():
        sys.exit(f"{tarball} is not cached: run `caffedoc build --recipe debian12-cpu` once")
    with tempfile.TemporaryDirectory(prefix="caffedoc-bench-") as tmp:
        root = Path(tmp)
        env = {
            **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
            "CAFFEDOC_CACHE_DIR": str(root / "cache"),
            "CCACHE_DISABLE": "1",
        }
        cli = [sys.executable, "-m", "caffedoc", "build", "--recipe", recipe.name,
               "--source", str(tarball), "--jobs", str(args.jobs),
               "--python", args.python, "--prefix", str(root / "prefix")]  # fmt: skip
        cold, cold_log = timed(cli, env)
        dry = subprocess.run(
            [*cli, "--dry-run", "--json"], env=env, capture_output=True, text=True, check=True
        )
        plan = json.loads(dry.stdout)
        build_dir = Path(plan["workdir"]) / "build"
        timed(["cmake", "--build", str(build_dir), "--target", "clean"], env)
        plain, _ = timed(["cmake", "--build", str(build_dir), "-j", str(args.jobs)], env)
        repeats = [timed(cli, env)[0] for _ in range(3)]
    inner = compile_step(cold_log)
    repeat = statistics.median(repeats)
    figures = {
        "jobs": args.jobs,
        "cold_caffedoc_build_s": round(cold, 1),
        "plain_cmake_build_s": round(plain, 1),
        "cold_ratio": round(cold / plain, 3),
        "compile_step_in_cold_s": round(inner, 1),
        "overhead_s": round(cold - inner, 1),
        "overhead_ratio": round(cold / inner, 3),
        "repeat_build_s": round(repeat, 2),
        "repeat_runs_s": [round(r, 2) for r in repeats],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"cold caffedoc build      {cold:7.1f} s  (-j{args.jobs}, ccache off, smoke included)")
    print(f"plain cmake --build      {plain:7.1f} s  (same tree after clean, same -j)")
    print(f"ratio                    {cold / plain:7.3f}   (goal <= 1.05)")
    print(f"compile step inside cold {inner:7.1f} s  (everything else: {cold - inner:.1f} s)")
    print(f"cold / its compile step  {cold / inner:7.3f}   (load-independent overhead)")
    print(f"repeat, nothing changed  {repeat:7.2f} s  (median of 3; goal < 5 s)")


if __name__ == "__main__":
    main()
