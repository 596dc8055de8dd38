"""Message forms written from where the messages come from, produced for real.

A signature written from one sample recognizes that sample. These cover a message as
its source words it (CPython's startup, binutils' ld, gcc over OpenCV's and cuDNN's
real headers), and the tests make the tool say it here, on this machine, rather than
quote it: the real interpreter, linker and compiler, in every release pyenv has.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from caffedoc.explain import diagnose, explain_stream
from tests.fixtures import cuda_libs
from tests.fixtures.envs import pyenv_python, pyenv_series

OPENCV = Path("/usr/include/opencv4")


def named(output: str) -> list[str]:
    return [m.problem.id for m in explain_stream(io.BytesIO(output.encode())).matches]


def python_c(python: Path | str, script: str, **env: str) -> subprocess.CompletedProcess:
    """`python -c script` with only `env` (and a system PATH): what a user runs and pastes."""
    return subprocess.run(
        [str(python), "-c", script],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("series", pyenv_series())
def test_a_python_started_with_another_pythons_home_is_interpreter_drift(tmp_path, series):
    """PYTHONHOME pointing elsewhere (a conda env's, another Python's prefix): every
    CPython from 2.7 to 3.13 fails to start, each in its own words."""
    python = pyenv_python(series)
    res = python_c(python, "pass", PYTHONHOME=str(tmp_path))
    assert res.returncode != 0, res.stderr
    assert named(res.stderr)[:1] == ["interpreter-drift"], res.stderr


def _compile(tmp_path: Path, source: str, *args: str) -> str:
    path = tmp_path / "unit.cpp"
    path.write_text(source)
    res = subprocess.run(
        ["g++", f"-I{OPENCV}", str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert res.returncode != 0, "expected the compile or link to fail"
    return res.stderr


# a reader of Caffe nets, as converters and deployers use one: OpenCV's dnn
OPENCV_READER = """#include <opencv2/dnn.hpp>
#include <iostream>
int main(int argc, char** argv) {
  try {
    cv::dnn::Net net = cv::dnn::readNetFromCaffe(argv[1]);
    int shape[] = {1, 3, 8, 8};
    net.setInput(cv::Mat(4, shape, CV_32F, cv::Scalar(0)));
    net.forward();
  } catch (const cv::Exception& e) { std::cerr << e.what() << std::endl; return 1; }
}
"""
FORK_LAYER = 'layer { name: "l" type: "%s" bottom: "data" top: "l" %s }\n'


@pytest.fixture(scope="module")
def opencv_reader(tmp_path_factory) -> Path:
    """OPENCV_READER compiled once against this machine's OpenCV."""
    where = tmp_path_factory.mktemp("reader")
    (where / "reader.cpp").write_text(OPENCV_READER)
    build = subprocess.run(
        ["g++", f"-I{OPENCV}", "reader.cpp", "-o", "reader", "-lopencv_dnn", "-lopencv_core"],
        capture_output=True, text=True, timeout=300, cwd=where,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    return where / "reader"


@pytest.mark.parametrize(
    ("layer", "said"),
    [
        # a fork's layer parameter: OpenCV's own copy of caffe.proto (opencv_caffe) lacks it
        (FORK_LAYER % ("Interp", "interp_param { zoom_factor: 2 }"), '"interp_param"'),
        # a fork's layer type, read whole: OpenCV's dnn has no such layer to create
        (FORK_LAYER % ("DepthwiseConvolution", ""), 'of type "DepthwiseConvolution"'),
    ],
    ids=("a-fork-field", "a-fork-layer-type"),
)
def test_a_forks_net_read_by_opencvs_dnn_is_fork_required(opencv_reader, tmp_path, layer, said):
    net = 'name: "n"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n' + layer
    (tmp_path / "net.prototxt").write_text(net)
    res = subprocess.run([opencv_reader, "net.prototxt"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)  # fmt: skip
    assert res.returncode == 1 and said in res.stderr, res.stderr
    assert named(res.stderr)[:1] == ["fork-required"], res.stderr


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # upstream's own layer header: no Caffe on the program's include path
        ("caffe/layers/memory_data_layer.hpp", "caffe-missing"),
        # Faster R-CNN's: the fork's code, compiled against another Caffe
        ("caffe/layers/roi_pooling_layer.hpp", "fork-required"),
    ],
)
def test_a_caffe_layer_header_missing_is_caffes_or_a_forks(tmp_path, header, expected):
    err = _compile(tmp_path, f"#include <{header}>\nint main() {{ return 0; }}\n", "-c")
    assert f"{header}: No such file or directory" in err, err
    assert named(err)[:1] == [expected]


def test_opencv_1s_c_api_against_opencv_4s_headers_is_opencv_build(tmp_path):
    """Code written for OpenCV 1/2's C API (IplImage, cvNamedWindow, CvMat) compiled
    against OpenCV 4, which removed it: gcc's real errors name opencv-build."""
    assert (OPENCV / "opencv2" / "highgui.hpp").is_file(), "libopencv-dev is a build dep"
    err = _compile(
        tmp_path,
        "#include <opencv2/highgui.hpp>\n"
        'int main() { IplImage* img = 0; cvNamedWindow("w", 1); CvMat* m = 0;'
        " return img == 0 && m == 0; }\n",
        "-c",
    )
    assert "'cvNamedWindow' was not declared" in err.replace("\u2018", "'").replace("\u2019", "'")
    assert named(err) == ["opencv-build"], err


def test_a_name_missing_from_opencvs_namespace_is_opencv_build(tmp_path):
    """Code for another OpenCV: a function whose module's header (imgproc, split out in
    3.0) is not included, compiled against OpenCV 4's real headers."""
    err = _compile(
        tmp_path,
        "#include <opencv2/core.hpp>\nvoid equalize() { auto clahe = cv::createCLAHE(); }\n",
        "-c",
    )
    assert "'createCLAHE' is not a member of 'cv'" in err.replace("\u2018", "'").replace(
        "\u2019", "'"
    )
    assert named(err) == ["opencv-build"], err


def test_boost_python_by_a_name_the_distribution_does_not_use_hints_its_name(tmp_path):
    """The Makefile's PYTHON_LIBRARIES asks for boost_python3; Debian ships the library
    under its Python's version (libboost_python311): real ld, and the hint says so."""
    err = _compile(tmp_path, "int main() { return 0; }\n", "-lboost_python3")
    assert "cannot find -lboost_python3" in err, err
    match = explain_stream(io.BytesIO(err.encode())).matches[0]
    assert match.problem.id == "boost-python" and "PYTHON_LIBRARIES" in match.detail, err


def test_a_bundled_caffe_never_checked_out_is_caffe_missing_with_a_hint(tmp_path):
    """OpenPose builds its 3rdparty/caffe submodule as an ExternalProject; a copy of the
    tree without the submodule's files (here a placeholder README, which CMake 3.25's own
    check of an empty directory lets pass): real CMake, at the build's configure step."""
    (tmp_path / "3rdparty" / "caffe").mkdir(parents=True)
    (tmp_path / "3rdparty" / "caffe" / "README.md").write_text("git submodule update --init\n")
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.10)\nproject(app NONE)\ninclude(ExternalProject)\n"
        "ExternalProject_Add(openpose_lib SOURCE_DIR ${CMAKE_SOURCE_DIR}/3rdparty/caffe\n"
        '  INSTALL_COMMAND "")\n'
    )
    build = tmp_path / "build"
    run = {"capture_output": True, "text": True, "timeout": 300}
    subprocess.run(["cmake", "-S", str(tmp_path), "-B", str(build)], check=True, **run)
    made = subprocess.run(["cmake", "--build", str(build)], **run)
    log = made.stdout + made.stderr
    assert made.returncode != 0 and "does not appear to contain CMakeLists.txt" in log, log
    match = explain_stream(io.BytesIO(log.encode())).matches[0]
    assert match.problem.id == "caffe-missing" and "--recursive" in match.detail, log


def test_gtk_2_and_3_in_one_process_is_the_opencv_crash_with_its_hint():
    """OpenCV's highgui with one GTK beside a module that brought the other: the real
    libraries loaded into one Python, and GTK 3's own check aborting it."""
    script = (
        "import ctypes\n"
        "ctypes.CDLL('libgtk-x11-2.0.so.0', mode=ctypes.RTLD_GLOBAL)\n"
        "ctypes.CDLL('libgtk-3.so.0', mode=ctypes.RTLD_GLOBAL).gtk_init_check(None, None)\n"
    )
    ran = python_c(sys.executable, script)
    if "OSError" in ran.stderr:
        pytest.skip(f"needs GTK 2 and GTK 3 (libgtk2.0-0, libgtk-3-0): {ran.stderr[-200:]}")
    assert ran.returncode != 0 and "GTK+ 2.x symbols detected" in ran.stderr, ran.stderr
    match = explain_stream(io.BytesIO(ran.stderr.encode())).matches[0]
    assert match.problem.id == "opencv-runtime-crash", ran.stderr
    assert "opencv-python-headless" in match.detail


def test_an_opencv_module_missing_from_the_link_line_is_opencv_build(tmp_path):
    """cv::imread lives in opencv_imgcodecs since OpenCV 3; a link line that reaches it
    only through another module's dependency gets binutils' "DSO missing"."""
    err = _compile(
        tmp_path,
        '#include <opencv2/imgcodecs.hpp>\nint main() { return cv::imread("x").empty(); }\n',
        "-Wl,--no-as-needed",
        "-lopencv_datasets",
        "-lopencv_core",
    )
    assert "DSO missing from command line" in err, err
    assert named(err) == ["opencv-build"], err


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # cuDNN v1's descriptor, gone since v2: code for another release
        ("cudnnTensor4dDescriptor_t", ["cudnn-version"]),
        # a type every release since v2 has: cudnn.h was never included (USE_CUDNN off)
        ("cudnnTensorDescriptor_t", []),
    ],
)
def test_an_undeclared_cudnn_type_is_another_release_unless_every_release_has_it(
    tmp_path, name, expected
):
    err = _compile(tmp_path, f"struct Layer {{ {name} desc_; }};\n", "-c")
    assert f"{name}" in err and "does not name a type" in err, err
    assert named(err) == expected


def test_a_cudnn_call_of_another_release_is_cudnn_version(tmp_path):
    """cuDNN 5 put a NaN-propagation argument into cudnnSetPooling2dDescriptor; code
    passing a plain int there, compiled against NVIDIA's real cuDNN 8 headers, is a
    type error naming a cuDNN type."""
    cuda_include = cuda_libs.CUDA / "include"
    if not (cuda_include / "cuda_runtime.h").is_file():
        pytest.skip(f"needs CUDA's headers in {cuda_include}")
    with zipfile.ZipFile(cuda_libs.wheel(cuda_libs.CUDNN_8)) as whl:
        headers = tuple(
            n for n in whl.namelist() if n.startswith("nvidia/cudnn/include/") and n.endswith(".h")
        )
    include = cuda_libs.unpacked(cuda_libs.CUDNN_8, headers) / "nvidia" / "cudnn" / "include"
    err = _compile(
        tmp_path,
        "#include <cudnn.h>\n"
        "void pool(cudnnPoolingDescriptor_t d) {\n"
        "  cudnnSetPooling2dDescriptor(d, CUDNN_POOLING_MAX, 0, 2, 2, 0, 0, 2, 2);\n}\n",
        f"-I{cuda_include}",
        f"-I{include}",
        "-c",
    )
    assert "cudnnNanPropagation_t" in err, err
    assert named(err) == ["cudnn-version"], err


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        # macOS dyld at import: the symbol, then on the next line the library wanting it
        # (boostorg/python#168: a Boost.Python built for Python 2 under Python 3)
        (
            "Symbol not found: _PyClass_Type\n"
            "  Referenced from: /usr/local/opt/boost-python/lib/libboost_python-mt.dylib\n"
            "  Expected in: flat namespace\n",
            "boost-python",
        ),
        (
            "Symbol not found: _PyClass_Type\n"
            "  Referenced from: /Users/me/caffe/python/caffe/_caffe.so\n"
            "  Expected in: flat namespace\n",
            "interpreter-drift",
        ),
        (
            "ImportError: dlopen(/Users/me/caffe/python/caffe/_caffe.so, 2): Symbol not found: "
            "__ZN5boost6python6detail11init_moduleER11PyModuleDefPFvvE\n",
            "boost-python",
        ),
        # ptxas (its option gpu-name) refusing an arch the CUDA it ships with dropped
        ("ptxas fatal   : Value 'sm_30' is not defined for option 'gpu-name'\n", "cuda-arch"),
        # MSVC's link naming a dependency's library as an input it cannot open
        (
            "LINK : fatal error LNK1181: cannot open input file 'opencv_world340.lib'\n",
            "opencv-build",
        ),
        # OpenCV's Python module finding another OpenCV's libraries loaded (dlopen's words)
        (
            "ImportError: /usr/lib/python3/dist-packages/cv2.cpython-311-x86_64-linux-gnu.so: "
            "undefined symbol: _ZN2cv11arrowedLineERKNS_17_InputOutputArrayE\n",
            "opencv-runtime-crash",
        ),
        # Cython before 0.29 on a numpy other than the one it was built against
        (
            "ValueError: numpy.dtype has the wrong size, try recompiling. Expected 88, got 96\n",
            "numpy-abi",
        ),
        # docker without NVIDIA's runtime, and the toolkit's CLI without a driver
        (
            'docker: Error response from daemon: could not select device driver "" with '
            "capabilities: [[gpu]].\n",
            "gpu-driver",
        ),
        (
            "nvidia-container-cli: initialization error: nvml error: driver not loaded: unknown\n",
            "gpu-driver",
        ),
        # pycaffe's protobuf reading weights that are not a whole caffemodel
        (
            "google.protobuf.message.DecodeError: Error parsing message with type "
            "'caffe.NetParameter'\n",
            "prototxt-parse",
        ),
        # MATLAB code for the interface before rc2: old matcaffe refusing a fork's command,
        # and MATLAB finding no function `caffe` where the +caffe package replaced it
        ("Error using caffe\nAPI command not recognized\n", "fork-required"),
        # TensorRT's Caffe parser, with its own copy of caffe.proto (package ditcaffe, then
        # trtcaffe): a fork's field, and a caffemodel it cannot read
        (
            "[libprotobuf ERROR google/protobuf/text_format.cc:298] Error parsing text-format "
            'trtcaffe.NetParameter: 12:20: Message type "trtcaffe.LayerParameter" has no field '
            'named "upsample_param".\nERROR: CaffeParser: Could not parse deploy file\n',
            "fork-required",
        ),
        ("Caffe Parser: could not parse binary model file\n", "prototxt-parse"),
        # Caffe's CMake reading the version from a cudnn.h of cuDNN 8 or newer, which keeps
        # it in cudnn_version.h (cmake/Cuda.cmake's detect_cuDNN)
        (
            "-- Found cuDNN: ver. ??? found (include: /usr/include, library: "
            "/usr/lib/x86_64-linux-gnu/libcudnn.so)\n",
            "cudnn-version",
        ),
        (
            "Undefined function 'caffe' for input arguments of type 'char'.\n\n"
            "Error in fast_rcnn_load_net (line 11)\ninit_key = caffe('init', def, net, 'test');\n",
            "fork-required",
        ),
    ],
)
def test_message_forms_from_the_tools_own_sources(log, expected):
    assert [f.id for f in diagnose(log)][:1] == [expected]


@pytest.mark.parametrize(
    ("log", "problem", "hint"),
    [
        # the driver's own words (NVML, the kernel module, the installer, modprobe, docker):
        # one finding, and each form its own remedy
        (
            "Failed to initialize NVML: Driver/library version mismatch",
            "gpu-driver",
            "without a reboot",
        ),
        (
            "NVRM: API mismatch: the client has the version 535.54.03, but this kernel module "
            "has the version 525.85.12.",
            "gpu-driver",
            "without a reboot",
        ),
        (
            "ERROR: The Nouveau kernel driver is currently in use by your system.",
            "gpu-driver",
            "blacklist",
        ),
        (
            "modprobe: ERROR: could not insert 'nvidia': Required key not available",
            "gpu-driver",
            "Secure Boot",
        ),
        (
            'docker: Error response from daemon: could not select device driver "" with '
            "capabilities: [[gpu]].",
            "gpu-driver",
            "NVIDIA Container Toolkit",
        ),
        # Caffe's CURAND_CHECK (math_functions.cu) on a GPU its CUDA builds no code for
        (
            "F0118 23:29:34.400086 13613 math_functions.cu:408] Check failed: status == "
            "CURAND_STATUS_SUCCESS (201 vs. 0)  CURAND_STATUS_LAUNCH_FAILURE",
            "cuda-arch",
            "libcurand.so.7.5",
        ),
        # NGC's container entrypoint on a GPU older than the release supports
        (
            "ERROR: Detected NVIDIA Tesla K80 GPU, which is not supported by this container",
            "cuda-arch",
            "older release",
        ),
        # DIGITS' config/caffe.py, its two ways of looking
        (
            "A valid Caffe installation was not found on your system.\n"
            "Use the envvar CAFFE_ROOT to indicate a valid installation.",
            "caffe-missing",
            "export CAFFE_ROOT",
        ),
        (
            '"/opt/caffe/" from CAFFE_ROOT does not point to a valid installation of Caffe.\n'
            'ValueError: Caffe executable not found at "/opt/caffe/build/tools"',
            "caffe-missing",
            "export CAFFE_ROOT",
        ),
        # GTK 3's check_mixed_deps, as g_error words it
        (
            "(run_toolbox.py:16194): Gtk-ERROR **: GTK+ 2.x symbols detected. Using GTK+ 2.x "
            "and GTK+ 3 in the same process is not supported",
            "opencv-runtime-crash",
            "opencv-python-headless",
        ),
        # glog's stack trace through protobuf's C++ extension (pyext's cdescriptor_pool)
        (
            "*** SIGSEGV (@0x9) received by PID 25343 (TID 0x7f07c0e80ac0) from PID 9; stack "
            "trace: ***\n    @     0x7f0784fa6346 google::protobuf::DescriptorPool::"
            "FindFileByName()\n    @     0x7f0784f84ac8 google::protobuf::python::"
            "cdescriptor_pool::AddSerializedFile()",
            "protobuf-version-drift",
            "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python",
        ),
    ],
)
def test_a_message_in_its_sources_words_names_its_problem_and_hint(log, problem, hint):
    """Forms that share one finding each show the remedy their exact words call for."""
    match = explain_stream(io.BytesIO(log.encode())).matches[0]
    assert match.problem.id == problem and hint in match.detail, match


# ---------------------------------------------------------------- a fork's net, another Caffe

SSD_NET = """name: "ssd-head"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "norm" type: "Normalize" bottom: "data" top: "norm"
        norm_param { across_spatial: false scale_filler { type: "constant" value: 20 } } }
"""
PRIORBOX_NET = """name: "ssd-priors"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "priors" type: "PriorBox" bottom: "data" top: "priors" }
"""
INPUT = """layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
"""
# nets whose parse error is a fork's name, or only a mistake, each as upstream reads it
NOT_UPSTREAM = {
    # IEF's fork adds round_below to upstream's PoolingParameter: no field there is like it
    "a fork's field": (
        INPUT + 'layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"\n'
        "        pooling_param { pool: MAX kernel_size: 2 round_below: true } }\n",
        'has no field named "round_below"',
        "fork-required",
    ),
    # CRF-RNN's first Caffe: a V1 layer type upstream's enum never had
    "a fork's V1 type": (
        'layers { name: "crf" type: MULTI_STAGE_MEANFIELD }\n',
        'Unknown enumeration value of "MULTI_STAGE_MEANFIELD"',
        "fork-required",
    ),
    # PixelNet's layer (kovibalu/saw_release's Caffe, not in the table)
    "a fork's layer parameter": (
        INPUT + 'layer { name: "rc" type: "RandCatConv" bottom: "data" top: "rc"\n'
        "        rand_cat_conv_param { } }\n",
        'has no field named "rand_cat_conv_param"',
        "fork-required",
    ),
    "a typo of upstream's layer parameter": (
        INPUT + 'layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn"\n'
        "        batchnorm_param { use_global_stats: true } }\n",
        'has no field named "batchnorm_param"',
        "prototxt-parse",
    ),
    "a typo": (
        INPUT + 'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"\n'
        "        convolution_param { num_output: 4 kernel_size: 3\n"
        '            weight_filer { type: "xavier" } } }\n',
        'has no field named "weight_filer"',
        "prototxt-parse",
    ),
    "a layer's field in the layer": (
        INPUT + 'layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"\n'
        "        kernel_size: 2 }\n",
        'has no field named "kernel_size"',
        "prototxt-parse",
    ),
    "a V2 type in V1's syntax": (
        'layers { name: "conv" type: Convolution }\n',
        'Unknown enumeration value of "Convolution"',
        "prototxt-parse",
    ),
}


def _caffe(built_caffe, tmp_path: Path, net: str, *args: str) -> subprocess.CompletedProcess:
    """The real upstream `caffe` tool, `caffe ARGS -model net.prototxt -iterations 1`."""
    (tmp_path / "net.prototxt").write_text(net)
    caffe = str(built_caffe.prefix / "bin" / "caffe")
    return subprocess.run(
        [caffe, *args, "-model", "net.prototxt", "-iterations", "1"],
        cwd=tmp_path,
        env={**built_caffe.env, "GLOG_logtostderr": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _caffe_time(built_caffe, tmp_path: Path, net: str) -> str:
    """`caffe time` on `net`: its whole output, as a user pastes it."""
    res = _caffe(built_caffe, tmp_path, net, "time")
    assert res.returncode != 0, res.stderr
    return res.stdout + res.stderr


@pytest.mark.caffe
def test_an_ssd_net_run_by_upstream_caffe_is_fork_required_naming_ssd(built_caffe, tmp_path):
    """SSD's Normalize layer and its norm_param, parsed by the real upstream Caffe: the
    parse error is the symptom, the fork the cause, and the forks defining it are named."""
    log = _caffe_time(built_caffe, tmp_path, SSD_NET)
    assert 'has no field named "norm_param"' in log, log
    result = explain_stream(io.BytesIO(log.encode()))
    assert [m.problem.id for m in result.matches][:2] == ["fork-required", "prototxt-parse"]
    assert "SSD (weiliu89/caffe, branch ssd)" in result.matches[0].detail


@pytest.mark.caffe
def test_a_fork_layer_upstream_lacks_is_fork_required(built_caffe, tmp_path):
    log = _caffe_time(built_caffe, tmp_path, PRIORBOX_NET)
    assert "Unknown layer type: PriorBox (known types: AbsVal, Accuracy" in log, log
    result = explain_stream(io.BytesIO(log.encode()))
    assert [m.problem.id for m in result.matches][:1] == ["fork-required"]
    assert result.matches[0].detail.startswith("PriorBox: SSD (weiliu89/caffe, branch ssd)")


@pytest.mark.caffe
@pytest.mark.parametrize("case", NOT_UPSTREAM, ids=str)
def test_a_name_upstream_lacks_is_a_forks_unless_a_mistake(built_caffe, tmp_path, case):
    """A field of an upstream message that none of its fields resembles, or a V1 type in
    upper case that upstream's enum lacks, is a fork's; a typo, a field in the wrong
    message or a V2 name in V1's syntax stays a parse error."""
    net, said, expected = NOT_UPSTREAM[case]
    log = _caffe_time(built_caffe, tmp_path, net)
    assert said in log, log
    assert named(log)[:1] == [expected], log


@pytest.mark.caffe
@pytest.mark.parametrize(
    ("script", "shown"),
    [
        ("from caffe.model_libs import *", "No module named 'caffe.model_libs'"),
        # dilation's fork (fyu/caffe-dilation, not in the table) adds this message
        (
            "from caffe.proto import caffe_pb2\ncaffe_pb2.ImageLabelDataParameter",
            "has no attribute 'ImageLabelDataParameter'",
        ),
        # the Deep Visualization Toolbox's own Caffe binds Net.backward_from_layer
        ("import caffe\ncaffe.Net.backward_from_layer", "has no attribute 'backward_from_layer'"),
        (
            "from caffe.proto import caffe_pb2\n"
            "print(caffe_pb2.MultiBoxLossParameter.MAX_NEGATIVE)",
            "has no attribute 'MultiBoxLossParameter'",
        ),
        # a ShuffleNet generator's net_spec call for a layer type upstream lacks
        (
            "from caffe import layers as L, NetSpec\nn = NetSpec()\n"
            "n.data = L.Input(shape=dict(dim=[1, 4, 8, 8]))\n"
            "n.sc = L.ShuffleChannel(n.data, group=2)\nn.to_proto()",
            "KeyError: 'ShuffleChannel'",
        ),
    ],
)
def test_a_forks_script_run_by_upstream_pycaffe_is_fork_required(built_caffe, script, shown):
    """SSD's training scripts import its model_libs and its caffe_pb2 additions, the
    toolbox calls its fork's bindings: the real pycaffe of upstream Caffe, the real
    traceback."""
    res = python_c(built_caffe.python, script, **built_caffe.env)
    assert res.returncode != 0 and shown in res.stderr, res.stderr
    assert named(res.stderr)[:1] == ["fork-required"], res.stderr


# ---------------------------------------------------------------- whose library is missing


@pytest.mark.parametrize(
    ("library", "expected"),
    [("libglog.so.0", ["caffe-library-missing"]), ("libopenpose.so.1", [])],
)
def test_a_missing_library_is_caffes_only_when_caffe_needs_it(tmp_path, library, expected):
    """The real loader's words for a program whose library was moved away: glog is on
    Caffe's own link line, so Caffe cannot load; libopenpose is the program's own (a
    project built on Caffe), whose problem it is: only a candidate."""
    (tmp_path / "dep.c").write_text("int dep(void) { return 0; }\n")
    subprocess.run(
        ["gcc", "-shared", "-fPIC", f"-Wl,-soname,{library}", "dep.c", "-o", library],
        cwd=tmp_path, check=True, timeout=60,
    )  # fmt: skip
    (tmp_path / "main.c").write_text("int dep(void);\nint main(void) { return dep(); }\n")
    subprocess.run(
        ["gcc", "main.c", library, "-o", "openpose.bin"], cwd=tmp_path, check=True, timeout=60
    )
    (tmp_path / library).unlink()
    res = subprocess.run(
        [str(tmp_path / "openpose.bin")], capture_output=True, text=True, timeout=60
    )
    assert f"{library}: cannot open shared object file" in res.stderr, res.stderr
    result = explain_stream(io.BytesIO(res.stderr.encode()))
    assert [m.problem.id for m in result.matches] == expected, res.stderr
    assert result.matches or result.candidate.problem.id == "caffe-library-missing"


# ---------------------------------------------------------------- protobuf's own words


def test_caffe_pb2_from_a_newer_protoc_than_the_runtime_is_drift(make_venv, gencode, tmp_path):
    """caffe_pb2.py from libprotoc 3.15.8, imported by the protobuf 3.11 runtime (an old
    distro package under a newer protoc): the real AttributeError."""
    venv = make_venv("3.8", "protobuf==3.11.3")
    res = python_c(venv.python, "import caffe_pb2", PYTHONPATH=str(gencode("descriptors").parent))
    assert "has no attribute '_internal_create_key'" in res.stderr, res.stderr
    assert named(res.stderr)[:1] == ["protobuf-version-drift"], res.stderr


def test_two_different_caffe_protos_in_one_pool_are_the_clash(make_venv, caffe_proto, tmp_path):
    """Two caffe_pb2 modules of different caffe.proto (a fork's and upstream's) imported
    by one process with protobuf 5's upb runtime: the real TypeError."""
    protoc = shutil.which("protoc") or pytest.skip("needs protoc (protobuf-compiler)")
    fork = tmp_path / "fork"
    fork.mkdir()
    (fork / "caffe.proto").write_text(
        caffe_proto.read_text().replace(
            "message BlobShape {", "message Fork { }\nmessage BlobShape {"
        )
    )
    for where in (caffe_proto.parent, fork):
        out = tmp_path / f"out-{where.name}"
        out.mkdir()
        subprocess.run([protoc, f"-I{where}", f"--python_out={out}", str(where / "caffe.proto")],
                       check=True, timeout=120)  # fmt: skip
    (tmp_path / f"out-{fork.name}" / "caffe_pb2.py").rename(tmp_path / "out-fork" / "fork_pb2.py")
    venv = make_venv("3.11", "protobuf==5.29.3")
    paths = f"{tmp_path / f'out-{caffe_proto.parent.name}'}:{tmp_path / 'out-fork'}"
    res = python_c(venv.python, "import caffe_pb2, fork_pb2", PYTHONPATH=paths)
    assert "Couldn't build proto file into descriptor pool" in res.stderr, res.stderr[-2000:]
    assert named(res.stderr)[:1] == ["protobuf-descriptor-clash"], res.stderr[-2000:]


def test_an_older_caffe_package_found_first_is_shadowed_caffe(tmp_path):
    """A stale caffe package (a distro's, an old `make pycaffe` copy) found first on an
    interpreter's path: importing what upstream pycaffe exports from it fails for real.
    (Not the built Caffe's venv: caffedoc's pin puts its build ahead of PYTHONPATH.)"""
    stale = tmp_path / "old" / "caffe"
    stale.mkdir(parents=True)
    (stale / "__init__.py").write_text("from os import path  # an rc1-era copy\n")
    res = python_c(sys.executable, "from caffe import layers as L", PYTHONPATH=str(stale.parent))
    assert "cannot import name 'layers' from 'caffe'" in res.stderr, res.stderr
    assert named(res.stderr)[:1] == ["shadowed-caffe"], res.stderr


def test_a_pycaffe_older_than_the_code_is_shadowed_caffe_with_a_hint(tmp_path):
    """Code calling what pycaffe gained after rc (Net.layer_dict) on an rc-era copy found
    first: Python's own AttributeError, and the hint says the caffe imported is older."""
    stale = tmp_path / "old" / "caffe"
    stale.mkdir(parents=True)
    (stale / "__init__.py").write_text("class Net(object):\n    pass  # rc's Net: blobs, params\n")
    script = "import caffe\ncaffe.Net().layer_dict"
    res = python_c(sys.executable, script, PYTHONPATH=str(stale.parent))
    assert "'Net' object has no attribute 'layer_dict'" in res.stderr, res.stderr
    match = explain_stream(io.BytesIO(res.stderr.encode())).matches[0]
    assert match.problem.id == "shadowed-caffe" and "older than the code" in match.detail


def test_an_mkl_header_missing_is_blas(tmp_path):
    """Intel's Caffe includes MKL's vector math header: gcc's real words for it missing."""
    err = _compile(tmp_path, "#include <mkl_vml_functions.h>\nint main() { return 0; }\n", "-c")
    assert "mkl_vml_functions.h: No such file or directory" in err, err
    assert named(err) == ["blas-not-found"], err


def test_digits_asking_for_nvidias_fork_is_fork_required():
    """DIGITS' own check of the Caffe it found (digits/config/caffe.py)."""
    line = (
        'ERROR: Library at "libcaffe.so.1.0.0-rc3" does not have expected suffix "-nv". '
        "Are you using the NVIDIA/caffe fork?\n"
    )
    assert named(line) == ["fork-required"]


def test_a_pyc_of_python_2_imported_by_python_3_is_interpreter_drift(tmp_path):
    """A converter shipping caffe_pb2.pyc compiled by Python 2, imported by Python 3:
    importlib reads the other release's magic number and refuses it."""
    (tmp_path / "caffe_pb2.py").write_text("NET = 1\n")
    old = subprocess.run(
        [str(pyenv_python("2.7")), "-m", "py_compile", "caffe_pb2.py"], cwd=tmp_path, timeout=60
    )
    assert old.returncode == 0
    (tmp_path / "caffe_pb2.py").unlink()  # shipped as the .pyc alone
    res = subprocess.run(
        [sys.executable, "-c", "import caffe_pb2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "bad magic number in 'caffe_pb2'" in res.stderr, res.stderr
    assert named(res.stderr) == ["interpreter-drift"]


# a _caffe extension module as each major version looks for it, doing nothing more
EXTENSION = """#include <Python.h>
#if PY_MAJOR_VERSION >= 3
PyMODINIT_FUNC PyInit__caffe(void) { return NULL; }
#else
PyMODINIT_FUNC init_caffe(void) {}
#endif
"""


@pytest.mark.parametrize(
    ("built_for", "run_by", "says"),
    [("2.7", "3.12", "Python 3 is importing"), ("3.12", "2.7", "Python 2 is importing")],
)
def test_a_caffe_module_of_the_other_major_python_says_which_way(tmp_path, built_for, run_by, says):
    """Python 3 looks for PyInit__caffe, Python 2 for init_caffe: the missing one tells
    the hint which interpreter the module was built for."""
    builder, runner = pyenv_python(built_for), pyenv_python(run_by)
    include = python_c(builder, "import sysconfig; print(sysconfig.get_paths()['include'])")
    (tmp_path / "module.c").write_text(EXTENSION)
    gcc = ["gcc", "-shared", "-fPIC", f"-I{include.stdout.strip()}", "module.c", "-o", "_caffe.so"]
    assert subprocess.run(gcc, cwd=tmp_path, timeout=120).returncode == 0
    res = subprocess.run([str(runner), "-c", "import _caffe"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "dynamic module does not define" in res.stderr, res.stderr
    match = explain_stream(io.BytesIO(res.stderr.encode())).matches[0]
    assert match.problem.id == "interpreter-drift" and match.detail.startswith(says), res.stderr


def test_protobuf_headers_refusing_the_code_s_cxx_standard_hint_the_standard(tmp_path):
    """protobuf 3.6 and newer refuse C++98 in their own words (stubs/port.h): the
    finding is protobuf's, and its hint names the standard to build with."""
    err = _compile(tmp_path, "#include <google/protobuf/message.h>\n", "-std=c++98", "-c")
    assert "Protobuf requires at least C++11" in err, err
    match = explain_stream(io.BytesIO(err.encode())).matches[0]
    assert match.problem.id == "protobuf-version-drift", err
    assert "-std=c++11" in match.detail


@pytest.mark.caffe
def test_a_caffemodel_missing_required_fields_is_a_parse_error(built_caffe, tmp_path):
    """Weights from another caffe.proto (R-FCN's psroi_pooling_param, here upstream's own
    ClipParameter without its required min and max): protobuf's C++ runtime refuses them."""
    weights = tmp_path / "clip.caffemodel"
    written = python_c(
        built_caffe.python,
        "from caffe.proto import caffe_pb2\n"
        "net = caffe_pb2.NetParameter()\n"
        "layer = net.layer.add(name='clip', type='Clip')\n"
        "layer.clip_param.SetInParent()\n"
        f"open({str(weights)!r}, 'wb').write(net.SerializePartialToString())\n",
        **built_caffe.env,
    )
    assert written.returncode == 0, written.stderr
    res = _caffe(built_caffe, tmp_path, INPUT, "test", "-weights", str(weights))
    log = res.stdout + res.stderr
    assert "because it is missing required fields: layer[0].clip_param.min" in log, log
    assert named(log)[:1] == ["prototxt-parse"]


@pytest.mark.parametrize(
    ("argv", "said", "expected"),
    [
        # a training script calling Caffe's tool, never built or not where it looks
        (["sh", "-c", "../../build/tools/caffe train"], "caffe: not found", "caffe-missing"),
        (["bash", "-c", "./build/tools/caffe train"], "No such file or directory", "caffe-missing"),
        (["sh", "-c", "caffe train"], "caffe: not found", "caffe-missing"),
        (["bash", "-c", "extract_image_features.bin x"], "command not found", "caffe-missing"),
        # Caffe's Makefile running protoc where none is installed
        (["make", "-f", "-"], "protoc: No such file or directory", "protobuf-version-drift"),
        # a directory called caffe, not a program
        (["bash", "-c", "cd caffe"], "cd: caffe: No such file or directory", "none"),
    ],
)
def test_a_shell_or_make_missing_a_program_names_its_owner(tmp_path, argv, said, expected):
    """dash, bash and make as they fail here, with no such program on PATH."""
    res = subprocess.run(
        argv,
        input="all:\n\tprotoc --proto_path=src --cpp_out=build src/caffe/proto/caffe.proto\n",
        cwd=tmp_path,
        env={"PATH": str(tmp_path)},
        executable=shutil.which(argv[0]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert said in res.stderr, res.stderr
    assert (named(res.stderr)[:1] or ["none"]) == [expected], res.stderr
