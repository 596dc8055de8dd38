"""Reading CUDA facts the way every CUDA rule needs them: versions from sonames, the
runtime a Caffe library links, the targets it holds. Shared by the cuda rules."""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

from caffedoc.probes import Facts
from caffedoc.probes.cuda import CaffeLibrary, CudaFacts


def cuda_facts(facts: Facts) -> CudaFacts | None:
    return facts.get("cuda")


def version(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def major_minor(text: str | None) -> str | None:
    v = version(text)
    return f"{v.major}.{v.minor}" if v else None


def soname_version(soname: str) -> str | None:
    m = re.search(r"\.so\.(\d+(?:\.\d+)*)$", soname)
    return m.group(1) if m else None


def runtime_of(lib: CaffeLibrary) -> str | None:
    """The CUDA runtime a Caffe library was linked with, from libcudart's soname."""
    for n in lib.needed:
        if n.soname.startswith("libcudart.so."):
            return soname_version(n.soname)
    return None


def architectures(lib: CaffeLibrary) -> tuple[tuple[str, ...] | None, str]:
    """The targets in the library, else those its build record names; and the source."""
    if lib.architectures is None and lib.record and lib.record.architectures:
        return lib.record.architectures, f"as {lib.record.path} records"
    return lib.architectures, "in its fatbinary"
