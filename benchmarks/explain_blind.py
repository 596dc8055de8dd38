"""Score `caffedoc explain` on a folder of labelled logs: top-1 and unrelated left unclaimed.

The folder holds LABEL/NAME.log, LABEL being the finding id the log's thread
established (`none` for real Caffe failures that are none of the known
problems). Run it on a batch the moment it is collected, before changing any
signature, to get the batch's first-sight figure; run it again after tuning
for the tuned figure. Prints each miss, the figures by class and the time per
log (median and worst, reading each file through `explain_stream`).

    python benchmarks/explain_blind.py DIR [DIR ...] [--json]

Why first sight missed, rounds 4 and 5 (19 misses, re-scored with the engine of the
commit before each round's tuning): (a) the cause's message form not covered at all 7
(protobuf's headers refusing the C++ standard, errors inside protobuf's headers, macOS ld's
undefined caffe:: symbols, ld's -fPIC refusal, a crash inside libpython's C API, gcc's
-Wswitch over cudnnStatus_t, otool naming Apple's Python); (b) covered, but a variant
name or spelling 5 (a hyphenated dylib, MKL's vdSub, port_def.inc, a fork's CMake
message, "30/35"); (c) evidence present below the claim threshold 1 (a bare macOS
"Segmentation fault: 11" under Anaconda); (d) another finding won 3 (a bare "DLL load
failed", caffe.pb.h read as protobuf's, two attempts in one paste); (e) a false claim on
a `none` log 3 (LNK1104 libcaffe.lib inside Caffe's own solution, an unresolved caffe::
symbol in _caffe.so twice). So the threshold is not what misses: a form known for one
owner and not the others is. Round 6 made the forms owner-wide (an error located inside
any dependency's header) and scored a new batch: 21/25 top-1, 13/13 unclaimed; its
misses: (b) 3 (Caffe's own headers other than caffe.hpp, a consumer's include chain,
"cudaLaunch returns 0x8"), (d) 1 (a libprotobuf missing for a shadowing Caffe).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from caffedoc.explain import explain_stream


def score(dirs: list[Path]) -> dict:
    """Every labelled log's verdict, with the batch's figures."""
    rows, took = [], []
    for root in dirs:
        for case in sorted(root.glob("*/*.log")):
            started = time.perf_counter()
            with case.open("rb") as stream:
                result = explain_stream(stream)
            took.append(time.perf_counter() - started)
            got = result.matches[0].problem.id if result.matches else "none"
            rows.append(
                {"case": f"{case.parent.name}/{case.name}", "label": case.parent.name, "got": got}
            )
    related = [r for r in rows if r["label"] != "none"]
    unrelated = [r for r in rows if r["label"] == "none"]
    by_class: dict[str, list[int]] = {}
    for r in related:
        by_class.setdefault(r["label"], [0, 0])
        by_class[r["label"]][0] += r["got"] == r["label"]
        by_class[r["label"]][1] += 1
    return {
        "top1": [sum(r["got"] == r["label"] for r in related), len(related)],
        "unclaimed": [sum(r["got"] == "none" for r in unrelated), len(unrelated)],
        "by_class": by_class,
        "misses": [r for r in rows if r["got"] != r["label"]],
        "wrong_answers": Counter(r["got"] != "none" for r in related if r["got"] != r["label"])[
            True
        ],
        "ms_per_log": {
            "median": round(1000 * statistics.median(took), 2) if took else 0,
            "max": round(1000 * max(took), 2) if took else 0,
            # the first log also pays for compiling the signatures, once per process
            "first": round(1000 * took[0], 2) if took else 0,
            "max_after_first": round(1000 * max(took[1:]), 2) if len(took) > 1 else 0,
        },
    }


def _pct(pair: list[int]) -> str:
    hit, total = pair
    return f"{hit}/{total} ({100 * hit / total:.1f} %)" if total else "0/0"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for d in args.dirs:
        if not d.is_dir():
            print(f"explain_blind: error: {d}: not a directory", file=sys.stderr)
            return 2
    result = score(args.dirs)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for miss in result["misses"]:
        print(f"miss: {miss['case']} -> {miss['got']}")
    for label, pair in sorted(result["by_class"].items()):
        print(f"  {label:28} {_pct(pair)}")
    print(
        f"top-1 {_pct(result['top1'])}, wrong answers {result['wrong_answers']}; "
        f"unrelated unclaimed {_pct(result['unclaimed'])}; "
        f"per log {result['ms_per_log']['median']} ms median, {result['ms_per_log']['max']} ms max "
        f"(first {result['ms_per_log']['first']} ms with the signatures' compile, "
        f"then {result['ms_per_log']['max_after_first']} ms max)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
