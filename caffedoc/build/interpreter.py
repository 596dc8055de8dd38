"""What the build needs to know about the interpreter it builds for and pins."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from caffedoc import host
from caffedoc.errors import CaffedocError
from caffedoc.pycaffe import PYCAFFE_DEPS

_SCRIPT = r"""
import importlib.util, json, os, sys, sysconfig
cfg = sysconfig.get_config_var
def present(name):
    try:
        return importlib.util.find_spec(name) is not None
    except Exception:
        return False
out = {
    "version": "%d.%d.%d" % sys.version_info[:3],
    "soabi": cfg("SOABI") or "",
    "include": sysconfig.get_path("include"),
    "purelib": sysconfig.get_path("purelib"),
    "libpython": None,
    "numpy": None,
    "numpy_include": None,
    "multiarch": cfg("MULTIARCH") or "",
    "absent": [n for n in sys.argv[1:] if not present(n)],
    "pip": present("pip"),
    "managed": sys.prefix == sys.base_prefix
    and os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")),
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
class BuildPython:
    """What a build needs to know of the interpreter it builds pycaffe for."""

    path: Path
    version: str  # 3.11.7
    soabi: str  # cpython-311-x86_64-linux-gnu
    include: Path
    purelib: Path  # where the pin (.pth) goes
    libpython: Path | None  # its own shared libpython, when it was built with one
    numpy: str | None
    numpy_include: Path | None
    multiarch: str  # x86_64-linux-gnu: where the distro keeps its libraries
    missing: tuple[str, ...] = ()  # pycaffe's packages it lacks (pip requirements once planned)
    has_pip: bool = True
    managed: bool = False  # externally managed (PEP 668): its pip refuses to install

    @property
    def major_minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def abi(self) -> str:
        """What a compiled _caffe.so depends on: the Python ABI and numpy's major version."""
        numpy_major = (self.numpy or "none").split(".")[0]
        return f"{self.soabi} numpy{numpy_major}"


def inspect(python: Path) -> BuildPython:
    res = host.run([python, "-c", _SCRIPT, *PYCAFFE_DEPS], timeout=60)
    try:
        data = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise CaffedocError(f"cannot inspect the interpreter {python}: {res.describe()}") from None
    return BuildPython(
        path=python,
        version=data["version"],
        soabi=data["soabi"],
        include=Path(data["include"]),
        purelib=Path(data["purelib"]),
        libpython=Path(data["libpython"]) if data["libpython"] else None,
        numpy=data["numpy"],
        numpy_include=Path(data["numpy_include"]) if data["numpy_include"] else None,
        multiarch=data["multiarch"],
        missing=tuple(PYCAFFE_DEPS[n][0] for n in data["absent"]),
        has_pip=data["pip"],
        managed=data["managed"],
    )


def deps_argv(py: BuildPython) -> list[str]:
    """The interpreter's own pip installing what pycaffe lacks there; refused, with the way
    out, where that pip cannot or must not install (no pip, PEP 668)."""
    if not py.missing:
        return []
    lacks = f"{py.path} lacks pycaffe's {', '.join(py.missing)}"
    if py.managed:
        raise CaffedocError(
            f"{lacks} and is externally managed (PEP 668), so its pip must not install them: "
            f"make a virtual environment (`{py.path} -m venv VENV`) and build for it "
            "(--python VENV)"
        )
    if not py.has_pip:
        raise CaffedocError(f"{lacks} and has no pip: run `{py.path} -m ensurepip` first")
    return [str(py.path), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
            *py.missing]  # fmt: skip


def install_deps(py: BuildPython) -> str:
    """Run `deps_argv` as the interpreter's owner (root never runs a user's pip as root)."""
    argv = deps_argv(py)
    if not argv:
        return "all present"
    res = host.run(argv, timeout=1800, user=host.code_owner(py.path))
    if not res.ok:
        tail = " | ".join(res.output.strip().splitlines()[-3:])
        raise CaffedocError(
            f"installing pycaffe's packages failed: {res.describe()}: {tail}", code=1
        )
    return f"installed {' '.join(py.missing)}"


def link_library(py: BuildPython) -> Path:
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


def numpy_shadow(py: BuildPython) -> Path | None:
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
