"""Why a smoke step failed, in the knowledge base's terms.

The child reports the stage it reached and, where it could tell, the kind of
failure: which piece of the import broke, no usable GPU, a loss stuck at the
garbage value. Those structured signals decide first; then the log goes to
`caffedoc.explain`'s signatures; what neither recognizes is the generic
`smoke-failed` entry, with the evidence that was seen.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from caffedoc import host, knowledge
from caffedoc.detect import finding
from caffedoc.findings import Finding, Hit, Severity
from caffedoc.pycaffe import PYCAFFE_DEPS
from caffedoc.shellwords import AND, cmd, join
from caffedoc.smoke.events import ChildReport

# The piece of `import caffe` that failed → the problem it points to.
IMPORT_PIECES = {
    "protobuf": "protobuf-version-drift",
    "caffe_pb2": "protobuf-version-drift",
    "caffe": "caffe-missing",
}
# What a compiled module's load error says when numpy's C API does not match.
NUMPY_ABI_WORDS = ("numpy.core.multiarray failed to import", "compiled using numpy", "api version")
# Modules pycaffe imports whose pip name differs from the import name.
PIP_NAMES = {"skimage": "scikit-image", "google": "protobuf", "yaml": "pyyaml", "PIL": "pillow"}
# The piece of `import caffe` that failed → the dependency it is, when it is one.
DEP_PIECES = {"protobuf": "google.protobuf", "google": "google.protobuf"}
# Problems whose own knowledge-base entry is about what the child reported.
CHILD_KINDS = {"no-gpu": "gpu-driver", "stuck-loss": "memorydata-input"}
# Stages after set_input_arrays: the child's log then comes from a MemoryData net.
FED_STAGES = ("feed", "train", "test", "snapshot")
FED_CONTEXT = "caffedoc smoke: a MemoryData net fed by set_input_arrays"
LOG_TAIL = 6  # lines of the child's log kept as evidence when nothing recognizes it


def explain_failure(res: host.Result, report: ChildReport, python: Path) -> Finding:
    """The one finding that best explains a failed smoke step."""
    fail = report.last("fail") or {}
    how = _how_it_ended(res, report)
    known = (
        _from_child(fail)
        or _from_deps(fail, python)
        or _from_log(report)
        or (_from_import(fail, python) if fail.get("kind") == "import" else None)
    )
    if known is not None:
        fix = known.fix
        if report.stage == "import":
            fix += f" {cmd('caffedoc', 'check', '--python', python)} examines that install in full."
        return dataclasses.replace(known, evidence=(how, *known.evidence), fix=fix)
    evidence = [how]
    if fail.get("message"):
        evidence.append(fail["message"])
    evidence += [f"log: {line}" for line in report.log.splitlines()[-LOG_TAIL:]]
    fix = knowledge.get("smoke-failed").fix.replace("--python PY", f"--python {join(python)}")
    return finding("smoke-failed", Hit(Severity.ERROR, tuple(evidence), fix=fix))


def _how_it_ended(res: host.Result, report: ChildReport) -> str:
    stage = report.stage or "start"
    if res.error:
        return f"the smoke step could not start {res.argv[0]}: {res.error}"
    if res.timed_out:
        return f"the smoke step did not finish in {res.seconds:.0f} s (stage '{stage}')"
    if res.signal_name:
        return f"the smoke step was killed by {res.signal_name} in stage '{stage}'"
    if res.ok and not report.passed:
        return f"the smoke step exited 0 without finishing (stage '{stage}')"
    return f"the smoke step failed in stage '{stage}'"


def _from_child(fail: dict) -> Finding | None:
    """A finding from a failure the child recognized itself (not an import error)."""
    message = fail.get("message", "")
    kind = fail.get("kind")
    if kind in CHILD_KINDS:
        return finding(CHILD_KINDS[kind], Hit(Severity.ERROR, (message,)))
    if kind == "cpu-only":
        fix = "Run it on the CPU (--cpu), or build a CUDA Caffe for this machine (caffedoc build)."
        return finding(
            "smoke-failed",
            Hit(Severity.ERROR, (message,), fix=fix, detail="a GPU asked of a CPU_ONLY Caffe"),
        )
    return None


def _from_import(fail: dict, python: Path) -> Finding:
    """By the piece of `import caffe` that failed, when the log names no known problem."""
    piece = fail.get("piece", "caffe")
    evidence = (f"`import caffe` failed at {piece}: {fail.get('message', '')}",)
    if piece == "_caffe":
        lower = fail.get("message", "").lower()
        abi = any(w in lower for w in NUMPY_ABI_WORDS)
        return finding(
            "numpy-abi" if abi else "caffe-library-missing", Hit(Severity.ERROR, evidence)
        )
    if piece in IMPORT_PIECES:
        return finding(IMPORT_PIECES[piece], Hit(Severity.ERROR, evidence))
    pip = PIP_NAMES.get(piece, piece)  # a pure-Python module a fork of pycaffe imports
    install = cmd(python, "-m", "pip", "install", pip)
    fix = f"Install it into the interpreter that runs Caffe: {install}."
    return finding("smoke-failed", Hit(Severity.ERROR, evidence, fix=fix, detail=piece))


def _from_deps(fail: dict, python: Path) -> Finding | None:
    """pycaffe-deps-missing, when the import failed at a dependency the child found absent;
    the fix installs every absent one at once, with that interpreter's own pip."""
    deps = fail.get("deps") or {}
    missing = [m for m in deps.get("missing", ()) if m in PYCAFFE_DEPS]
    piece = fail.get("piece", "caffe")
    if fail.get("kind") != "import" or DEP_PIECES.get(piece, piece) not in missing:
        return None
    evidence = (
        f"`import caffe` failed at {piece}: {fail.get('message', '')}",
        f"{python} lacks {', '.join(missing)}",
    )
    fix = _deps_fix(python, missing, deps)
    detail = ", ".join(PYCAFFE_DEPS[m][0] for m in missing)
    return finding("pycaffe-deps-missing", Hit(Severity.ERROR, evidence, fix=fix, detail=detail))


def _deps_fix(python: Path, missing: list[str], deps: dict) -> str:
    pips = [PYCAFFE_DEPS[m][0] for m in missing]
    install = [python, "-m", "pip", "install", *pips]
    if not deps.get("externally_managed"):
        if deps.get("pip", True):
            return f"Install them into the interpreter that runs Caffe: {cmd(*install)}."
        return (
            f"{python} has no pip: bootstrap it, then install them: "
            f"{cmd(python, '-m', 'ensurepip', AND, *install)}."
        )
    prefix = "python3-" if deps.get("major", 3) >= 3 else "python-"
    distro = [prefix + PYCAFFE_DEPS[m][1] for m in missing]
    return (
        f"{python} is externally managed (PEP 668): its pip refuses to install into it. "
        f"Install the distribution's packages (Debian, Ubuntu: "
        f"{cmd('sudo', 'apt-get', 'install', *distro)}), or make a virtual environment "
        f"({cmd(python, '-m', 'venv', 'VENV')}) and install them there with its own pip "
        f"({cmd('VENV/bin/python', '-m', 'pip', 'install', *pips)})."
    )


def _from_log(report: ChildReport) -> Finding | None:
    """The likeliest known problem in the child's log, by explain's signatures."""
    from caffedoc.explain import diagnose as explain

    text = report.log
    if report.stage in FED_STAGES:  # what the log cannot say: the net is fed from memory
        text = f"{FED_CONTEXT} (stage {report.stage})\n{text}"
    found = explain(text)
    if not found:
        return None
    evidence = tuple(e for e in found[0].evidence if FED_CONTEXT not in e)
    return dataclasses.replace(found[0], evidence=evidence)
