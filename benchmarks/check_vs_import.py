"""How much a full `caffedoc check` costs next to the import it diagnoses.

Runs, in one session and interleaved (so both see the same machine load), a full
`caffedoc check --python PYTHON` and `PYTHON -c "import caffe, cv2"`, several
times each after one warm-up, and prints the median wall time of each, their
ratio, the CPU time each used (on a shared machine the steadier figure: the
check's children run in parallel and suffer most from other load) and the
machine's load average before and after (a ratio means little without it).
The project's goal is at most 1.1x wall, 1.2x the least that counts (for scale:
`python -m torch.utils.collect_env` takes 1.28x a bare `import torch`, and judges
nothing).

`--hang` measures the worst case instead: one check with every external tool it runs
(nvidia-smi, ldconfig, dpkg, dpkg-query, pip, a python, protoc, nvcc, readelf, c++,
cmake) replaced on PATH by one that never answers; the goal is under 15 s.

    python benchmarks/check_vs_import.py PYTHON [--caffe DIR] [--repeat N] [--json]
    python benchmarks/check_vs_import.py PYTHON --hang

PYTHON is the interpreter (or venv) that imports caffe; the environment (PYTHONPATH
included) is passed to both commands unchanged. caffedoc runs under the interpreter
running this script.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.1
LEAST = 1.2
HANG_GOAL = 15.0
# Every external tool a check runs; each replaced by one that never answers.
TOOLS = ("nvidia-smi", "ldconfig", "dpkg", "dpkg-query", "pip", "pip3", "protoc", "nvcc")
TOOLS += ("readelf", "c++", "cmake")
HANG_C = "#include <unistd.h>\nint main(void) { for (;;) pause(); }\n"


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


def hanging_tools(where: Path) -> list[str]:
    """Fakes of TOOLS that never answer, and a python3.99 (a real ELF, so the check runs
    it as an interpreter) that never does either; the names made."""
    made = []
    for tool in TOOLS:
        (where / tool).write_text("#!/bin/sh\nexec sleep 100000\n")
        (where / tool).chmod(0o755)
        made.append(tool)
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc:
        (where / "hang.c").write_text(HANG_C)
        subprocess.run([cc, "-o", where / "python3.99", where / "hang.c"], check=True)
        (where / "pip3.99").write_text(f"#!{where / 'python3.99'}\n")
        (where / "pip3.99").chmod(0o755)
        made += ["python3.99", "pip3.99"]
    return made


def worst_case(check: list[str], timeout: float, as_json: bool) -> int:
    """One check with every tool on PATH hanging: its wall time against HANG_GOAL."""
    with tempfile.TemporaryDirectory(prefix="caffedoc-hang-") as tmp:
        made = hanging_tools(Path(tmp))
        env = {**os.environ, "PATH": f"{tmp}{os.pathsep}{os.environ.get('PATH', '')}"}
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        res = subprocess.run([*check, "--json"], env=env, capture_output=True, timeout=timeout)
        wall = time.perf_counter() - start
        load = (load_before, os.getloadavg()[0])
    report = json.loads(res.stdout)
    ids = sorted({f["id"] for f in report["findings"]})
    if as_json:
        print(
            json.dumps({"hang_wall_s": wall, "tools": made, "findings": ids, "load_average": load})
        )
        return 0
    verdict = "meets" if wall < HANG_GOAL else "misses"
    print(f"every tool hanging ({', '.join(made)}): check took {wall:.1f} s", end=" ")
    print(f"({verdict} the goal of {HANG_GOAL:.0f} s), exit {res.returncode}, findings: {ids}")
    print(f"load average: {load[0]:.2f} before, {load[1]:.2f} after ({os.cpu_count()} cores)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("python", type=Path, help="interpreter or venv that imports caffe")
    parser.add_argument("--caffe", type=Path, help="passed on to caffedoc check --caffe")
    parser.add_argument("--repeat", type=int, default=9, help="timed runs of each (default 9)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--hang", action="store_true", help="the worst case: every tool hangs")
    args = parser.parse_args(argv)

    python = str(_interpreter(args.python))
    baseline = [python, "-c", "import caffe, cv2"]
    check = [sys.executable, "-m", "caffedoc", "check", "--python", python]
    if args.caffe:
        check += ["--caffe", str(args.caffe)]

    if args.hang:
        return worst_case(check, args.timeout, args.json)
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
        verdict = "meets the goal" if ratio <= GOAL else "misses the goal"
        if GOAL < ratio <= LEAST:
            verdict += f" but within the least that counts, {LEAST}x"
        print(f"ratio: {ratio:.2f}x wall ({verdict} of {GOAL}x), {cpu_ratio:.2f}x CPU")
        print(f"load average: {load[0]:.2f} before, {load[1]:.2f} after ({os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
