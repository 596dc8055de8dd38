"""What pycaffe imports at run time: one list for build, the wheel and smoke's diagnosis.

A Caffe build or wheel brings pycaffe's own code only; these packages come from the
interpreter (BVLC's python/requirements.txt, less what `import caffe` never touches).
"""

from __future__ import annotations

# import name → (pip name, Debian package suffix: python3-<suffix>)
PYCAFFE_DEPS = {
    "numpy": ("numpy", "numpy"),
    "google.protobuf": ("protobuf", "protobuf"),
    "six": ("six", "six"),
    "scipy": ("scipy", "scipy"),
    "skimage": ("scikit-image", "skimage"),
}

# The ranges a wheel declares: caffe_pb2.py from protoc 3.21 loads under protobuf 3.20.3
# and every later major (measured up to 7.36), not under 3.19; _caffe.so built against
# numpy 2's headers imports under numpy 1.x and 2.x.
REQUIRES = {
    "numpy": "numpy>=1.21",
    "protobuf": "protobuf>=3.20",
    "six": "six",
    "scipy": "scipy",
    "scikit-image": "scikit-image",
}


def pip_names() -> tuple[str, ...]:
    return tuple(pip for pip, _ in PYCAFFE_DEPS.values())


def requirements(names: tuple[str, ...], protoc: str) -> tuple[str, ...]:
    """pip requirements for pycaffe's missing packages (pip names) beside a caffe_pb2.py from
    `protoc` X.Y.Z: protoc older than 3.20 (Debian 11's 3.12) writes descriptor-style code
    that protobuf 4.21 and later refuse ("Descriptors cannot be created directly")."""
    old = tuple(int(p) for p in protoc.split(".")[:2] if p.isdigit()) < (3, 20)
    return tuple("protobuf<=3.20.3" if n == "protobuf" and old else n for n in names)
