"""cudnn-version: a cuDNN that does not fit the Caffe that uses it or the CUDA beside it.

Five readings, one function each: a CUDA + cuDNN pair a recipe records as bad; upstream
Caffe's cuDNN 7 calls with cuDNN 8 or newer; the cuDNN a library really loads (as it
answers for itself) against the one it was built with, its soname and its CUDA; and a
header whose release no library in the linker cache has.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from packaging.version import Version

from caffedoc.detect import detects
from caffedoc.detect.cudafacts import cuda_facts, major_minor, runtime_of, soname_version, version
from caffedoc.findings import Hit, Severity
from caffedoc.probes import Facts
from caffedoc.probes.cuda import CaffeLibrary, CudaFacts, CudnnHeader
from caffedoc.recipes import load_all

# Functions upstream Caffe calls that cuDNN 8 removed (BVLC/caffe#6970).
REMOVED_IN_CUDNN_8 = frozenset(
    {
        "cudnnGetConvolutionForwardAlgorithm",
        "cudnnGetConvolutionBackwardFilterAlgorithm",
        "cudnnGetConvolutionBackwardDataAlgorithm",
    }
)


def _cuda_for(cuda: CudaFacts, header: Path | None) -> str | None:
    """The CUDA release a cuDNN belongs with: the toolkit it sits in, else the only one."""
    for lib in cuda.caffe_libraries:
        if runtime := runtime_of(lib):
            return runtime
    if header is not None:
        for t in cuda.toolkits:
            if t.root and t.root in header.parents:
                return t.version
    versions = {major_minor(t.version) for t in cuda.toolkits if t.version}
    return versions.pop() if len(versions) == 1 else None


def _cudnn_versions(cuda: CudaFacts) -> list[tuple[str, str, Path | None]]:
    """(cuDNN version, where it was seen, header path) for headers and loaded libraries."""
    out = [(h.version, f"header {h.path}", h.path) for h in cuda.cudnn_headers]
    for lib in cuda.caffe_libraries:
        for n in lib.needed:
            if n.soname.startswith("libcudnn.so") and n.real_name:
                v = soname_version(n.real_name)
                if v and v.count(".") >= 2:
                    out.append((v, f"{n.path} → {n.real_name}, loaded by {lib.path.name}", None))
    return out


def _bad_pairs() -> list[tuple[str, str, str]]:
    """(CUDA, cuDNN, why) for each CUDA recipe recorded as bad: the recipes say it once."""
    recipes = load_all()
    by_name = {r.name: r for r in recipes}
    out = []
    for r in recipes:
        if r.status == "bad" and r.cuda and r.cudnn:
            alt = by_name.get(r.alternative or "")
            works = f"; {alt.compute()} works (recipe {alt.name})" if alt else ""
            out.append((r.cuda, r.cudnn, f"{r.reason}{works}"))
    return out


def _known_bad(cuda: CudaFacts) -> Iterator[Hit]:
    for bad_cuda, bad_cudnn, why in _bad_pairs():
        evidence = [
            f"cuDNN {cudnn} ({where}) with CUDA {bad_cuda}"
            for cudnn, where, header in _cudnn_versions(cuda)
            if cudnn == bad_cudnn and major_minor(_cuda_for(cuda, header)) == bad_cuda
        ]
        if evidence:
            yield Hit(
                Severity.ERROR,
                (*evidence, f"known bad: {why}"),
                detail=f"CUDA {bad_cuda} + cuDNN {bad_cudnn}",
            )


def _header_majors(cuda: CudaFacts) -> dict[int, CudnnHeader]:
    return {version(h.version).major: h for h in cuda.cudnn_headers if version(h.version)}


def _removed_api(cuda: CudaFacts) -> Iterator[Hit]:
    """Upstream Caffe's cuDNN 7 calls, in a built library or a source, with cuDNN ≥ 8."""
    new = [h for major, h in sorted(_header_majors(cuda).items()) if major >= 8]
    for lib in cuda.caffe_libraries:
        removed = sorted(REMOVED_IN_CUDNN_8 & set(lib.cudnn_imports))
        if not removed:
            continue
        loaded = [n for n in lib.needed if n.soname.startswith("libcudnn.so.")]
        too_new = [
            n for n in loaded if (version(soname_version(n.soname)) or Version("0")) >= Version("8")
        ]
        if too_new or new:
            evidence = [f"{lib.path} calls {', '.join(removed)}, which cuDNN 8 removed"]
            evidence += [f"it links {n.soname} ({n.path or 'not found'})" for n in too_new]
            evidence += [f"the cuDNN header here is {h.version} ({h.path})" for h in new]
            yield Hit(
                Severity.ERROR if too_new else Severity.WARNING,
                tuple(evidence),
                detail="upstream Caffe's cuDNN 7 API with cuDNN ≥ 8",
            )
    removed_src = sorted(REMOVED_IN_CUDNN_8 & set(cuda.source_cudnn_calls))
    if removed_src and new:
        yield Hit(
            Severity.ERROR,
            (
                f"{cuda.caffe_source} calls {', '.join(removed_src)}, which cuDNN 8 removed",
                *(f"the cuDNN header a build would use is {h.version} ({h.path})" for h in new),
            ),
            detail="this Caffe source does not build with cuDNN ≥ 8",
        )


def _header_vs_library(cuda: CudaFacts) -> Iterator[Hit]:
    lib_majors = {
        v.split(".")[0]
        for name in cuda.cache_cuda
        if name.startswith("libcudnn.so.") and (v := soname_version(name))
    }
    for major, h in sorted(_header_majors(cuda).items()):
        if lib_majors and str(major) not in lib_majors:
            yield Hit(
                Severity.WARNING,
                (
                    f"{h.path} says cuDNN {h.version}, but the linker cache "
                    f"{cuda.ld_so_cache} has only "
                    + ", ".join(sorted(n for n in cuda.cache_cuda if n.startswith("libcudnn.so."))),
                ),
                "Install the cuDNN library of the same release as the header (or the header "
                "of the library's release), then rebuild Caffe.",
                detail="header and library disagree",
            )


@detects("cudnn-version")
def cudnn_version(facts: Facts) -> Iterator[Hit]:
    """Every way a cuDNN here does not fit the Caffe that uses it or the CUDA beside it."""
    cuda = cuda_facts(facts)
    if cuda is None:
        return
    yield from _known_bad(cuda)
    yield from _removed_api(cuda)
    for lib in cuda.caffe_libraries:
        yield from _cudnn_loaded(lib)
    yield from _header_vs_library(cuda)


def _cudnn_loaded(lib: CaffeLibrary) -> Iterator[Hit]:
    """The cuDNN the library really loads, as it answers for itself, against the cuDNN
    the build was compiled with, the soname it asks for and its own CUDA runtime."""
    c = lib.cudnn
    if c is None:
        return
    if c.error:
        # cuDNN 9's and 8's words when a sub-library is missing beside the front one.
        incomplete = any(w in c.error for w in ("Unable to load any of", "Could not load library"))
        yield Hit(
            Severity.ERROR if incomplete else Severity.WARNING,
            (
                f"{lib.path} loads {c.soname} from {c.path}; asked its version "
                f"(cudnnGetVersion) in a child process: {c.error.split('` ', 1)[-1]}",
            ),
            "Reinstall cuDNN whole: every libcudnn_*.so of one release in one directory "
            "(cuDNN 9 loads libcudnn_graph, _ops, _cnn… beside libcudnn.so at run time)."
            if incomplete
            else None,
            detail=f"{c.path.name} is incomplete"
            if incomplete
            else f"{c.path.name} did not answer",
        )
        return
    loaded = version(c.version)
    if loaded is None:
        return
    wanted = version(soname_version(c.soname))
    misnamed = wanted is not None and loaded.major != wanted.major
    if misnamed:
        yield Hit(
            Severity.ERROR,
            (
                f"{lib.path} needs {c.soname}; the loader gives it {c.path}, "
                f"which says it is cuDNN {c.version}",
            ),
            f"Point {c.soname} at a cuDNN {wanted.major} library (the one Caffe was built "
            "with), or rebuild Caffe against this cuDNN.",
            detail=f"{c.soname} is cuDNN {c.version}",
        )
    yield from _against_build(lib, loaded, misnamed)
    yield from _against_runtime(lib, loaded)


def _against_build(lib: CaffeLibrary, loaded: Version, misnamed: bool) -> Iterator[Hit]:
    """The loaded cuDNN against the one the build record says Caffe was compiled with."""
    c, record = lib.cudnn, lib.record
    built = version(record.cudnn) if record else None
    if record and built is not None:
        if loaded.major != built.major:
            if not misnamed:  # else the soname's finding tells the same story
                yield Hit(
                    Severity.ERROR,
                    (
                        f"{record.path} says Caffe was compiled against cuDNN {record.cudnn}; "
                        f"{lib.path} loads cuDNN {c.version} ({c.path})",
                    ),
                    f"Install cuDNN {built.major}.x (at least {record.cudnn}) where Caffe finds "
                    f"{c.soname}, or rebuild Caffe against cuDNN {loaded.major}.",
                    detail=f"compiled with cuDNN {record.cudnn}, loads {c.version}",
                )
        elif (loaded.major, loaded.minor) < (built.major, built.minor):
            # Patch releases are compatible both ways; a minor release only with code
            # built against the same or an older minor (NVIDIA's API compatibility).
            yield Hit(
                Severity.WARNING,
                (
                    f"{record.path} says Caffe was compiled against cuDNN {record.cudnn}; "
                    f"{lib.path} loads the older cuDNN {c.version} ({c.path})",
                    f"cuDNN {loaded.major}.{loaded.minor} is not guaranteed to run code built "
                    f"against {built.major}.{built.minor}: a minor release is compatible only "
                    "with code built against the same or an older minor",
                ),
                f"Install cuDNN {built.major}.{built.minor} or a newer {built.major}.x where "
                f"Caffe finds {c.soname} (it loads {c.path} now), or rebuild Caffe against "
                f"cuDNN {c.version}.",
                detail=f"compiled with cuDNN {record.cudnn}, loads the older {c.version}",
            )


def _against_runtime(lib: CaffeLibrary, loaded: Version) -> Iterator[Hit]:
    """The CUDA the loaded cuDNN was built for against the CUDA runtime Caffe uses."""
    c, record = lib.cudnn, lib.record
    runtime = runtime_of(lib)
    source = f"{lib.path} links libcudart.so.{runtime}"
    if runtime is None and record and record.cuda:
        runtime, source = record.cuda, f"{record.path} says Caffe was built with CUDA {record.cuda}"
    ours, theirs = version(runtime), version(c.cuda)
    if ours is not None and theirs is not None and ours.major != theirs.major:
        yield Hit(
            Severity.ERROR,
            (
                f"{c.path} is cuDNN {c.version} built for CUDA {c.cuda} "
                f"(cudnnGetCudartVersion); {source} (CUDA {ours.major})",
            ),
            f"Install the cuDNN {loaded.major} build for CUDA {ours.major} (e.g. the "
            f"nvidia-cudnn-cu{ours.major} wheel) where Caffe finds {c.soname}.",
            detail=f"cuDNN for CUDA {theirs.major} with a CUDA {ours.major} Caffe",
        )
