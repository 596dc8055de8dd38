"""Write caffedoc/knowledge/forks_data.py from Caffe's forks' own sources.

Nets written for a fork (SSD, Faster R-CNN, R-FCN, CTPN, TSN, SegNet, PSPNet, ...)
use fields, enum values, layer types and pycaffe modules that upstream Caffe lacks.
Run by another Caffe, they fail with "has no field named", "Unknown layer type",
"has no attribute" or "No module named": the Caffe that runs is not the fork's.
What each fork adds is read here from its caffe.proto, its layer registrations and
its python/caffe directory at a pinned commit, against upstream's, never typed by
hand, so the table says where every name came from:

    python benchmarks/forks_from_sources.py MIRRORS > caffedoc/knowledge/forks_data.py
    ruff format caffedoc/knowledge/forks_data.py

MIRRORS holds one bare git repository per fork, as `owner+name/repo` (the layout of
the project's source snapshots).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

UPSTREAM = ("BVLC/caffe", "master", "")
# Upstream's releases: a pycaffe name any of them had is no fork's own (io.py's
# arraylist_to_blobprotovecor_str, say, only left upstream after rc3).
RELEASES = ("rc", "rc2", "rc3", "rc4", "rc5", "1.0", "master")
# (repository, ref, path of the Caffe tree inside it, what users call it)
FORKS = (
    ("weiliu89/caffe", "ssd", "", "SSD"),
    ("MhLiao/TextBoxes", "TextBoxes", "", "TextBoxes"),
    ("rbgirshick/caffe-fast-rcnn", "faster-rcnn", "", "Faster R-CNN"),
    ("daijifeng001/caffe-rfcn", "r-fcn", "", "R-FCN"),
    ("tianzhi0549/CTPN", "master", "caffe/", "CTPN"),
    ("yjxiong/caffe", "action_recog", "", "TSN (caffe-action)"),
    ("alexgkendall/caffe-segnet", "segnet-cleaned", "", "SegNet"),
    ("hszhao/PSPNet", "master", "", "PSPNet"),
    ("eric612/MobileNet-YOLO", "master", "", "MobileNet-YOLO"),
    ("sfzhang15/RefineDet", "master", "", "RefineDet"),
    ("yosinski/caffe", "origin/deconv-deep-vis-toolbox", "", "Deep Visualization Toolbox"),
    ("ShaoqingRen/caffe", "faster-R-CNN", "", "Faster R-CNN (MATLAB)"),
    ("xmojiao/deeplab_v2", "master", "deeplab-public-ver2/", "DeepLab v2"),
    ("torrvision/caffe", "master", "", "CRF-RNN"),
    ("lmb-freiburg/flownet2", "master", "", "FlowNet 2.0"),
    ("facebookarchive/C3D", "master", "C3D-v1.0/", "C3D"),
    ("wy1iu/sphereface", "master", "tools/caffe-sphereface/", "SphereFace"),
    ("ydwen/caffe-face", "caffe-face", "", "center loss (caffe-face)"),
    ("CMU-Perceptual-Computing-Lab/caffe_train", "master", "", "OpenPose training (caffe_train)"),
    ("s9xie/hed", "master", "", "HED"),
    ("happynear/caffe-windows", "master", "", "caffe-windows (happynear)"),
    ("NVIDIA/caffe", "caffe-0.17", "", "NVCaffe"),
    ("intel/caffe", "master", "", "Intel Caffe"),
)

_FIELD = re.compile(r"^\s*(?:optional|repeated|required)\s+[\w.]+\s+(\w+)\s*=\s*\d+")
_ENUM_VALUE = re.compile(r"^\s*([A-Z][A-Z0-9_]*)\s*=\s*-?\d+")
_OPEN = re.compile(r"^\s*(message|enum)\s+(\w+)\s*\{")
_REGISTERED = re.compile(r"REGISTER_LAYER_(?:CLASS\((\w+)\)|CREATOR\((\w+),)")
# pycaffe's names: the package's top-level functions and classes, _caffe.cpp's bindings
_PY_NAME = re.compile(r"^(?:def|class) ([A-Za-z]\w+)|^[A-Z]\w*\.([a-z]\w+)\s*=", re.M)
_BOUND = re.compile(r'\bdef\("(\w+)"')
_PROPERTY = re.compile(r'\badd_property\("(\w+)"')
_ASSIGNED = re.compile(r"^[A-Z]\w*\.(\w+)\s*=", re.M)  # pycaffe.py's Net.blobs = ...


def _git(repo: Path, *args: str) -> str:
    """A git command's output; `git grep` finding nothing (status 1) is an empty one."""
    res = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=120
    )
    if res.returncode and not (args[0] == "grep" and res.returncode == 1 and not res.stderr):
        raise subprocess.CalledProcessError(res.returncode, res.args, res.stdout, res.stderr)
    return res.stdout


def _proto(text: str) -> tuple[set[tuple[str, str]], set[str], set[str]]:
    """(message, field) pairs, enum values and message names, by their full names."""
    fields, values, messages = set(), set(), set()
    scope: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.split("//")[0]
        opened = _OPEN.match(line)
        if opened:
            scope.append((opened.group(1), opened.group(2)))
            if opened.group(1) == "message":
                messages.add(".".join(name for _, name in scope))
        elif scope and scope[-1][0] == "message" and (m := _FIELD.match(line)):
            fields.add((".".join(name for _, name in scope), m.group(1)))
        elif scope and scope[-1][0] == "enum" and (m := _ENUM_VALUE.match(line)):
            values.add(m.group(1))
        scope = scope[: len(scope) - line.count("}")] if "}" in line else scope
    return fields, values, messages


def _names(repo: Path, ref: str, prefix: str) -> dict[str, set]:
    commit = _git(repo, "rev-parse", ref).strip()
    fields, values, messages = _proto(
        _git(repo, "show", f"{commit}:{prefix}src/caffe/proto/caffe.proto")
    )
    sources = _git(repo, "grep", "-h", "-E", "REGISTER_LAYER_(CLASS|CREATOR)", commit, "--",
                   f"{prefix}src/*.cpp", f"{prefix}src/*.cu", f"{prefix}include/*.hpp")  # fmt: skip
    layers = {a or b for a, b in _REGISTERED.findall(sources)} - {"type"}
    listing = _git(repo, "ls-tree", "--name-only", f"{commit}:{prefix}python/caffe")
    modules = {Path(n).stem for n in listing.split() if n.endswith(".py")}
    python: set[str] = set()
    for name in listing.split():
        if name.endswith(".py") or name == "_caffe.cpp":
            text = _git(repo, "show", f"{commit}:{prefix}python/caffe/{name}")
            if name.endswith(".py"):  # defs, classes, and methods set on a class (Net.x = …)
                python |= {a or b for a, b in _PY_NAME.findall(text)}
            else:
                python |= set(_BOUND.findall(text))
    return {
        "commit": commit,
        "fields": fields,
        "values": values,
        "messages": messages,
        "layers": layers,
        "modules": modules - {"__init__"},
        "python": python,
    }


def _headers(repo: Path, commit: str) -> set[str]:
    """Upstream's headers as a program includes them: caffe/layers/conv_layer.hpp."""
    listing = _git(repo, "ls-tree", "-r", "--name-only", commit, "include/caffe")
    return {n.removeprefix("include/") for n in listing.split()}


def _programs(repo: Path, ref: str, prefix: str = "") -> set[str]:
    """The programs a Caffe tree builds: its tools' and examples' sources, by stem."""
    listing = _git(
        repo, "ls-tree", "-r", "--name-only", ref, "--", f"{prefix}tools", f"{prefix}examples"
    )
    return {Path(n).stem for n in listing.split() if n.endswith(".cpp")}


def _bindings(repo: Path, ref: str) -> set[str]:
    """The names pycaffe gives its classes and module at `ref`: pycaffe.py's assignments,
    _caffe.cpp's bindings and properties."""
    names: set[str] = set()
    for name, patterns in (("pycaffe.py", (_ASSIGNED,)), ("_caffe.cpp", (_BOUND, _PROPERTY))):
        text = _git(repo, "show", f"{ref}:python/caffe/{name}")
        for pattern in patterns:
            names |= set(pattern.findall(text))
    return names


def _upstream_words(repo: Path) -> set[str]:
    """Every word of pycaffe's sources in any upstream release."""
    words: set[str] = set()
    for ref in RELEASES:
        for name in _git(repo, "ls-tree", "--name-only", f"{ref}:python/caffe").split():
            if name.endswith(".py") or name == "_caffe.cpp":
                words |= set(re.findall(r"\w+", _git(repo, "show", f"{ref}:python/caffe/{name}")))
    return words


def main(mirrors: Path) -> None:
    def repo(name: str) -> Path:
        return mirrors / name.replace("/", "+") / "repo"

    up = _names(repo(UPSTREAM[0]), UPSTREAM[1], UPSTREAM[2])
    up["python"] |= _upstream_words(repo(UPSTREAM[0]))
    up["modules"] |= up["python"]
    print('"""What Caffe\'s forks add to upstream Caffe: generated, do not edit.')
    print()
    print("Written by benchmarks/forks_from_sources.py from each fork's caffe.proto, layer")
    print(f"registrations and python/caffe at the commit named, against {UPSTREAM[0]} at")
    print(f'{up["commit"]}.\n"""\n')
    print(f"UPSTREAM = ({UPSTREAM[0]!r}, {up['commit']!r})")
    print("UPSTREAM_FIELDS = (")
    for message, field in sorted(up["fields"]):
        print(f"    ({message!r}, {field!r}),")
    print(")")
    print("UPSTREAM_VALUES = (")
    for name in sorted(up["values"]):
        print(f"    {name!r},")
    print(")")
    print("UPSTREAM_HEADERS = (")
    for name in sorted(_headers(repo(UPSTREAM[0]), up["commit"])):
        print(f"    {name!r},")
    print(")")
    programs = set().union(*(_programs(repo(UPSTREAM[0]), ref) for ref in RELEASES))
    for name, ref, prefix, _ in FORKS:
        programs |= _programs(repo(name), ref, prefix)
    print("# every program of upstream's releases and of the forks (tools/, examples/)")
    print("PROGRAMS = (")
    for name in sorted(programs):
        print(f"    {name!r},")
    print(")")
    later = _bindings(repo(UPSTREAM[0]), UPSTREAM[1]) - _bindings(repo(UPSTREAM[0]), RELEASES[0])
    print("# what pycaffe's classes and module gained after upstream's first release (rc):")
    print("# a pycaffe older than the code calling them lacks them")
    print("UPSTREAM_LATER_BINDINGS = (")
    for name in sorted(n for n in later if not n.startswith("__")):
        print(f"    {name!r},")
    print(")")
    print("UPSTREAM_LAYERS = (")
    for name in sorted(up["layers"]):
        print(f"    {name!r},")
    print(")\n")
    print("# (what users call it, repository, branch, commit, (message, field) pairs, enum values,")
    print("#  messages, layer types, pycaffe modules, pycaffe functions, classes and")
    print("#  bindings), each only what upstream lacks")
    print("FORKS = (")
    for name, ref, prefix, called in FORKS:
        got = _names(repo(name), ref, prefix)
        print("    (")
        for value in (called, name, ref.removeprefix("origin/"), got["commit"]):
            print(f"        {value!r},")
        for key in ("fields", "values", "messages", "layers", "modules", "python"):
            extra = sorted(got[key] - up[key])
            print(f"        {tuple(extra)!r},")
        print("    ),")
    print(")")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
