"""Which Caffe `import caffe` loads: none at all (caffe-missing), or not the one meant
(shadowed-caffe); and the one remedy for both, make the intended Caffe win.

Two tools, as the knowledge base says: move a stale copy aside (never delete it),
and pin the intended build exactly as `caffedoc build` does: the same
`caffedoc-caffe.pth` in the interpreter's first site directory, whose import line
puts the build first on sys.path. One pin per interpreter, so a fix and a build
replace each other's instead of competing. Stale copies are still dealt with, so
that no second caffe stays behind to shadow it again once the pin is gone. Copies
that come from PYTHONPATH or the working directory are the user's environment,
not files caffedoc should touch: those stay manual.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from caffedoc import host
from caffedoc.detect import detects
from caffedoc.findings import Hit, Severity
from caffedoc.fix.steps import MoveAside, Step, WriteFile
from caffedoc.layout import PTH_NAME, pin_line
from caffedoc.probes import Facts
from caffedoc.probes.caffe import CaffeFacts, Install
from caffedoc.probes.python import PythonFacts
from caffedoc.remedy import FixContext, Remedy
from caffedoc.shellwords import TO, cmd


@dataclass(frozen=True)
class Intended:
    """The package `import caffe` should load (`target`), what loads instead (`stale`,
    None: nothing does), and the install entry of the intended one when it is on sys.path."""

    caffe: CaffeFacts
    python: PythonFacts | None
    target: str
    stale: Install | None = None
    intended: Install | None = None


def _describe(i: Install) -> str:
    return f"{i.path} (sys.path entry {i.entry or repr('')} from {i.origin})"


def site_dir(py: PythonFacts | None) -> Path | None:
    """The interpreter's first site directory, where a pin goes (None: not known)."""
    t = py.target if py else None
    return Path(t.site_dirs[0]) if t and t.ok and t.site_dirs else None


def _pin(parent: str, py: PythonFacts | None) -> str:
    line = pin_line(parent).strip()
    site = site_dir(py)
    if site is None:
        return f"write the line {line} into a {PTH_NAME} in the interpreter's site-packages"
    return cmd("printf", "%s\\n", line, TO, f"{site}/{PTH_NAME}")


def _fix(stale: Install, intended: Install | None, parent: str, py: PythonFacts | None) -> str:
    if stale.origin == "PYTHONPATH":
        source = f"remove {stale.entry} from PYTHONPATH"
    elif stale.origin.endswith(".pth"):
        source = f"remove the line {stale.entry} from {stale.origin}"
    elif stale.entry == "":
        source = f"run from another directory than {os.path.dirname(stale.path)}"
    else:
        mv = cmd("mv", stale.path, f"{stale.path}.stale")
        source = f"move it aside ({mv}; caffedoc fix can undo this)"
    if intended is not None and intended.origin.endswith(".pth"):
        pin = f"{intended.origin} already pins {parent}"
    else:
        pin = f"pin the build you mean: {_pin(parent, py)}"
    return (
        f"If {stale.path} is the stale copy, {source}. {pin[0].upper()}{pin[1:]}; "
        "avoid sys.path.insert in scripts."
    )


def pin_steps(site: Path, parent: str) -> list[Step]:
    """Pin `parent` (the directory holding the caffe package) as a build would, in `site`."""
    pth = site / PTH_NAME
    line = pin_line(parent)
    return [] if host.read_text(pth) == line else [WriteFile(pth, line)]


def remove_steps(stale: Install, py: PythonFacts | None, stamp: str) -> list[Step] | str:
    """Steps that take `stale` off sys.path, or why caffedoc leaves it to the user."""
    if stale.origin == "PYTHONPATH":
        return f"{stale.path} comes from PYTHONPATH: remove {stale.entry} from it"
    if stale.entry == "":
        return f"{stale.path} is in the working directory: run from another directory"
    if stale.origin.endswith(".pth"):
        return _pth_steps(Path(stale.origin), stale.entry, py, stamp)
    return [MoveAside(Path(stale.path), stamp)]


def _pth_steps(pth: Path, entry: str, py: PythonFacts | None, stamp: str) -> list[Step] | str:
    """Drop `entry` from a .pth file: move the file aside when that is all it adds."""
    info = next((p for p in (py.target.pth_files if py else ()) if p["file"] == str(pth)), None)
    text = host.read_text(pth)
    if info is None or text is None:
        return f"{pth} adds {entry}, but it could not be read"
    # caffedoc's own pin is one import line: all it does is add `entry`
    if list(info["adds"]) == [entry] and (not info.get("imports") or pth.name == PTH_NAME):
        return [MoveAside(pth, stamp)]
    keep = [
        line
        for line in text.splitlines(keepends=True)
        if os.path.normpath(os.path.join(pth.parent, line.strip())) != entry
        or line.strip().startswith(("#", "import"))
    ]
    return [WriteFile(pth, "".join(keep), mode=pth.stat().st_mode & 0o7777)]


def _plan(
    cf: CaffeFacts, py: PythonFacts | None, intended: str, ctx: FixContext
) -> tuple[list[Step], str | None]:
    """(steps, why manual) to make the package at `intended` the one `import caffe` loads."""
    real = [i for i in cf.installs if i.kind != "namespace"]
    pos = next((n for n, i in enumerate(real) if i.path == intended), None)
    stale = real[:pos] if pos is not None else real
    site = site_dir(py)
    if pos is None and site is None:
        return [], "the interpreter's site-packages directory is unknown"
    # an earlier pin to another build is replaced by the new pin, not moved aside first
    repinned = str(site / PTH_NAME) if pos is None and site else None
    steps: list[Step] = []
    for i in stale:
        got = [] if i.origin == repinned else remove_steps(i, py, ctx.stamp)
        if isinstance(got, str):
            return [], got
        steps += got
    if repinned:
        steps += pin_steps(site, os.path.dirname(intended))
    return steps, None


def remedy(hit: Hit, ctx: FixContext | None) -> Remedy:
    """Take the stale copies off sys.path and pin the intended build (both rules)."""
    it: Intended | None = hit.subject
    if it is None:  # no build to put on sys.path: the entry's advice
        return Remedy(None)
    parent = os.path.dirname(it.target)
    if it.stale is None:
        words = f"Put that build on the interpreter's sys.path: {_pin(parent, it.python)}."
    else:
        words = _fix(it.stale, it.intended, parent, it.python)
    if ctx is None:
        return Remedy(words)
    steps, why = _plan(it.caffe, it.python, it.target, ctx)
    return Remedy(words, tuple(steps), why)


@detects("caffe-missing", remedy=remedy)
def caffe_missing(facts: Facts) -> Iterator[Hit]:
    cf: CaffeFacts | None = facts.get("caffe")
    py: PythonFacts | None = facts.get("python")
    if cf is None or any(i.kind != "namespace" for i in cf.installs):
        return
    if py is not None and not py.target.ok:  # its sys.path is unknown: claim nothing
        return
    evidence = [f"no caffe package on the sys.path of {cf.python}"]
    namespaces = [i.path for i in cf.installs]
    if namespaces:
        evidence.append(
            "only directories named caffe without __init__.py, which import as empty "
            f"namespace packages: {', '.join(namespaces)}"
        )
    a = cf.import_attempt
    if a.error:
        evidence.append(f"`import caffe`: {a.error_type}: {a.error.splitlines()[0]}")
    tree = cf.tree
    if tree and tree.packages:
        evidence.append(f"--caffe {tree.root} holds {tree.packages[0]}, which is not on sys.path")
        yield Hit(
            Severity.ERROR,
            tuple(evidence),
            detail="the --caffe build is not importable",
            subject=Intended(cf, py, tree.packages[0]),
        )
        return
    if tree:
        evidence.append(f"--caffe {tree.root} holds no python/caffe package (pycaffe not built)")
    # A warning, not an error: nothing is broken, there is only nothing to diagnose yet.
    yield Hit(Severity.WARNING, tuple(evidence))


@detects("shadowed-caffe", remedy=remedy)
def shadowed_caffe(facts: Facts) -> Iterator[Hit]:
    cf: CaffeFacts | None = facts.get("caffe")
    py: PythonFacts | None = facts.get("python")
    w = cf.winner if cf else None
    if w is None or w.kind == "namespace":
        return
    others = [i for i in cf.installs if i is not w and i.kind != "namespace"]
    tree = cf.tree
    intended = next((i for i in cf.installs if i.in_tree and i.kind != "namespace"), None)
    if tree and tree.packages and not w.in_tree:
        target = intended.path if intended else tree.packages[0]
        where = (
            f"later on sys.path (entry {intended.entry} from {intended.origin})"
            if intended
            else "not on sys.path at all"
        )
        evidence = (
            f"`import caffe` loads {_describe(w)}",
            f"the intended build, from --caffe {tree.root}, is {target}: {where}",
            *(f"also on sys.path: {_describe(i)}" for i in others if i is not intended),
        )
        yield Hit(
            Severity.ERROR,
            evidence,
            detail=f"{w.path} wins over --caffe",
            subject=Intended(cf, py, target, w, intended),
        )
        return
    if not others:
        return
    broken = not cf.import_attempt.ok or (w.extension is not None and w.extension.linkage.missing)
    if not broken and os.path.basename(w.origin) == PTH_NAME:
        return  # caffedoc's own pin chose a working winner; the area summary lists the others
    evidence = (
        f"`import caffe` loads {_describe(w)}",
        *(f"also on sys.path, ignored: {_describe(i)}" for i in others),
    )
    if broken and cf.import_attempt.error:
        evidence += (f"and that import fails: {cf.import_attempt.error.splitlines()[0]}",)
    yield Hit(
        Severity.ERROR if broken else Severity.WARNING,
        evidence,
        detail=f"{len(others) + 1} caffe packages on sys.path",
        subject=Intended(cf, py, others[0].path, w, others[0]),
    )
