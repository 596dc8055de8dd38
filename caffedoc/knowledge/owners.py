"""Which dependency owns a library, and every tool's words for that library failing.

A missing `libopenblas` is a BLAS problem whether the dynamic loader, ldd, GNU ld,
macOS's ld or dyld, MSVC's linker, make, CMake or the compiler says so. Written as
one regular expression per finding and per tool, that knowledge drifts apart (one
owner gets `=> not found`, another does not). So it is one table: each row names a
dependency's libraries, headers, CMake names and symbols and whose problem each kind
of failure is, and `FORMS` holds each tool's message once, with a slot for the
names. `signatures()` crosses the two; explain reads them beside the entries' own.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from caffedoc.knowledge import Signature, any_of, forks_data

SOURCE = "caffedoc/knowledge/owners.py"
UPSTREAM_LAYER_HEADERS = tuple(  # conv_layer for caffe/layers/conv_layer.hpp
    h.removeprefix("caffe/layers/").removesuffix(".hpp")
    for h in forks_data.UPSTREAM_HEADERS
    if h.startswith("caffe/layers/")
)


@dataclass(frozen=True)
class Owner:
    """A dependency: the names its files go by, and the finding each kind of failure is.

    `load`: the loader cannot find the library at run time; `build`: the build cannot
    find it (linker, make, CMake, compiler); `mismatch`: it is found but lacks a symbol
    or symbol version the program was built against. None: no finding of that kind.
    """

    libraries: str  # file stems after "lib", before ".so"/".dylib"/".dll"/".lib"
    words: str = ""  # words naming it in a directory path (-L/usr/local/opt/openblas/lib)
    headers: str = ""
    cmake: str = ""  # find_package names and CMake variable prefixes
    symbols: str = ""  # its symbols as linkers print them: C names, C++ demangled, mangled
    programs: str = ""  # its programs, which a shell or make cannot find when it is missing
    load: str | None = None
    build: str | None = None
    mismatch: str | None = None
    skip: tuple[str, ...] = ()  # FORMS (by name) that say something else of this owner
    hints: tuple[tuple[str, str], ...] = ()  # (form, the fix that form calls for)


def _all(problem: str, **names: str) -> Owner:
    return Owner(load=problem, build=problem, mismatch=problem, **names)


OWNERS: tuple[Owner, ...] = (
    _all(
        "blas-not-found",
        libraries=r"openblas[\w-]*|cblas|f?77blas|s?atlas|tatlas|blas|mkl_rt|mkl_\w+",
        words=r"openblas|cblas|atlas|mkl|libblas",
        headers=r"(?:cblas|mkl|mkl_\w+)\.h",  # MKL's mkl_cblas.h, mkl_vml_functions.h, …
        cmake=r"Atlas|OpenBLAS|MKL|BLAS|CBLAS|LAPACK",
        # cblas_* of every BLAS; MKL's own (mkl_*) and its vector math (vdSub, vsExp,
        # vmdLn: v[m][sdcz] + a capitalized operation, case-sensitive so that
        # vsnprintf and the like stay out)
        symbols=r"_?cblas_\w+|_?mkl_\w+|_?(?-i:vm?[sdcz][A-Z][a-z]\w*)",
    ),
    _all(
        "hdf5-not-found",
        libraries=r"hdf5\w*",
        words=r"hdf5",
        headers=r"hdf5(?:_hl)?\.h",
        cmake=r"HDF5",
        symbols=r"_?H5\w+",
    ),
    _all(
        "boost-python",
        libraries=r"boost_(?:python|numpy)[\w.-]*?",
        words=r"boost_python|boost_numpy|boost-python",
        headers=r"boost/python(?:/[\w/]+)?\.hpp|boost/python/numpy\.hpp",
        cmake=r"boost_python\w*|boost_numpy\w*",
        symbols=r"boost::python::|_ZN\w*boost6python",
        # the Makefile's PYTHON_LIBRARIES names a library the distribution calls otherwise
        hints=(
            (
                "ld-l",
                "Boost.Python's library is named after its Python: libboost_python311.so for "
                "Python 3.11 from Boost 1.67 on (libboost_python-py35.so before): name that one "
                "in Makefile.config (PYTHON_LIBRARIES := boost_python311 python3.11), or build "
                "with CMake, which finds it.",
            ),
        ),
    ),
    _all(
        "opencv-build",
        libraries=r"opencv_\w+",
        words=r"opencv",
        headers=r"opencv2/[\w/]+\.hpp|opencv/(?:cv|highgui|cxcore)\.h",
        cmake=r"OpenCV",
        symbols=r"cv::|_ZN\w*2cv\d",
    ),
    Owner(  # cuDNN: absent is a path problem; found without a symbol, another release
        libraries=r"cudnn\w*",
        words=r"cudnn",
        headers=r"cudnn\.h",
        cmake=r"CUDNN",
        symbols=r"_?cudnn[A-Z]\w+",
        load="cuda-library-path",
        build="cuda-library-path",
        mismatch="cudnn-version",
    ),
    _all(
        "cuda-library-path",
        libraries=(
            r"cudart\w*|cublas(?:Lt)?\w*|curand\w*|cufft\w*|cusparse\w*|cusolver\w*"
            r"|nvrtc\w*|nccl\w*|nvToolsExt\w*|nvinfer\w*"
        ),
        words=r"cuda|cublas|curand|nvrtc",
        headers=r"cuda_runtime(?:_api)?\.h|cublas(?:_v2)?\.h|curand\.h|nvrtc\.h|cuda\.h",
        cmake=r"CUDA|CUDAToolkit",
        symbols=r"_?cuda[A-Z]\w+|_?cublas[A-Z]\w+|_?curand[A-Z]\w+|_?nvrtc[A-Z]\w+",
    ),
    Owner(  # the driver's own libraries: no driver (or a container without the GPU)
        libraries=r"cuda|nvidia-ml|nvidia-[\w-]+|nvcuvid",
        load="gpu-driver",
    ),
    _all(
        "protobuf-version-drift",
        libraries=r"protobuf(?:-lite)?\w*|protoc\w*",
        words=r"protobuf",
        # its headers and the .inc files they include (port_def.inc from 3.7 on); Caffe's
        # generated caffe.pb.h is not among them: missing, it says as much of a Caffe not
        # built yet as of protoc (see caffe-missing.toml and protobuf-version-drift.toml)
        headers=r"google/protobuf/[\w/]+\.(?:h|inc)",
        cmake=r"Protobuf",
        symbols=r"google::protobuf::|_ZN?\w*google8protobuf",
        programs=r"protoc",
    ),
    Owner(  # Caffe itself: absent from a build is caffe-missing, from the loader's path
        # caffe-library-missing; an unresolved caffe:: symbol says as much of another
        # Caffe found first (shadowed-caffe) as of a missing one, so it names neither.
        libraries=r"caffe(?:-nv|-d)?",
        words=r"libcaffe|/opt/caffe/",
        # the headers every Caffe release has (rc1 to 1.0 and the forks), and upstream's
        # layer headers (caffe/layers/, from rc3 on); a missing one is a Caffe not on the
        # include path. Not the ones 1.0 removed (vision_layers.hpp): missing, those say
        # the code is older than the Caffe it builds with. A fork's layer header is
        # fork-required's (forks.py).
        headers=(
            r"caffe/(?:caffe|blob|common|net|layer|layer_factory|solver|syncedmem|filler"
            r"|data_transformer|internal_thread)\.hpp"
            rf"|caffe/layers/(?:{any_of(UPSTREAM_LAYER_HEADERS)})\.hpp"
        ),
        cmake=r"Caffe",
        # its tools and examples (build/tools/caffe, extract_image_features.bin): a script
        # calling one that was never built, or not where the script looks
        programs=any_of(forks_data.PROGRAMS),
        load="caffe-library-missing",
        build="caffe-missing",
        # inside Caffe's own Visual Studio solution, "cannot open file 'libcaffe.lib'"
        # follows whatever failed to compile libcaffe first (a warning as error, a
        # stale object): not a Caffe missing from the machine.
        skip=("lnk1104", "ld-pic"),
    ),
)

# The libraries Caffe needs that have no finding of their own: the loader missing any of
# these is caffe-library-missing. They are Caffe's link line (Makefile's LIBRARIES,
# cmake/Dependencies.cmake) and what its dependencies bring (OpenEXR and codecs under
# OpenCV, gfortran under OpenBLAS, MKL-DNN under Intel's Caffe). Any other library is
# only a candidate: a program built on Caffe (OpenPose's libopenpose) missing its own
# library is that program's problem.
OTHERS = "caffe-library-missing"
DEPENDENCIES = (
    r"glog|gflags|lmdb|leveldb|snappy|boost_(?!python|numpy)\w+|python[\d.]*m?|gfortran"
    r"|quadmath|gomp|mkldnn|mklml\w*|dnnl|IlmImf[\w-]*|Half[\w-]*|Iex[\w-]*|IlmThread[\w-]*"
    r"|jpeg|png\d*|tiff|jasper|webp|openjp2|gdal|dc1394|av(?:codec|format|util)|swscale|tbb"
    r"|gphoto2\w*|lapack|gtk-x11[\w.-]*|gdk-x11[\w.-]*|Qt5\w+|stdc\+\+|gcc_s"
)

QUOTE = r"""[`'\u2018"]?"""
NO_FILE = (
    r"(?:No such file|There is no such file|file not found|没有那个文件|Cannot open include file)"
)

# (name, kind, weight, template): each tool's message once, with slots {lib} {word} {header}
# {cmake} {sym} {prog} for one owner's names. `kind` says which of the owner's findings it is.
FORMS: tuple[tuple[str, float, str], ...] = (
    # the dynamic loader, ldd, macOS dyld, the Windows loader and Python's
    ("loader", "load", 3.0, r"\blib(?:{lib})\.so[\w.-]*\s?:?\s?cannot open shared object file"),
    ("loader-paste", "load", 3.0, r"error while loading shared libraries:? lib(?:{lib})\.so"),
    ("ldd", "load", 3.0, r"\blib(?:{lib})\.(?:so|dylib)[\w.-]* => not found"),
    ("dyld", "load", 3.0, r"Library not loaded: \S*?\blib(?:{lib})\."),
    ("dlopen", "load", 3.0, r"dlopen\([^)]*?\blib(?:{lib})\.[^)]*\): image not found"),
    (
        "windows-dll",
        "load",
        3.0,
        r"\b(?:lib)?(?:{lib})\.dll\b.{{0,40}}(?:was not found|is missing|could not be found)"
        r"|Could not find module '[^']*?\b(?:lib)?(?:{lib})\.dll'"
        r"|DLL load failed[^\n]*?\b(?:lib)?(?:{lib})\.dll",
    ),
    # GNU ld, macOS ld, MSVC's link, make, the compiler drivers, CMake, the preprocessor
    (
        "ld-l",
        "build",
        3.0,
        r"(?:cannot find|library not found for|找不到) -l(?::?\S*?\blib)?(?:{lib})\b",
    ),
    (
        "ld-file",
        "build",
        3.0,
        r"cannot find \S*?\blib(?:{lib})\.(?:so|a|dylib)[\w.]*: No such file",
    ),
    ("ld-needed", "build", 3.0, r"\blib(?:{lib})\.so[\w.]*, needed by \S+,? not found"),
    # the symbol is in a library the link line does not name (binutils' "DSO missing from
    # command line": a -l for it, often one OpenCV 3 split out of highgui, is missing)
    (
        "ld-dso",
        "build",
        3.0,
        r"undefined reference to symbol " + QUOTE + r"(?:{sym})"
        r"|\blib(?:{lib})\.so[\w.]*: error adding symbols: DSO missing from command line",
    ),
    # a static archive built without -fPIC cannot go into a shared libcaffe (bfd's
    # elf*-x86-64 relocation check, then "error adding symbols: Bad value")
    (
        "ld-pic",
        "build",
        3.0,
        r"\blib(?:{lib})\.a\([^)]*\): (?:warning: )?relocation \S+ against .*recompile with -fPIC"
        r"|\blib(?:{lib})\.a: error adding symbols: Bad value",
    ),
    # MSVC's link: a library it cannot open (1104), or one named as an input (1181)
    (
        "lnk1104",
        "build",
        3.0,
        r"LNK11(?:04|81): cannot open (?:input )?file '[^']*?\b(?:lib)?(?:{lib})\.lib'",
    ),
    (
        "make-rule",
        "build",
        3.0,
        # not a README's placeholder left in the command (/path/to/cudnn/lib64/libcudnn.so):
        # no library is missing, the path was never filled in
        r"No rule to make target " + QUOTE + r"(?!\S*/path/to/)\S*?\blib(?:{lib})\.(?:so|a|dylib)",
    ),
    (
        "driver-file",
        "build",
        3.0,
        r"\b(?:[gc]\+\+|g?cc|clang(?:\+\+)?|nvcc|ld)(?:-[\d.]+)?(?:\.exe)?: (?:fatal )?error: "
        r"(?:no such file or directory: '[^']*?(?:{word})"
        r"|[^\s:']*?(?:{word})[^\s:']*: No such file or directory)",
    ),
    # a shell, make or Windows failing to run one of the owner's programs: by its path
    # (./build/tools/caffe: not found), by its name (sh: 1: caffe: not found, make:
    # protoc: Command not found), zsh's and cmd.exe's words. Not `cd: caffe: …`.
    (
        "shell-path",
        "build",
        2.5,
        r"(?<!cd: )\S*/(?:{prog})(?:\.bin|\.exe)?: ?"
        r"(?:No such file or directory|(?:command )?not found)",
    ),
    (
        "shell-name",
        "build",
        2.5,
        r"(?:^|\bsh: \d+: |\bbash: |\bline \d+: |\bmake(?:\[\d+\])?: ?)(?:{prog})(?:\.bin)?: "
        r"(?:(?:command )?not found|No such file or directory)",
    ),
    (
        "shell-other",
        "build",
        2.5,
        r"zsh: (?:command not found|no such file or directory): (?:\S*/)?(?:{prog})(?:\.bin)?\s*$"
        r"|'(?:[^'\s]*[\\/])?(?:{prog})(?:\.exe)?' is not recognized as an internal or external"
        r"|The term '(?:[^'\s]*[\\/])?(?:{prog})(?:\.exe)?' is not recognized",
    ),
    ("macos-L", "build", 1.5, r"ld: warning: directory not found for option '-L[^']*?(?:{word})"),
    ("header", "build", 3.0, r"(?:{header})[\"'\u2019>]?\W{{0,4}}" + NO_FILE),
    # the compiler's include failure, whatever follows it (a paste that wrapped the line)
    ("header-fatal", "build", 3.0, r"fatal error: [\"'\u2018<]?(?:{header})[\"'\u2019>]?\s?:"),
    # the compiler's error located inside one of the owner's headers: the headers found,
    # but not of a release (or a C++ standard) this code builds with. A header missing
    # from inside another (pyconfig.h from boost/python) says nothing of the owner.
    (
        "header-error",
        "mismatch",
        2.5,
        r"(?:^|[\s/])(?:{header}):\d+(?::\d+)?: (?:fatal )?error: (?!\S+: No such file)",
    ),
    # FindPackageHandleStandardArgs' words, alone on their line or after "CMake Error: "
    (
        "cmake-find",
        "build",
        3.0,
        r"^(?:[\s>]*\d+)?\s*(?:CMake Error:\s*)?Could NOT find (?:{cmake})\b",
    ),
    (
        "cmake-config",
        "build",
        3.0,
        r'Could not find a package configuration file provided by "(?:{cmake})"',
    ),
    ("cmake-notfound", "build", 3.0, r"\b(?:{cmake})_\w*-NOTFOUND"),
    # CMake's list of "variables ... set to NOTFOUND", one name a line
    (
        "cmake-notfound-list",
        "build",
        2.5,
        r"^\s*(?:\S*/)?(?:{cmake})_(?:\w+_)?(?:INCLUDE_DIRS?|INCLUDE|LIBRARY|LIBRARIES|LIB|DIR)"
        r"(?:_RELEASE|_DEBUG)?(?: \(ADVANCED\))?\s*$",
    ),
    # a symbol of the library unresolved: GNU ld, the loader, macOS ld, MSVC's link
    (
        "ld-undefined",
        "mismatch",
        3.0,
        r"undefined reference to " + QUOTE + r"(?:typeinfo for |vtable for )?(?:{sym})",
    ),
    (
        "ld-undefined-zh",
        "mismatch",
        3.0,
        r"对" + QUOTE + r"(?:typeinfo for |vtable for )?(?:{sym}).*?未定义的引用",
    ),
    ("loader-undefined", "mismatch", 3.0, r"undefined symbol: (?:{sym})"),
    # MATLAB's own loader refusing a MEX file (matcaffe's caffe_.mexa64) whose symbol it
    # resolved against a library MATLAB bundles, of another release
    ("mex-missing", "mismatch", 3.0, r"Missing symbol " + QUOTE + r"(?:{sym})"),
    # macOS dyld at import, its C++ names mangled with the platform's extra underscore
    ("dyld-symbol", "mismatch", 3.0, r"Symbol not found: _?(?:{sym})"),
    (
        "macos-referenced",
        "mismatch",
        3.0,
        r'"(?:typeinfo for |vtable for )?(?:{sym})[^"]*", referenced from',
    ),
    ("lnk2019", "mismatch", 3.0, r'unresolved external symbol (?:"[^"]*?|__imp_)?(?:{sym})'),
    # the same by its code, which MSVC does not translate ("无法解析的外部符号")
    ("lnk-code", "mismatch", 3.0, r'\bLNK20(?:01|19)\b[^"\n]*"[^"]*?(?:{sym})'),
    # the library found, but another release: glibc's dl-version.c and dl-lookup.c
    (
        "dl-version",
        "mismatch",
        3.0,
        r"\blib(?:{lib})\.so[\w.]*: version " + QUOTE + r"[^'\u2019`]+['\u2019] not found",
    ),
    ("dl-lookup", "mismatch", 3.0, r"undefined symbol: \w+, version lib(?:{lib})\.so"),
)


def _slots(owner: Owner) -> dict[str, str]:
    return {
        "lib": owner.libraries,
        "word": owner.words,
        "header": owner.headers,
        "cmake": owner.cmake,
        "sym": owner.symbols,
        "prog": owner.programs,
    }


def _needs(template: str) -> set[str]:
    return set(re.findall(r"(?<!\{)\{(\w+)\}(?!\})", template))


@functools.cache
def signatures() -> dict[str, tuple[Signature, ...]]:
    """Every owner's names in every form that applies, by finding id."""
    out: dict[str, list[Signature]] = {}
    for owner in OWNERS:
        slots = _slots(owner)
        for name, kind, weight, template in FORMS:
            problem = getattr(owner, kind)
            if problem is None or name in owner.skip or not all(slots[n] for n in _needs(template)):
                continue
            pattern = re.compile(template.format(**slots), re.IGNORECASE)
            hint = dict(owner.hints).get(name, "")
            out.setdefault(problem, []).append(Signature(pattern, weight, SOURCE, hint=hint))
    known = "|".join(o.libraries for o in OWNERS)
    anything = rf"(?!(?:{DEPENDENCIES})\.)[\w+-]+"
    for weight, names in ((2.0, DEPENDENCIES), (1.0, anything)):
        for template in (
            r"(?:ImportError|OSError|error while loading shared libraries): "
            r"(?!lib(?:{known})\.so)lib(?:{names})\.so[\w.]*\s?: cannot open shared object file",
            r"Library not loaded: \S*?\blib(?!(?:{known})\.)(?:{names})[\w.-]*\.dylib"
            r"|\blib(?!(?:{known})\.so)(?:{names})\.so[\w.]* => not found",
        ):
            pattern = re.compile(template.format(known=known, names=names), re.IGNORECASE)
            out.setdefault(OTHERS, []).append(Signature(pattern, weight, SOURCE))
    return {pid: tuple(sigs) for pid, sigs in out.items()}
