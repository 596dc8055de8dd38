# ruff: noqa: UP010, UP024, UP031, B904  (this file must also run on Python 2.7)
"""The smoke step itself, run by path inside the interpreter under test.

It must run on every Python pycaffe supports (2.7 and 3.x) and import nothing
from caffedoc. It reports to the runner through JSON lines on stdout, one
"stage" line before each stage starts, so that a segfault or an abort still
tells the runner where it happened; Caffe's own log goes to stderr.

usage: child.py WORKDIR MODE DEVICE   (MODE: auto, cpu or gpu)
"""

from __future__ import division, print_function

import json
import math
import os
import sys
import traceback

TAG = "caffedoc-smoke: "
BATCH = 16
SHAPE = (1, 4, 4)  # channels, height, width
CLASSES = 3
TRAIN_N = 64  # multiples of BATCH, as set_input_arrays requires
TEST_N = 32
MAX_EPOCHS = 40
STUCK_LOSS = 87.3365  # -log(FLT_MIN): SoftmaxWithLoss fed garbage


class Failed(Exception):
    """A failure the child recognized itself; `kind` tells the runner what it was."""

    def __init__(self, kind, message, **fields):
        Exception.__init__(self, message)
        self.kind = kind
        self.fields = fields


def emit(event, **fields):
    fields["event"] = event
    sys.stdout.write(TAG + json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


def stage(name):
    emit("stage", stage=name)


CUDA_ERRORS = {35: "the driver is older than the CUDA runtime", 100: "no CUDA-capable device"}


def cuda_libraries():
    """The CUDA libraries this process has loaded (after `import caffe`); None: cannot tell."""
    try:
        with open("/proc/self/maps") as fh:
            paths = set(line.split()[-1] for line in fh if ".so" in line)
    except (IOError, OSError):
        return None
    names = ("libcudart.so", "libcublas.so", "libcurand.so")
    return [p for p in paths if os.path.basename(p).startswith(names)]


def gpu_count(libs):
    """(count, why): CUDA devices the loaded libcudart sees; count None when it cannot tell."""
    cudart = [p for p in libs or () if os.path.basename(p).startswith("libcudart.so")]
    if not cudart:
        return None, "the CUDA runtime is not loaded as a library"
    import ctypes

    count = ctypes.c_int(0)
    try:
        code = ctypes.CDLL(cudart[0]).cudaGetDeviceCount(ctypes.byref(count))
    except (OSError, AttributeError) as exc:
        return None, "cannot ask %s: %s" % (cudart[0], exc)
    if code != 0:
        return 0, "cudaGetDeviceCount: CUDA error %d (%s)" % (code, CUDA_ERRORS.get(code, "?"))
    return count.value, "%d CUDA device(s)" % count.value


def choose_device(caffe, mode, device):
    """Put Caffe in CPU or GPU mode before any net exists: set_device, then set_mode_gpu."""
    if mode == "cpu":
        caffe.set_mode_cpu()
        return "cpu", "cpu", "asked for the CPU"
    libs = cuda_libraries()
    if libs == []:
        if mode == "gpu":
            raise Failed("cpu-only", "asked for GPU %d, but this Caffe was built CPU_ONLY" % device)
        caffe.set_mode_cpu()
        return "cpu", "cpu", "this Caffe was built CPU_ONLY"
    count, why = gpu_count(libs)
    if mode == "auto":
        usable = count > 0 if count is not None else os.path.exists("/dev/nvidia0")
        if not usable:
            caffe.set_mode_cpu()
            return "cpu", "cpu", "no usable GPU: " + why
    elif count == 0:
        raise Failed("no-gpu", "asked for GPU %d: %s" % (device, why))
    elif count is not None and device >= count:
        raise Failed("no-gpu", "asked for GPU %d, but there are %d" % (device, count))
    caffe.set_device(device)
    caffe.set_mode_gpu()
    return "gpu", "gpu:%d" % device, why


def make_data(np, n, seed):
    """Three well separated classes in (N, C, H, W), float32, C-contiguous."""
    rng = np.random.RandomState(seed)
    centers = np.random.RandomState(0).randn(CLASSES, *SHAPE)
    labels = np.arange(n) % CLASSES
    rng.shuffle(labels)
    data = centers[labels] + 0.5 * rng.randn(n, *SHAPE)
    return (
        np.ascontiguousarray(data, dtype=np.float32),
        np.ascontiguousarray(labels, dtype=np.float32),
    )


def write_net(pb, text_format, path):
    net = pb.NetParameter(name="caffedoc_smoke")
    for phase in (pb.TRAIN, pb.TEST):
        data = net.layer.add(name="data", type="MemoryData", top=["data", "label"])
        data.include.add(phase=phase)
        param = data.memory_data_param
        param.batch_size = BATCH
        param.channels, param.height, param.width = SHAPE
    ip1 = net.layer.add(name="ip1", type="InnerProduct", bottom=["data"], top=["ip1"])
    ip1.inner_product_param.num_output = 16
    ip1.inner_product_param.weight_filler.type = "xavier"
    net.layer.add(name="relu1", type="ReLU", bottom=["ip1"], top=["ip1"])
    ip2 = net.layer.add(name="ip2", type="InnerProduct", bottom=["ip1"], top=["ip2"])
    ip2.inner_product_param.num_output = CLASSES
    ip2.inner_product_param.weight_filler.type = "xavier"
    net.layer.add(name="loss", type="SoftmaxWithLoss", bottom=["ip2", "label"], top=["loss"])
    acc = net.layer.add(name="accuracy", type="Accuracy", bottom=["ip2", "label"], top=["accuracy"])
    acc.include.add(phase=pb.TEST)
    with open(path, "w") as fh:
        fh.write(text_format.MessageToString(net))


def write_solver(pb, text_format, path, net_path, prefix):
    solver = pb.SolverParameter(
        net=net_path,
        base_lr=0.01,
        momentum=0.9,
        weight_decay=0.0005,
        lr_policy="fixed",
        max_iter=TRAIN_N // BATCH * MAX_EPOCHS + 1,
        display=0,
        test_interval=TRAIN_N // BATCH * MAX_EPOCHS + 2,  # never: the step tests by hand
        test_initialization=False,
        snapshot_prefix=prefix,
        random_seed=1701,
    )
    solver.test_iter.append(TEST_N // BATCH)
    with open(path, "w") as fh:
        fh.write(text_format.MessageToString(solver))


def train(net, solver):
    """Step until an epoch's mean loss is below a third of the first iteration's loss."""
    solver.step(1)
    first = float(net.blobs["loss"].data)
    steps = TRAIN_N // BATCH
    last = first
    while solver.iter < TRAIN_N // BATCH * MAX_EPOCHS:
        losses = []
        for _ in range(steps):
            solver.step(1)
            losses.append(float(net.blobs["loss"].data))
        last = sum(losses) / len(losses)
        if math.isnan(last) or math.isinf(last):
            raise Failed("nan-loss", "the training loss became %r" % last)
        if abs(last - STUCK_LOSS) < 1e-3:
            raise Failed("stuck-loss", "the training loss is stuck at %.4f" % last)
        if last < first / 3:
            return first, last, solver.iter
    raise Failed(
        "no-learning",
        "the loss did not fall below a third of its start in %d iterations (%.4f -> %.4f)"
        % (solver.iter, first, last),
    )


def evaluate(np, net):
    """Mean accuracy and loss over the fed test set, from the net's blobs, and its scores."""
    acc, loss, scores = [], [], []
    for _ in range(TEST_N // BATCH):
        net.forward()
        acc.append(float(net.blobs["accuracy"].data))
        loss.append(float(net.blobs["loss"].data))
        scores.append(net.blobs["ip2"].data.copy())
    return sum(acc) / len(acc), sum(loss) / len(loss), np.concatenate(scores)


def fresh_net(caffe, net_path, weights):
    try:
        return caffe.Net(net_path, caffe.TEST, weights=weights)
    except TypeError:  # pycaffe before 1.0 knows only the positional form
        return caffe.Net(net_path, weights, caffe.TEST)


def import_failure(exc, tb):
    """Which piece of the import failed: caffe_pb2, _caffe, caffe, or a missing module."""
    frames = traceback.extract_tb(tb)
    files = [f[0].replace(os.sep, "/") for f in frames]
    if any(f.endswith("/caffe_pb2.py") or "/google/protobuf/" in f for f in files):
        return "caffe_pb2"
    if frames and "_caffe" in (frames[-1][3] or ""):
        return "_caffe"
    missing = getattr(exc, "name", None)
    if not missing and str(exc).startswith("No module named "):
        missing = str(exc)[len("No module named ") :].strip("'\"")
    return (missing or "caffe").split(".")[0]


# What `import caffe` imports besides Caffe itself (python/caffe/*.py), by module name.
PYCAFFE_DEPS = ("numpy", "google.protobuf", "six", "scipy", "skimage")


def not_installed(name, exc):
    """Whether the ImportError says `name` itself (or its package) is absent, not something
    it imports in turn: Python 3 names the module, Python 2 only says it."""
    missing = getattr(exc, "name", None)
    parts = name.split(".")
    if missing is None:
        text = str(exc)
        if not text.startswith("No module named "):
            return False
        missing = text[len("No module named ") :].strip("'\"")
        return missing in [".".join(parts[i:]) for i in range(len(parts))] + [parts[0]]
    return missing in [".".join(parts[: i + 1]) for i in range(len(parts))]


def pycaffe_deps():
    """pycaffe's dependencies this interpreter lacks, and whether its pip may install them."""
    missing = []
    for name in PYCAFFE_DEPS:
        try:
            __import__(name)
        except ImportError as exc:
            if not_installed(name, exc):
                missing.append(name)
    import sysconfig

    marker = os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")
    in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix) or hasattr(sys, "real_prefix")
    try:
        import pip  # noqa: F401

        has_pip = True
    except ImportError:
        has_pip = False
    return {
        "missing": missing,
        "externally_managed": os.path.isfile(marker) and not in_venv,
        "pip": has_pip,
        "major": sys.version_info[0],
    }


def import_caffe():
    """numpy, protobuf and caffe, one at a time, so that a failure names its piece."""
    piece = "numpy"
    try:
        import numpy

        piece = "protobuf"
        import google.protobuf
        from google.protobuf import text_format

        piece = None
        import caffe
        from caffe.proto import caffe_pb2
    except Exception as exc:
        piece = piece or import_failure(exc, sys.exc_info()[2])
        traceback.print_exc()
        message = "%s: %s" % (type(exc).__name__, exc)
        raise Failed("import", message, piece=piece, deps=pycaffe_deps())
    emit(
        "versions",
        python=sys.version.split()[0],
        numpy=numpy.__version__,
        protobuf=getattr(google.protobuf, "__version__", None),
        caffe=getattr(caffe, "__version__", None),
        caffe_path=os.path.dirname(os.path.abspath(caffe.__file__)),
    )
    return numpy, text_format, caffe, caffe_pb2


def main(workdir, mode, device):
    stage("import")
    np, text_format, caffe, pb = import_caffe()

    stage("device")
    mode, device_name, why = choose_device(caffe, mode, device)
    emit("device", mode=mode, device=device_name, why=why)
    if hasattr(caffe, "set_random_seed"):
        caffe.set_random_seed(1701)

    stage("write")
    net_path = os.path.join(workdir, "net.prototxt")
    solver_path = os.path.join(workdir, "solver.prototxt")
    write_net(pb, text_format, net_path)
    write_solver(pb, text_format, solver_path, net_path, os.path.join(workdir, "smoke"))

    stage("solver")
    solver = caffe.SGDSolver(solver_path)
    net = solver.net  # one wrapper for the whole run: it keeps the fed arrays alive
    test_net = solver.test_nets[0]

    stage("feed")
    x, y = make_data(np, TRAIN_N, 1)
    tx, ty = make_data(np, TEST_N, 2)
    net.set_input_arrays(x, y)
    test_net.set_input_arrays(tx, ty)

    stage("train")
    loss_start, loss_end, iters = train(net, solver)
    emit("train", loss_start=loss_start, loss_end=loss_end, iterations=iters)

    stage("test")
    test_net.share_with(net)
    accuracy, test_loss, scores = evaluate(np, test_net)
    emit("test", accuracy=accuracy, loss=test_loss)
    if accuracy < 0.8:
        raise Failed(
            "no-learning", "test accuracy %.2f after training (expected >= 0.8)" % accuracy
        )

    stage("snapshot")
    solver.snapshot()
    weights = "%s_iter_%d.caffemodel" % (os.path.join(workdir, "smoke"), solver.iter)
    if not os.path.isfile(weights):
        raise Failed("snapshot", "solver.snapshot() wrote no %s" % os.path.basename(weights))
    fresh = fresh_net(caffe, net_path, weights)
    fresh.set_input_arrays(tx, ty)
    fresh_accuracy, _, fresh_scores = evaluate(np, fresh)
    diff = float(np.abs(fresh_scores - scores).max())
    emit("snapshot", weights=os.path.basename(weights), max_abs_diff=diff)
    if diff > 1e-4 or fresh_accuracy != accuracy:
        raise Failed(
            "snapshot",
            "a net loaded from the snapshot disagrees with the trained one (scores differ by %g)"
            % diff,
        )
    emit("pass")


if __name__ == "__main__":
    # Run by path or as `-c` source: neither this script's folder nor the scratch
    # folder (the working directory) is a place to import caffe from.
    del sys.path[0]
    if len(sys.argv) != 4 or sys.argv[2] not in ("auto", "cpu", "gpu"):
        sys.stderr.write(__doc__.strip().splitlines()[-1] + "\n")
        sys.exit(2)
    try:
        main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    except Failed as exc:
        emit("fail", kind=exc.kind, message=str(exc), **exc.fields)
        sys.exit(1)
    except BaseException as exc:  # report any exception as data; the runner judges
        traceback.print_exc()
        emit("fail", kind="exception", type=type(exc).__name__, message=str(exc))
        sys.exit(1)
