"""caffedoc.memdata against the real Caffe: each bad input, raw call versus the helper.

Each case is fed once the raw way (`solver.net.set_input_arrays(X, Y)`, in a child
process of its own, since some abort) and once through `feed` (all in one child).
The raw call fails badly: RuntimeErrors whose wording can be wrong, silent NaN
losses, training on freed memory, an abort. The helper gives a clear MemDataError
or trains correctly, judged by accuracy on the true data.
"""

from __future__ import annotations

import json

import pytest

from caffedoc import host
from caffedoc.smoke.diagnosis import explain_failure
from caffedoc.smoke.runner import ChildReport
from tests.conftest import REPO

pytestmark = pytest.mark.caffe

NET = """
name: "memdata"
layer { name: "data" type: "MemoryData" top: "data" top: "label"
  memory_data_param { batch_size: 16 channels: 1 height: 4 width: 4 } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
  inner_product_param { num_output: 16 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy"
  include { phase: TEST } }
"""
# test_interval past the last step: tests run by hand unless a case asks for the solver's own.
SOLVER = """
net: "{net}" base_lr: 0.01 momentum: 0.9 lr_policy: "fixed" max_iter: 1000 display: 0
test_iter: 4 test_interval: {test_interval} test_initialization: {test_init} random_seed: 1701
snapshot_prefix: "{prefix}"
"""

SCRIPT = r'''
import json, sys
import numpy as np
import caffe

caffe.set_mode_cpu()
caffe.set_random_seed(1701)
from caffedoc.memdata import MemDataError, feed

rng = np.random.RandomState(0)
centers = rng.randn(3, 1, 4, 4)
labels = np.arange(64) % 3  # int64
data = centers[labels] + 0.5 * rng.randn(64, 1, 4, 4)  # float64, (N, C, H, W)
x32, y32 = data.astype(np.float32), labels.astype(np.float32)
nan = x32.copy()
nan[5, 0, 1, 2] = np.nan

CASES = {  # what a user might pass: (data, labels)
    "float64-data": lambda: (data, y32),
    "int64-labels": lambda: (x32, labels),
    "fortran-order": lambda: (np.asfortranarray(x32), y32),
    # the same values, laid out (H, W)-transposed in memory: a strided view
    "transposed-view": lambda: (np.ascontiguousarray(x32.swapaxes(2, 3)).swapaxes(2, 3), y32),
    "python-lists": lambda: (x32.tolist(), y32),
    "ragged-lists": lambda: (x32.tolist()[:-1] + [[1.0]], y32),
    "column-labels": lambda: (x32, y32.reshape(64, 1)),
    "not-a-batch-multiple": lambda: (x32[:50], y32[:50]),
    "labels-short": lambda: (x32, y32[:48]),
    "flat-data": lambda: (x32.reshape(64, 16), y32),
    "nan-in-data": lambda: (nan, y32),
    # converted inline: only the temporary solver.net wrapper holds the copies
    "temporaries": lambda: (data.astype(np.float32), labels.astype(np.float32)),
}


def accuracy(solver):
    """Accuracy on the true data, with the trained weights."""
    test = solver.test_nets[0]
    test.share_with(solver.net)
    tx, ty = x32.copy(), y32.copy()
    test.set_input_arrays(tx, ty)
    return float(np.mean([test.forward()["accuracy"] for _ in range(4)]))


def train(solver):
    losses = []
    for _ in range(120):
        solver.step(1)
        losses.append(float(solver.net.blobs["loss"].data))
    return {"first_loss": losses[0], "last_loss": losses[-1], "accuracy": accuracy(solver)}


def raw(solver_path, case):
    solver = caffe.SGDSolver(solver_path)
    try:
        solver.net.set_input_arrays(*CASES[case]())
    except Exception as exc:
        return {"error": "%s: %s" % (type(exc).__name__, exc)}
    # the program goes on and makes arrays of its own, as programs do
    scratch = [np.full((64, 1, 4, 4), 1e6, np.float32) for _ in range(4)]
    scratch += [np.full(64, 1, np.float32) for _ in range(4)]
    return train(solver)


def helped(solver_path, case):
    solver = caffe.SGDSolver(solver_path)
    try:
        feed(solver, *CASES[case]())
    except MemDataError as exc:
        return {"error": "MemDataError: %s" % exc}
    scratch = [np.full((64, 1, 4, 4), 1e6, np.float32) for _ in range(4)]
    scratch += [np.full(64, 1, np.float32) for _ in range(4)]
    return train(solver)


mode, solver_path = sys.argv[1], sys.argv[2]
if mode == "raw":
    print(json.dumps(raw(solver_path, sys.argv[3])))
elif mode == "helped":
    out = {case: helped(solver_path, case) for case in CASES}
    out["typer loaded"] = "typer" in sys.modules
    print(json.dumps(out))
else:  # a solver that tests at iteration 0, its test net fed (helper) or not (raw)
    solver = caffe.SGDSolver(solver_path)
    feed(solver, x32, y32)
    if mode == "test-net-helped":
        feed(solver, x32, y32, test_net=0)
    solver.step(20)
    print(json.dumps({"iter": solver.iter}))
'''


@pytest.fixture(scope="module")
def lab(built_caffe, tmp_path_factory):
    """Files for the cases, and a runner for the child that runs them."""
    where = tmp_path_factory.mktemp("memdata")
    (where / "net.prototxt").write_text(NET)
    for name, interval, init in (("solver", 100000, "false"), ("tests-at-0", 10, "true")):
        (where / f"{name}.prototxt").write_text(
            SOLVER.format(
                net=where / "net.prototxt",
                test_interval=interval,
                test_init=init,
                prefix=where / "snap",
            )
        )
    (where / "cases.py").write_text(SCRIPT)
    env = {**built_caffe.env, "PYTHONPATH": str(REPO), "GLOG_minloglevel": "1"}

    def run(*args: str, solver: str = "solver") -> host.Result:
        return host.run(
            [
                built_caffe.python,
                where / "cases.py",
                args[0],
                where / f"{solver}.prototxt",
                *args[1:],
            ],
            env=env,
            timeout=120,
            cwd=where,
        )

    return run


@pytest.fixture(scope="module")
def helped(lab) -> dict:
    res = lab("helped")
    assert res.ok, res.output
    return json.loads(res.stdout.splitlines()[-1])


def raw(lab, case: str) -> dict:
    res = lab("raw", case)
    assert res.ok, res.output
    return json.loads(res.stdout.splitlines()[-1])


def learned(out: dict) -> bool:
    return "error" not in out and out["accuracy"] >= 0.9 and out["last_loss"] < 0.3


@pytest.mark.parametrize(
    ("case", "raw_error"),
    [
        ("float64-data", "data array must be float32"),
        ("int64-labels", "labels array must be float32"),
        ("fortran-order", "data array must be C contiguous"),
        ("transposed-view", "data array must be C contiguous"),
        ("column-labels", "labels array must be 4-d"),
        # a list is read as if it were an ndarray: the complaint varies from run to run
        ("python-lists", "RuntimeError: "),
    ],
)
def test_what_caffe_refuses_the_helper_converts_and_trains(lab, helped, case, raw_error):
    out = raw(lab, case)
    assert raw_error in out.get("error", ""), out
    assert learned(helped[case]), helped[case]


@pytest.mark.parametrize(
    ("case", "raw_error", "clear_error"),
    [
        (
            "not-a-batch-multiple",
            "first dimensions of input arrays must be a multiple of batch size",
            "data has 50 samples, not a multiple of the batch size 16: "
            "feed 48 (drop 2) or 64 (repeat 14)",
        ),
        (
            "labels-short",
            "data and labels must have the same first dimension",
            "labels has 48 entries for 64 data samples",
        ),
        (
            "flat-data",
            "data array must be 4-d",
            "data has shape (64, 16); this net's MemoryData layer takes (N, 1, 4, 4); "
            "reshape it: data.reshape(-1, 1, 4, 4)",
        ),
    ],
)
def test_what_cannot_be_converted_gets_a_clear_error(lab, helped, case, raw_error, clear_error):
    assert raw_error in raw(lab, case)["error"]
    assert helped[case] == {"error": f"MemDataError: {clear_error}"}


def test_nan_is_taken_silently_by_caffe_and_refused_by_the_helper(lab, helped):
    out = raw(lab, "nan-in-data")
    assert "error" not in out
    assert out["last_loss"] != out["last_loss"]  # NaN: the whole net is poisoned
    assert helped["nan-in-data"] == {
        "error": "MemDataError: data holds NaN or infinity as float32 (first at index (5, 0, 1, 2))"
    }


def test_arrays_freed_under_caffe_train_on_garbage_the_helper_keeps_them(lab, helped):
    out = raw(lab, "temporaries")
    assert "error" not in out
    assert abs(out["first_loss"] - 87.3365) < 1e-3  # softmax of garbage: -log(FLT_MIN)
    assert out["accuracy"] < 0.5  # it learned the garbage, not the data
    assert learned(helped["temporaries"]), helped["temporaries"]


def test_ragged_lists_are_refused_before_caffe_reads_them(helped):
    """Raw, a list reaches C++ cast to an ndarray it is not; not run here: it may crash."""
    assert helped["ragged-lists"]["error"].startswith("MemDataError: data is not an array: ")


def test_the_helper_loads_nothing_but_numpy(helped):
    assert helped["typer loaded"] is False


def test_unfed_test_net_aborts_and_smoke_names_memorydata_input(lab, built_caffe):
    res = lab("test-net-raw", solver="tests-at-0")
    assert res.signal_name == "SIGABRT", res.output
    assert "Check failed: data_" in res.stderr
    finding = explain_failure(res, ChildReport.parse(res), built_caffe.python)
    assert finding.id == "memorydata-input"
    helped = lab("test-net-helped", solver="tests-at-0")
    assert helped.ok, helped.output
    assert json.loads(helped.stdout.splitlines()[-1]) == {"iter": 20}
