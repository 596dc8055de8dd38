"""How much a full `caffedoc check` costs next to the import it diagnoses.

Runs, in one session and interleaved (so both see the same machine load), a full
`caffedoc check --python PYTHON` and `PYTHON -c "import caffe, cv2"`, several
times each after one warm-up, and prints the median wall time of each and their
ratio. The project's goal is at most 1.25x (for scale: `python -m
torch.utils.collect_env` takes 1.28x a bare `import torch`, and judges nothing).

    python benchmarks/check_vs_import.py PYTHON [--caffe DIR] [--repeat N] [--json]

PYTHON is the interpreter (or venv) that imports caffe; the environment (PYTHONPATH
included) is passed to both commands unchanged. caffedoc runs under the interpreter
running this script.
"""

from __future__ import annotations

import argparse
import json
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


def _wall(argv: list[str], timeout: float) -> tuple[float, int]:
    start = time.perf_counter()
    res = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    return time.perf_counter() - start, res.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("python", type=Path, help="interpreter or venv that imports caffe")
    parser.add_argument("--caffe", type=Path, help="passed on to caffedoc check --caffe")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of each (default 7)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    python = str(_interpreter(args.python))
    baseline = [python, "-c", "import caffe, cv2"]
    check = [sys.executable, "-m", "caffedoc", "check", "--python", python]
    if args.caffe:
        check += ["--caffe", str(args.caffe)]

    _, code = _wall(baseline, args.timeout)
    if code != 0:
        print(f"`{' '.join(baseline)}` fails (exit {code}): nothing to compare", file=sys.stderr)
        return 2
    _wall(check, args.timeout)  # warm-up: file cache, .pyc files

    times: dict[str, list[float]] = {"import": [], "check": []}
    for _ in range(args.repeat):
        times["import"].append(_wall(baseline, args.timeout)[0])
        times["check"].append(_wall(check, args.timeout)[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["check"] / med["import"]

    if args.json:
        print(json.dumps({"median_s": med, "runs_s": times, "ratio": ratio, "goal": GOAL}))
    else:
        for name, label in (
            ("import", 'python -c "import caffe, cv2"'),
            ("check", "caffedoc check"),
        ):
            runs = " ".join(f"{t:.2f}" for t in times[name])
            print(f"{label:<28} median {med[name]:.3f} s   ({runs})")
        verdict = "meets" if ratio <= GOAL else "misses"
        print(f"ratio: {ratio:.2f}x ({verdict} the goal of {GOAL}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
