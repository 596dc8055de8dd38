"""How much a full `caffedoc check` costs next to the import it diagnoses.

Runs, in one session and interleaved (so both see the same machine load), a full
`caffedoc check --python PYTHON` and `PYTHON -c "import caffe, cv2"`, several
times each after one warm-up, and prints the median wall time of each, their
ratio, the CPU time each used (on a shared machine the steadier figure: the
check's children run in parallel and suffer most from other load) and the
machine's load average before and after (a ratio means little without it).
The project's goal is at most 1.25x wall (for scale: `python -m
torch.utils.collect_env` takes 1.28x a bare `import torch`, and judges nothing).

    python benchmarks/check_vs_import.py PYTHON [--caffe DIR] [--repeat N] [--json]

PYTHON is the interpreter (or venv) that imports caffe; the environment (PYTHONPATH
included) is passed to both commands unchanged. caffedoc runs under the interpreter
running this script.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL = 1.25


def _interpreter(path: Path) -> Path:
    if path.is_dir():
        for sub in ("bin/python3", "bin/python"):
            if (path / sub).exists():
                return path / sub
    return path


def _run(argv: list[str], timeout: float) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (the command and all its children) and exit status."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    res = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, res.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("python", type=Path, help="interpreter or venv that imports caffe")
    parser.add_argument("--caffe", type=Path, help="passed on to caffedoc check --caffe")
    parser.add_argument("--repeat", type=int, default=9, help="timed runs of each (default 9)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    python = str(_interpreter(args.python))
    baseline = [python, "-c", "import caffe, cv2"]
    check = [sys.executable, "-m", "caffedoc", "check", "--python", python]
    if args.caffe:
        check += ["--caffe", str(args.caffe)]

    code = _run(baseline, args.timeout)[2]
    if code != 0:
        print(f"`{' '.join(baseline)}` fails (exit {code}): nothing to compare", file=sys.stderr)
        return 2
    _run(check, args.timeout)  # warm-up: file cache, .pyc files

    load_before = os.getloadavg()[0]
    wall: dict[str, list[float]] = {"import": [], "check": []}
    cpu: dict[str, list[float]] = {"import": [], "check": []}
    for _ in range(args.repeat):
        for name, argv in (("import", baseline), ("check", check)):
            w, c, _ = _run(argv, args.timeout)
            wall[name].append(w)
            cpu[name].append(c)
    load = (load_before, os.getloadavg()[0])
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    ratio = med["check"] / med["import"]
    cpu_ratio = med_cpu["check"] / med_cpu["import"]

    if args.json:
        figures = {"median_wall_s": med, "median_cpu_s": med_cpu, "wall_s": wall, "cpu_s": cpu}
        figures["load_average"] = load
        print(json.dumps({**figures, "ratio": ratio, "cpu_ratio": cpu_ratio, "goal": GOAL}))
    else:
        for name, label in (
            ("import", 'python -c "import caffe, cv2"'),
            ("check", "caffedoc check"),
        ):
            runs = " ".join(f"{t:.2f}" for t in wall[name])
            print(f"{label:<30} wall {med[name]:.3f} s  cpu {med_cpu[name]:.3f} s  ({runs})")
        verdict = "meets" if ratio <= GOAL else "misses"
        print(f"ratio: {ratio:.2f}x wall ({verdict} the goal of {GOAL}x), {cpu_ratio:.2f}x CPU")
        print(f"load average: {load[0]:.2f} before, {load[1]:.2f} after ({os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
