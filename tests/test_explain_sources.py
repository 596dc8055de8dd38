"""Message forms written from where the messages come from, produced for real.

A signature written from one sample recognizes that sample. These cover a message as
its source words it (CPython's startup, binutils' ld, gcc over OpenCV's and cuDNN's
real headers), and the tests make the tool say it here, on this machine, rather than
quote it: the real interpreter, linker and compiler, in every release pyenv has.
"""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import pytest

from caffedoc.explain import diagnose, explain_stream
from tests.fixtures import cuda_libs
from tests.fixtures.envs import pyenv_python, pyenv_series

OPENCV = Path("/usr/include/opencv4")


def named(output: str) -> list[str]:
    return [m.problem.id for m in explain_stream(io.BytesIO(output.encode())).matches]


@pytest.mark.parametrize("series", pyenv_series())
def test_a_python_started_with_another_pythons_home_is_interpreter_drift(tmp_path, series):
    """PYTHONHOME pointing elsewhere (a conda env's, another Python's prefix): every
    CPython from 2.7 to 3.13 fails to start, each in its own words."""
    python = pyenv_python(series)
    res = subprocess.run(
        [str(python), "-c", "pass"],
        env={"PYTHONHOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
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
    ],
)
def test_message_forms_from_the_tools_own_sources(log, expected):
    assert [f.id for f in diagnose(log)][:1] == [expected]
