"""A minimal OpenCV for portable builds: what Caffe uses, and nothing that drags in more.

Debian's libopencv-imgcodecs links GDAL, and through it some 130 libraries (curl,
MariaDB, NSS, x265, poppler, ICU…): a wheel that bundles them is 81 MB. Caffe's Data and
ImageData layers need only core, imgproc and imgcodecs (JPEG and PNG), and its CMake asks
for highgui, which builds here without any GUI backend. This OpenCV needs libjpeg, libpng
and zlib from the system, nothing else. It is built once from Debian's orig tarball of
the release (fetched with `apt-get source` the way Caffe's source is, and pinned by its
sha256), into caffedoc's cache, staged and renamed like the PIC protobuf.

Debian's tarball over opencv-python's sdist on PyPI: it is the very release whose headers
Debian 12 ships (the recipe's OpenCV 4 patch is proven against it), it comes through the
same apt source path as Caffe's own source, and it is the plain OpenCV tree, without
opencv-python's contrib modules and scikit-build wrapper.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from pathlib import Path

from caffedoc.build import paths, source
from caffedoc.build.steps import Log, StepError
from caffedoc.elf import readelf_dynamic

RELEASE = "4.6.0"
SUITE = "bookworm"  # the Debian suite whose source package `opencv` is RELEASE
TARBALL = "opencv_4.6.0+dfsg.orig.tar.xz"
SHA256 = "40a59ba7e5c18a43652de0a08733c9843a39bba619b1f3e26a5fac4a6f041423"
MODULES = ("core", "imgproc", "imgcodecs", "highgui")
# Everything off that would link another system library or download at configure time
# (IPP, ADE); JPEG and PNG from the system's libjpeg-turbo and libpng.
OPTIONS = {
    "BUILD_LIST": ",".join(MODULES),
    "BUILD_SHARED_LIBS": "ON",
    "CMAKE_BUILD_TYPE": "Release",
    "BUILD_TESTS": "OFF", "BUILD_PERF_TESTS": "OFF", "BUILD_EXAMPLES": "OFF",
    "BUILD_opencv_apps": "OFF", "BUILD_JAVA": "OFF", "BUILD_opencv_python3": "OFF",
    "BUILD_JPEG": "OFF", "BUILD_PNG": "OFF", "BUILD_ZLIB": "OFF",
    "WITH_JPEG": "ON", "WITH_PNG": "ON",
    "WITH_TIFF": "OFF", "WITH_WEBP": "OFF", "WITH_OPENJPEG": "OFF", "WITH_JASPER": "OFF",
    "WITH_OPENEXR": "OFF", "WITH_GDAL": "OFF", "WITH_GDCM": "OFF", "WITH_IMGCODEC_HDR": "ON",
    "WITH_GTK": "OFF", "WITH_QT": "OFF", "WITH_OPENGL": "OFF", "WITH_VTK": "OFF",
    "WITH_FFMPEG": "OFF", "WITH_GSTREAMER": "OFF", "WITH_V4L": "OFF", "WITH_1394": "OFF",
    "WITH_IPP": "OFF", "WITH_ITT": "OFF", "WITH_OPENCL": "OFF", "WITH_VA": "OFF",
    "WITH_VA_INTEL": "OFF", "WITH_TBB": "OFF", "WITH_OPENMP": "OFF", "WITH_EIGEN": "OFF",
    "WITH_LAPACK": "OFF", "WITH_PROTOBUF": "OFF", "WITH_ADE": "OFF", "WITH_QUIRC": "OFF",
    "WITH_CAROTENE": "OFF", "WITH_IMGCODEC_SUNRASTER": "OFF", "WITH_IMGCODEC_PFM": "OFF",
    "ENABLE_CCACHE": "OFF",  # the launcher below, with the build's shared ccache
    "OPENCV_GENERATE_PKGCONFIG": "OFF",
}  # fmt: skip


def cache_dir() -> Path:
    """Keyed by the release and the options: other options are another OpenCV."""
    key = hashlib.sha256(repr(sorted(OPTIONS.items())).encode()).hexdigest()[:8]
    return paths.cache_root() / "opencv" / f"{RELEASE}-minimal-{key}"


def config_dir() -> Path:
    """What Caffe's CMake is given as OpenCV_DIR."""
    return cache_dir() / "lib" / "cmake" / "opencv4"


def libraries() -> list[Path]:
    """The shared libraries (real files and their soname links) a prefix carries."""
    return sorted((cache_dir() / "lib").glob("libopencv_*.so.*"))


def minimal_opencv(log: Log, jobs: int = 2, env: Mapping[str, str] | None = None) -> Path:
    """Build (once) and return the install folder of the minimal OpenCV."""
    if config_dir().is_dir():
        log.note(f"cached: {cache_dir()}")
        return cache_dir()
    tarball = paths.sources_dir() / TARBALL
    if not tarball.is_file():
        source.apt_source("opencv", SUITE, TARBALL, tarball, log.path)
    got = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if got != SHA256:
        tarball.unlink()
        raise StepError(f"{TARBALL}: sha256 {got[:16]}… is not the pinned {SHA256[:16]}…")
    work = cache_dir().with_name(f"{cache_dir().name}-work")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    src = work / "src"
    source.extract(tarball, src)
    configure = ["cmake", "-S", src, "-B", work / "build",
                 *(f"-D{k}={v}" for k, v in OPTIONS.items()),
                 f"-DCMAKE_INSTALL_PREFIX={work / 'install'}"]  # fmt: skip
    if shutil.which("ccache"):
        configure += ["-DCMAKE_C_COMPILER_LAUNCHER=ccache", "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"]
    for argv, what in (
        (configure, "configuring OpenCV"),
        (["cmake", "--build", work / "build", "-j", str(jobs)], "compiling OpenCV"),
        (["cmake", "--install", work / "build", "--strip"], "installing OpenCV"),
    ):
        log.check(log.run(argv, timeout=4 * 3600, env=env), what)
    decoders(next((work / "install" / "lib").glob("libopencv_imgcodecs.so.*.*")))
    with paths.staged(cache_dir()) as stage:
        shutil.copytree(work / "install", stage, dirs_exist_ok=True, symlinks=True)
    shutil.rmtree(work, ignore_errors=True)
    return cache_dir()


def decoders(imgcodecs: Path) -> None:
    """Refuse an imgcodecs without JPEG or PNG: OpenCV's CMake quietly leaves out a codec
    whose -dev package is missing, and Caffe's image layers would then fail at run time."""
    needed = " ".join(readelf_dynamic([imgcodecs], timeout=60)[str(imgcodecs)].needed)
    lacking = [lib for lib in ("libjpeg", "libpng") if lib not in needed]
    if lacking:
        raise StepError(
            f"OpenCV was configured without {' and '.join(lacking)}: install libjpeg-dev and "
            "libpng-dev, then build again"
        )


def bundle(staged: Path) -> str:
    """Copy the minimal OpenCV's libraries into an install's lib/ (its RUNPATH finds them)."""
    lib = staged / "lib"
    for path in libraries():
        dest = lib / path.name
        if path.is_symlink():
            dest.symlink_to(path.readlink())
        else:
            shutil.copy2(path, dest)
    return f"bundled the minimal OpenCV {RELEASE}: {', '.join(p.name for p in libraries())}"
