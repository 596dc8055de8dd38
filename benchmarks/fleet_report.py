"""How long `caffedoc report` takes, and how much memory, over a fleet of 10,000 hosts.

The reports are made from real `check --json` reports (SEED files, or one fresh
`caffedoc check --json` of this machine): each copy gets its own host name, machine id
and time, and varied facts (Python, protobuf runtime, driver, CUDA) and findings (drawn
from the seeds' own), so drift and the finding matrix have real work to do. They are
written as files, then `caffedoc report DIR --html PAGE` (text and the page) and
`caffedoc report DIR --json` each run in a child process, timed; the peak resident memory
is the largest child's. Goal: under 10 s and 1 GB each.

    python benchmarks/fleet_report.py [SEED.json ...] [--hosts N] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHONS = ["3.11.2", "3.11.2", "3.11.2", "3.11.7", "3.10.12", "3.9.18"]
PROTOBUFS = ["3.20.3", "3.20.3", "4.25.8", "3.19.6", "6.33.0"]
DRIVERS = ["550.54.15", "550.54.15", "550.54.15", "535.183.01", None]
CUDAS = ["12.4", "12.4", "12.4", "11.8", "13.0"]


def seeds(paths: list[Path]) -> list[dict]:
    if paths:
        return [json.loads(p.read_text()) for p in paths]
    out = subprocess.run(
        [sys.executable, "-m", "caffedoc", "check", "--json"], capture_output=True, text=True
    )
    return [json.loads(out.stdout)]


def variant(seed: dict, pool: list[dict], n: int, rng: random.Random) -> dict:
    report = copy.deepcopy(seed)
    report["schema"] = 1
    report["host"] = {"name": f"node{n:05d}", "hostname": f"node{n:05d}",
                      "machine_id": f"{rng.getrandbits(128):032x}"}  # fmt: skip
    report["time"] = f"2026-12-07T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"
    facts = report["facts"]
    target = facts.get("python", {}).get("target") or {}
    target["version"] = rng.choice(PYTHONS)
    for runtime in facts.get("protobuf", {}).get("runtimes") or []:
        runtime["version"] = rng.choice(PROTOBUFS)
    cuda = facts.setdefault("cuda", {})
    cuda.setdefault("driver", {})["version"] = rng.choice(DRIVERS)
    cuda["toolkits"] = [{"root": "/usr/local/cuda", "version": rng.choice(CUDAS)}]
    findings = rng.sample(pool, k=rng.randint(0, min(3, len(pool))))
    report["findings"] = findings
    worst = {f.get("severity") for f in findings}
    report["status"] = "error" if "error" in worst else "warning" if "warning" in worst else "ok"
    return report


def timed(argv: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    res = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if res.returncode not in (0, 1):
        sys.exit(f"{' '.join(argv)}: exit {res.returncode}: {res.stderr[-2000:]}")
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seed", nargs="*", type=Path)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="write the reports here and keep them")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(19)
    real = seeds(args.seed)
    pool = [f for s in real for f in s["findings"]] or [
        {"id": "interpreter-drift", "severity": "warning", "title": "mismatched Python"}
    ]
    with tempfile.TemporaryDirectory() as scratch:
        out = args.keep or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        size = 0
        for n in range(args.hosts):
            data = json.dumps(variant(real[n % len(real)], pool, n, rng))
            size += len(data)
            (out / f"node{n:05d}.json").write_text(data)
        made = time.perf_counter() - start
        report = [sys.executable, "-m", "caffedoc", "report", str(out)]
        text_html, rss1 = timed([*report, "--html", str(Path(scratch) / "fleet.html")])
        as_json, rss2 = timed([*report, "--json"])
        page = (Path(scratch) / "fleet.html").stat().st_size
    result = {
        "hosts": args.hosts,
        "reports_mb": round(size / 2**20, 1),
        "made_s": round(made, 2),
        "text_and_html_s": round(text_html, 2),
        "json_s": round(as_json, 2),
        "peak_rss_mb": max(rss1, rss2),
        "html_mb": round(page / 2**20, 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>16}: {value}")


if __name__ == "__main__":
    main()
