"""Feed numpy arrays to a Caffe MemoryData layer without the ways it silently breaks.

`net.set_input_arrays(X, Y)` hands Caffe raw pointers into X and Y. Caffe keeps
reading them on every forward pass, but only the Python net wrapper that received
them keeps them alive, and `solver.net` returns a new wrapper on each access
(BVLC/caffe#2334): the arrays are freed after the statement and training reads
garbage (NaN losses, a loss stuck at 87.3365) or aborts. It also wants float32,
C-contiguous, 4-d data whose count is a multiple of the batch size, and takes NaNs
without a word. `feed` checks all of that before Caffe sees the arrays, converts
what can be converted, and keeps the net and the arrays alive::

    import caffe
    from caffedoc.memdata import feed

    solver = caffe.SGDSolver("solver.prototxt")
    feed(solver, X, Y)                    # solver.net; lives as long as `solver`
    feed(solver, TX, TY, test_net=0)      # solver.test_nets[0]
    solver.step(1000)

    net = caffe.Net("deploy.prototxt", caffe.TEST, weights="w.caffemodel")
    feeder = feed(net, X, Y)              # keep `feeder` while `net` runs

Given a solver, the feeder is kept on the solver object, so it lives exactly as
long as the solver (feeding the same net again replaces it). Given a net, keep the
returned `Feeder` for as long as Caffe reads the arrays. `Feeder.update(X, Y)`
feeds new arrays through the same feeder, e.g. a new batch each iteration.

Data: (N, C, H, W) with (C, H, W) the layer's shape, any real dtype (converted to
float32; no copy when it already is float32 and C-contiguous, so do not write into
it while training); N a non-zero multiple of the layer's batch size. Labels: N real
numbers, as (N,), (N, 1) or (N, 1, 1, 1). Everything finite. Anything else raises
`MemDataError` naming the argument, what it is and what the net expects.

This module needs numpy and nothing else: it is imported inside the training
interpreter, next to pycaffe.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Feeder", "MemDataError", "feed"]

_PINNED = "_caffedoc_feeders"  # the solver attribute that keeps its feeders alive


class MemDataError(ValueError):
    """Input a MemoryData layer cannot use, with what the net expects instead."""


class Feeder:
    """A net's MemoryData input: the net wrapper and the arrays Caffe reads, kept together."""

    def __init__(self, net: Any) -> None:
        self.net = net
        self.batch_size, *shape = _layer_shape(net)
        self.shape: tuple[int, int, int] = tuple(shape)
        self.data: np.ndarray | None = None
        self.labels: np.ndarray | None = None

    @property
    def batches(self) -> int:
        """Forward passes per pass over the data (the layer wraps around after that)."""
        return 0 if self.data is None else len(self.data) // self.batch_size

    def update(self, data: Any, labels: Any) -> Feeder:
        """Check, convert and hand new arrays to Caffe; keep them until the next update."""
        x = self._data(data)
        y = self._labels(labels, len(x))
        self.net.set_input_arrays(x, y)
        self.data, self.labels = x, y  # the old arrays go only once Caffe holds the new ones
        return self

    def _data(self, data: Any) -> np.ndarray:
        x = _numeric(data, "data")
        c, h, w = self.shape
        if x.ndim != 4 or x.shape[1:] != self.shape:
            fits = x.ndim != 4 and x.size and x.size % (c * h * w) == 0
            hint = f"; reshape it: data.reshape(-1, {c}, {h}, {w})" if fits else ""
            raise MemDataError(
                f"data has shape {x.shape}; this net's MemoryData layer takes "
                f"(N, {c}, {h}, {w}){hint}"
            )
        n, b = len(x), self.batch_size
        if n == 0:
            raise MemDataError(f"data is empty; feed a non-zero multiple of the batch size {b}")
        if n % b:
            lower, upper = n - n % b, n - n % b + b
            also = f"{lower} (drop {n - lower}) or " if lower else ""
            raise MemDataError(
                f"data has {n} samples, not a multiple of the batch size {b}: "
                f"feed {also}{upper} (repeat {upper - n})"
            )
        return _finite(_float32(x), "data")

    def _labels(self, labels: Any, n: int) -> np.ndarray:
        y = _numeric(labels, "labels")
        if y.ndim == 0 or y.shape[1:] not in ((), (1,), (1, 1, 1)):
            raise MemDataError(
                f"labels has shape {y.shape}; expected ({n},), ({n}, 1) or ({n}, 1, 1, 1)"
            )
        if len(y) != n:
            raise MemDataError(f"labels has {len(y)} entries for {n} data samples")
        return _finite(_float32(y.reshape(n, 1, 1, 1)), "labels")


def feed(target: Any, data: Any, labels: Any, *, test_net: int | None = None) -> Feeder:
    """Feed `data` and `labels` to a net's MemoryData layer; see the module's docstring.

    `target` is a caffe Solver (its training net, or `solver.test_nets[test_net]`)
    or a caffe Net.
    """
    if _is_solver(target):
        pinned = _pinned(target)
        key = "train" if test_net is None else test_net
        feeder = pinned.get(key) or Feeder(
            target.net if test_net is None else _test_net(target, test_net)
        )
        feeder.update(data, labels)
        pinned[key] = feeder
        return feeder
    if test_net is not None:
        raise MemDataError("test_net= picks one of a solver's test nets: pass the solver")
    return Feeder(target).update(data, labels)


def _is_solver(obj: Any) -> bool:
    return hasattr(obj, "step") and hasattr(obj, "test_nets")


def _pinned(solver: Any) -> dict:
    pinned = getattr(solver, _PINNED, None)
    if pinned is None:
        pinned = {}
        setattr(solver, _PINNED, pinned)
    return pinned


def _test_net(solver: Any, index: int) -> Any:
    nets = solver.test_nets
    if not 0 <= index < len(nets):
        raise MemDataError(f"test_net={index}: this solver has {len(nets)} test net(s)")
    return nets[index]


def _layer_shape(net: Any) -> tuple[int, int, int, int]:
    """(batch, C, H, W) of the net's first layer, which must be MemoryData."""
    if not hasattr(net, "set_input_arrays"):
        raise MemDataError(f"expected a caffe Net or Solver, got {type(net).__name__}")
    names = list(net._layer_names)
    kind = net.layers[0].type if names else None
    if kind != "MemoryData":
        raise MemDataError(
            f"the net's first layer is {kind!r}, not 'MemoryData': set_input_arrays "
            "only feeds a MemoryData layer that comes first"
        )
    top = net.top_names[names[0]][0] if hasattr(net, "top_names") else next(iter(net.blobs))
    shape = tuple(int(d) for d in net.blobs[top].data.shape)
    if len(shape) != 4:
        raise MemDataError(f"the MemoryData layer's data blob has shape {shape}, expected 4-d")
    return shape


def _numeric(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise MemDataError(f"{name} is not an array: {exc}") from None
    if arr.dtype.kind not in "buif":
        raise MemDataError(f"{name} has dtype {arr.dtype}; Caffe reads real numbers (float32)")
    return arr


def _float32(arr: np.ndarray) -> np.ndarray:
    """A float32 C-contiguous copy, or `arr` itself when it already is one."""
    with np.errstate(over="ignore"):  # overflow becomes infinity, which _finite reports
        return np.ascontiguousarray(arr, dtype=np.float32)


def _finite(arr: np.ndarray, name: str) -> np.ndarray:
    """`arr`, float32 already: NaN or infinity (also from float32 overflow) is refused."""
    finite = np.isfinite(arr)
    if not finite.all():
        first = tuple(int(i) for i in np.unravel_index(int(np.argmin(finite)), arr.shape))
        raise MemDataError(f"{name} holds NaN or infinity as float32 (first at index {first})")
    return arr
