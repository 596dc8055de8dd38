"""Ask one CUDA library about itself; prints one JSON line.

Run by caffedoc/probes/cuda.py as `python -c <this> cudnn|cudart PATH`, each in its own
process: a library that aborts (cuDNN 9 without its sub-libraries), crashes or hangs
takes only this child along. Neither question needs a GPU or a driver.

- cudnn: cudnnGetVersion() (91301 = 9.13.1) and cudnnGetCudartVersion() (13000: the
  CUDA runtime this cuDNN was built for).
- cudart: cudaRuntimeGetVersion(), cudaDriverGetVersion() (0: no driver) and
  cudaGetDeviceCount() with its error's name and words (cudaErrorInsufficientDriver
  without libcuda.so.1, cudaErrorNoDevice without a GPU): what Caffe's GPU mode meets.
"""

import ctypes
import json
import sys


def cudnn(lib):
    out = {}
    for name in ("cudnnGetVersion", "cudnnGetCudartVersion"):
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = ctypes.c_size_t
            fn.argtypes = []
            out[name] = int(fn())
    return out


def cudart(lib):
    out = {}
    for name in ("cudaRuntimeGetVersion", "cudaDriverGetVersion"):
        value = ctypes.c_int(-1)
        status = getattr(lib, name)(ctypes.byref(value))
        out[name] = value.value if status == 0 else None
    count = ctypes.c_int(-1)
    status = lib.cudaGetDeviceCount(ctypes.byref(count))
    out["cudaGetDeviceCount"] = count.value if status == 0 else None
    out["status"] = status
    if status:
        for name in ("cudaGetErrorName", "cudaGetErrorString"):
            fn = getattr(lib, name)
            fn.restype = ctypes.c_char_p
            fn.argtypes = [ctypes.c_int]
            out[name] = (fn(status) or b"").decode("utf-8", "replace")
    return out


def main():
    kind, path = sys.argv[1], sys.argv[2]
    lib = ctypes.CDLL(path)
    out = {"cudnn": cudnn, "cudart": cudart}[kind](lib)
    sys.stdout.write(json.dumps(out) + "\n")


main()
