"""What the build needs to know about the interpreter it builds for and pins."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from caffedoc import host
from caffedoc.errors import CaffedocError

_SCRIPT = r"""
import json, os, sys, sysconfig
cfg = sysconfig.get_config_var
out = {
    "version": "%d.%d.%d" % sys.version_info[:3],
    "soabi": cfg("SOABI") or "",
    "include": sysconfig.get_path("include"),
    "purelib": sysconfig.get_path("purelib"),
    "libpython": None,
    "numpy": None,
    "numpy_include": None,
    "multiarch": cfg("MULTIARCH") or "",
}
if cfg("Py_ENABLE_SHARED"):
    lib = os.path.join(cfg("LIBDIR") or "", cfg("LDLIBRARY") or "")
    out["libpython"] = lib if os.path.exists(lib) else None
try:
    import numpy
    out["numpy"] = numpy.__version__
    out["numpy_include"] = numpy.get_include()
except Exception:
    pass
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Interpreter:
    path: Path
    version: str  # 3.11.7
    soabi: str  # cpython-311-x86_64-linux-gnu
    include: Path
    purelib: Path  # where the pin (.pth) goes
    libpython: Path | None  # its own shared libpython, when it was built with one
    numpy: str | None
    numpy_include: Path | None
    multiarch: str  # x86_64-linux-gnu: where the distro keeps its libraries

    @property
    def major_minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def abi(self) -> str:
        """What a compiled _caffe.so depends on: the Python ABI and numpy's major version."""
        numpy_major = (self.numpy or "none").split(".")[0]
        return f"{self.soabi} numpy{numpy_major}"


def inspect(python: Path) -> Interpreter:
    res = host.run([python, "-c", _SCRIPT], timeout=60)
    try:
        data = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise CaffedocError(f"cannot inspect the interpreter {python}: {res.describe()}") from None
    return Interpreter(
        path=python,
        version=data["version"],
        soabi=data["soabi"],
        include=Path(data["include"]),
        purelib=Path(data["purelib"]),
        libpython=Path(data["libpython"]) if data["libpython"] else None,
        numpy=data["numpy"],
        numpy_include=Path(data["numpy_include"]) if data["numpy_include"] else None,
        multiarch=data["multiarch"],
    )


def link_library(py: Interpreter) -> Path:
    """The libpython that libcaffe (its Python layer) links: the interpreter's own when it
    has one, else the distro's of the same X.Y. A different X.Y would break at import."""
    if py.libpython is not None:
        return py.libpython
    name = f"libpython{py.major_minor}.so"
    for folder in (f"/usr/lib/{py.multiarch}", "/usr/lib64", "/usr/lib"):
        candidate = Path(folder) / name
        if candidate.exists():
            return candidate
    raise CaffedocError(
        f"{py.path} (Python {py.version}) has no shared libpython and the system has no "
        f"{name}: install python{py.major_minor}-dev or build for an interpreter with a libpython"
    )


def numpy_shadow(py: Interpreter) -> Path | None:
    """A numpy header folder inside Python's include dir that is not this numpy's own.

    Debian's python3-numpy puts one there, and since CMake lists Python's include dir
    first, _caffe.so would compile against those headers instead of the interpreter's numpy.
    """
    shadow = py.include / "numpy"
    if not shadow.exists() or py.numpy_include is None:
        return None
    if shadow.resolve() == (py.numpy_include / "numpy").resolve():
        return None
    return shadow
