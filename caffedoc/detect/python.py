"""Rules about interpreters and pips: which Python a `pip` feeds, scripts whose
interpreter is gone, and a pycaffe compiled for another Python or numpy."""

from __future__ import annotations

import re
from collections.abc import Iterator

from caffedoc.detect import detects
from caffedoc.findings import Hit, Severity
from caffedoc.probes import Facts
from caffedoc.probes.caffe import CaffeFacts
from caffedoc.probes.python import Command, Interpreter, PythonFacts
from caffedoc.shellwords import ETC, cmd

ABI_ERRORS = re.compile(
    r"does not define module export function|undefined symbol: _?Py|"
    r"libpython\d\.\d+\S*: cannot open|libboost_python\S*: cannot open"
)
NUMPY_ERRORS = re.compile(
    r"compiled using NumPy 1\.x|module compiled against (?:ABI|API) version|"
    r"numpy\.core\.multiarray failed to import|_ARRAY_API not found"
)


def _pip_names(t: Interpreter) -> set[str]:
    major = (t.version or "3").split(".")[0]
    return {"pip", f"pip{major}", f"pip{t.major_minor}"}


def _where(c: Command) -> str:
    return f"{c.path} (first `{c.name}` on PATH)" if c.first_on_path else c.path


# The packages of pycaffe's that the interpreter facts locate without importing.
PYCAFFE_LOCATED = ("caffe", "protobuf", "numpy")


def _drifting_pips(py: PythonFacts) -> Iterator[tuple[str, list[str]]]:
    """Each bare pip on PATH that feeds another Python: its evidence, and pycaffe's
    packages that Python has and the target lacks (what such a pip already misplaced)."""
    t = py.target
    for c in py.commands:
        if not (c.first_on_path and c.kind == "pip" and c.name in _pip_names(t)):
            continue
        other = py.interpreters.get(c.runs or "")
        if c.broken or other is None or not other.ok or other.prefix == t.prefix:
            continue
        how = {
            "shebang": f"shebang `#!{c.shebang}`",
            "env": f"shebang `#!{c.shebang}`, which finds {c.runs} on PATH",
            "exec line": f"its exec line runs {c.runs}",
        }.get(c.via or "", f"through {c.via}")
        misplaced = [n for n in PYCAFFE_LOCATED if other.winner(n) and not t.winner(n)]
        said = (
            f"`{c.name}` is {c.path} ({how}): it installs into {other.prefix} "
            f"(Python {other.version}), not into {t.prefix} (Python {t.version}) where "
            f"{t.path} looks"
        )
        if misplaced:
            said += f"; pycaffe's {', '.join(misplaced)} is there but not in {t.prefix}"
        yield said, misplaced


@detects("interpreter-drift")
def interpreter_drift(facts: Facts) -> Iterator[Hit]:
    """A bare pip feeding another Python is a warning only with evidence of harm (pycaffe's
    packages installed there but missing here); otherwise it is information: on a fleet of
    healthy machines with a venv not activated it would sit on every host."""
    py: PythonFacts | None = facts.get("python")
    if py is None or not py.target.ok:
        return
    t = py.target
    drift = list(_drifting_pips(py))
    if drift:
        yield Hit(
            Severity.WARNING if any(harm for _, harm in drift) else Severity.INFO,
            tuple(said for said, _ in drift),
            fix=(
                f"Install into the interpreter that runs Caffe with that interpreter's own pip: "
                f"{cmd(t.path, '-m', 'pip', 'install', ETC)} (never a bare `pip`)"
                + (
                    f", or activate its venv ({cmd('.', f'{t.prefix}/bin/activate')})"
                    if t.in_venv
                    else ""
                )
                + "."
            ),
            detail="pip on PATH feeds another Python",
        )
    broken = [c for c in py.commands if c.broken]
    if broken:
        evidence = tuple(f"{_where(c)}: {c.note} (`#!{c.shebang}`)" for c in broken)
        yield Hit(
            Severity.WARNING if any(c.first_on_path for c in broken) else Severity.INFO,
            evidence,
            fix=(
                "Running these fails with 'bad interpreter: No such file or directory'. "
                "Remove them or reinstall pip for an interpreter that exists "
                f"({cmd(t.path, '-m', 'pip', 'install', '--force-reinstall', 'pip')}), and use "
                f"{cmd(t.path, '-m', 'pip')} meanwhile."
            ),
            detail="scripts name an interpreter that is gone",
        )
    yield from _extension_abi(facts, t)


def _extension_abi(facts: Facts, t: Interpreter) -> Iterator[Hit]:
    cf: CaffeFacts | None = facts.get("caffe")
    w = cf.winner if cf else None
    if w is None or w.extension is None or not t.version:
        return
    ext = w.extension
    major = int(t.version.split(".")[0])
    wrong_major = ext.python_major is not None and ext.python_major != major
    wrong_minor = ext.python_version is not None and ext.python_version != t.major_minor
    attempt = cf.import_attempt
    said = attempt.error if attempt.error and ABI_ERRORS.search(attempt.error) else None
    if not (wrong_major or wrong_minor or said):
        return
    built = ext.python_version or str(ext.python_major)
    evidence = []
    if wrong_major or wrong_minor:
        why = []
        if ext.python_major is not None:
            symbol = "PyInit__caffe" if ext.python_major == 3 else "init_caffe"
            why.append(f"exports {symbol}")
        why += [n for n in ext.linkage.libraries if re.match(r"lib(boost_python|python)", n)]
        evidence.append(
            f"{ext.path} was built for Python {built} ({', '.join(why)}), "
            f"but {t.path} is Python {t.version}"
        )
    if said:
        evidence.append(f"`import caffe` under {t.path}: {attempt.error_type}: {said}")
    yield Hit(
        Severity.ERROR,
        tuple(evidence),
        fix=(
            "Build pycaffe for the interpreter that runs it: "
            f"{cmd('caffedoc', 'build', '--python', t.path)} "
            f"(by hand: {cmd('cmake', f'-DPYTHON_EXECUTABLE={t.path}')} and a Boost.Python for "
            f"Python {t.major_minor}), or run Caffe with a Python {built} interpreter."
        ),
        detail=f"_caffe.so is built for Python {built}",
    )


@detects("numpy-abi")
def numpy_abi(facts: Facts) -> Iterator[Hit]:
    py: PythonFacts | None = facts.get("python")
    cf: CaffeFacts | None = facts.get("caffe")
    w = cf.winner if cf else None
    if py is None or w is None or w.extension is None:
        return
    t = py.target
    numpy = t.winner("numpy")
    version = cf.import_attempt.numpy or (numpy.version if numpy else None)
    attempt = cf.import_attempt
    said = attempt.error if attempt.error and NUMPY_ERRORS.search(attempt.error) else None
    old_headers = (
        w.extension.numpy_headers == "1.x"
        and version is not None
        and int(version.split(".")[0]) >= 2
    )
    if not (old_headers or said):
        return
    evidence = []
    if w.extension.numpy_headers:
        evidence.append(
            f"{w.extension.path} was compiled against numpy {w.extension.numpy_headers} headers"
        )
    if version:
        where = f" at {numpy.path}" if numpy else ""
        evidence.append(f"{t.path} has numpy {version}{where}")
    if said:
        evidence.append(f"`import caffe`: {attempt.error_type}: {said.splitlines()[0]}")
    yield Hit(
        Severity.ERROR,
        tuple(evidence),
        fix=(
            "Rebuild pycaffe against the numpy it runs with "
            f"({cmd('caffedoc', 'build', '--python', t.path)}; "
            "numpy 2 headers work under numpy 1.x and 2.x), or install the numpy it was built "
            f"for: {cmd(t.path, '-m', 'pip', 'install', 'numpy<2')}."
        ),
    )
