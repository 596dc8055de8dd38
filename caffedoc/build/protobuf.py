"""A position-independent static libprotobuf, for linking protobuf into Caffe privately.

Linking libprotobuf statically into libcaffe.so and _caffe.so (with its symbols hidden)
is the known fix for "File already exists in database: caffe.proto" when another module
in the process uses the shared libprotobuf (BVLC/caffe#1917). Debian's libprotobuf.a is
not compiled with -fPIC, so it cannot go into a shared object: this builds the same
protobuf version from Debian's source package, once, into caffedoc's cache.
Public entry point: `pic_protobuf(version, log)`; other builders (tests' twin modules)
may call it too.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from caffedoc import host, platform
from caffedoc.build import paths, source
from caffedoc.build.steps import Log, StepError
from caffedoc.distribution import os_release
from caffedoc.errors import CaffedocError

HEADER = Path("/usr/include/google/protobuf/stubs/common.h")


def system_version(header: Path = HEADER) -> str | None:
    """The protobuf version of the installed headers, e.g. 3.21.12."""
    m = re.search(r"#define GOOGLE_PROTOBUF_VERSION (\d+)", host.read_text(header) or "")
    if not m:
        return None
    n = int(m.group(1))
    return f"{n // 1000000}.{n // 1000 % 1000}.{n % 1000}"


def cache_dir(version: str) -> Path:
    return paths.cache_root() / "protobuf" / f"{version}-pic"


def library(version: str) -> Path:
    return cache_dir(version) / "lib" / "libprotobuf.a"


def check_possible(version: str) -> None:
    """Refuse early (with the reason) where a static protobuf cannot be made here."""
    have = system_version()
    if have is None:
        raise CaffedocError(
            "--static-protobuf needs the protobuf headers (libprotobuf-dev) to know the version"
        )
    if version not in ("system", have):
        raise CaffedocError(
            f"--static-protobuf: the recipe wants protobuf {version} but the headers are {have}; "
            "the static library must match the headers Caffe compiles against"
        )
    if platform.debian_suite("protobuf", have) is None and not library(have).is_file():
        raise CaffedocError(
            f"--static-protobuf builds protobuf {have} from Debian's source package; "
            f"no Debian suite with protobuf {have} is known on {os_release().name()} "
            "(caffedoc/platform/debian-sources.toml), and no PIC libprotobuf is cached"
        )


def pic_protobuf(
    version: str, log: Log, jobs: int = 2, env: Mapping[str, str] | None = None
) -> Path:
    """Build (once) and return a -fPIC libprotobuf.a of `version` (e.g. 3.21.12)."""
    lib = library(version)
    if lib.is_file():
        log.note(f"cached: {lib}")
        return lib
    work = paths.cache_root() / "protobuf" / f"{version}-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tarball = paths.sources_dir() / f"protobuf_{version}.orig.tar.gz"
    if not tarball.is_file():
        suite = platform.debian_suite("protobuf", version)
        if suite is None:
            raise StepError(f"no Debian suite with protobuf {version} is known")
        source.apt_source("protobuf", suite, tarball.name, tarball, log.path)
    src = work / "src"
    source.extract(tarball, src)
    top = src / "cmake" if not (src / "CMakeLists.txt").is_file() else src
    staged = work / "install"
    configure = [
        "cmake", "-S", top, "-B", work / "build",
        "-DCMAKE_BUILD_TYPE=Release",
        "-DCMAKE_POSITION_INDEPENDENT_CODE=ON",
        "-DCMAKE_CXX_VISIBILITY_PRESET=hidden",
        "-Dprotobuf_BUILD_SHARED_LIBS=OFF",
        "-Dprotobuf_BUILD_TESTS=OFF",
        "-Dprotobuf_BUILD_PROTOC_BINARIES=OFF",
        "-Dprotobuf_BUILD_LIBPROTOC=OFF",
        "-Dprotobuf_WITH_ZLIB=OFF",
        f"-DCMAKE_INSTALL_PREFIX={staged}",
    ]  # fmt: skip
    if shutil.which("ccache"):
        configure.append("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
    for argv in (
        configure,
        ["cmake", "--build", work / "build", "--target", "libprotobuf", "-j", str(jobs)],
    ):
        log.check(log.run(argv, timeout=3600, env=env), f"building protobuf {version}")
    built = next((work / "build").glob("libprotobuf.a"), None)
    if built is None:
        raise StepError(f"building protobuf {version}: no libprotobuf.a came out")
    with paths.staged(cache_dir(version)) as stage:
        (stage / "lib").mkdir()
        shutil.copy2(built, stage / "lib" / "libprotobuf.a")
    shutil.rmtree(work, ignore_errors=True)
    return lib
