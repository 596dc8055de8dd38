"""The GPU proof, one prepared command for a GPU host. UNRUN: no GPU was ever lent.

    python3 benchmarks/gpu_proof.py WHEELHOUSE [--budget SECONDS]

For the host DEVELOPERS.md describes: no network, python3 3.12 with NVIDIA's cuDNN 9,
cuBLAS, cuRAND and CUDA runtime wheels already installed, at most 64 MiB brought along.
WHEELHOUSE holds what is brought: a cp312 GPU wheel of Caffe for the card's architecture
(`caffedoc build --recipe current-gpu-cuda13 --cuda-arch 9.0 --python python3.12 --wheel`),
caffedoc's own wheel (`pip wheel --no-deps -w WHEELHOUSE .`) and any small wheel the host
lacks. It installs them with python3's own pip, offline, into the site-packages that holds
the NVIDIA wheels (the Caffe wheel finds them there through `$ORIGIN/../nvidia/…`, as
PyTorch's does), then runs `caffedoc smoke --gpu 0 --json`, `caffe device_query -gpu 0`,
and `caffe time` and `caffe train` of a LeNet-sized net (DummyData, no dataset) on the GPU
and on the CPU, and prints one JSON line of what it measured. Every step has a timeout;
a failed step is recorded, and the later ones still run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
LENET = """name: "LeNet"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 64 dim: 1 dim: 28 dim: 28 } shape { dim: 64 }
    data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 20 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param { num_output: 50 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
  inner_product_param { num_output: 500 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
"""
SOLVER = 'net: "lenet.prototxt"\nbase_lr: 0.01\nmomentum: 0.9\nlr_policy: "fixed"\n' \
         'max_iter: 500\ndisplay: 100\nsnapshot_prefix: "lenet"\nsolver_mode: {mode}\n'  # fmt: skip


def step(argv: list[str], deadline: float, cwd: Path | None = None) -> dict:
    """Run one step within what is left of the budget; how it ended, as data."""
    left = deadline - time.monotonic()
    if left < 5:
        return {"argv": argv, "ran": False, "why": "no time left"}
    start = time.monotonic()
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=left, cwd=cwd)
    except subprocess.TimeoutExpired:
        return {"argv": argv, "ran": True, "timed_out": True}
    except OSError as exc:
        return {"argv": argv, "ran": False, "why": str(exc)}
    return {"argv": argv, "ran": True, "rc": res.returncode, "seconds": round(time.monotonic()
            - start, 2), "stdout": res.stdout[-4000:], "stderr": res.stderr[-4000:]}  # fmt: skip


def forward_backward_ms(result: dict) -> float | None:
    m = re.search(r"Average Forward-Backward: ([\d.]+) ms", result.get("stderr", ""))
    return float(m.group(1)) if m else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheelhouse", type=Path)
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for it all")
    args = parser.parse_args()
    deadline = time.monotonic() + args.budget
    out: dict = {"python": sys.version.split()[0], "wheelhouse": sorted(
        p.name for p in args.wheelhouse.glob("*.whl"))}  # fmt: skip
    out["install"] = step([PY, "-m", "pip", "install", "--no-index", "--find-links",
                           str(args.wheelhouse), "--break-system-packages", "caffe",
                           "caffedoc"], deadline)  # fmt: skip
    caffe = str(Path(PY).parent / "caffe")
    smoke = step([PY, "-m", "caffedoc", "smoke", "--gpu", "0", "--json"], deadline)
    with contextlib.suppress(ValueError):
        smoke["report"] = json.loads(smoke.get("stdout") or "null")
    out["smoke_gpu"] = smoke
    out["device_query"] = step([caffe, "device_query", "-gpu", "0"], deadline)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "lenet.prototxt").write_text(LENET)
        for mode in ("GPU", "CPU"):
            (work / f"solver_{mode}.prototxt").write_text(SOLVER.format(mode=mode))
            gpu = ["-gpu", "0"] if mode == "GPU" else []
            timed = step([caffe, "time", "-model", "lenet.prototxt", "-iterations", "50", *gpu],
                         deadline, work)  # fmt: skip
            train = step([caffe, "train", "-solver", f"solver_{mode}.prototxt", *gpu],
                         deadline, work)  # fmt: skip
            out[f"time_{mode.lower()}"] = {
                "rc": timed.get("rc"),
                "forward_backward_ms": forward_backward_ms(timed),
            }
            out[f"train_{mode.lower()}"] = {"rc": train.get("rc"),
                                            "seconds_500_iterations": train.get("seconds"),
                                            "tail": (train.get("stderr") or "")[-600:]}  # fmt: skip
    g, c = out["train_gpu"], out["train_cpu"]
    both = g["rc"] == 0 and c["rc"] == 0  # a crashed run's seconds are no timing
    speedup = c["seconds_500_iterations"] / g["seconds_500_iterations"] if both else None
    out["train_speedup_gpu_over_cpu"] = round(speedup, 2) if speedup else None
    out["install"].pop("stdout", None)  # pip's progress: its rc and stderr say enough
    print(json.dumps(out))


if __name__ == "__main__":
    main()
