"""shadowed-caffe and an unimportable --caffe build: make the intended Caffe win.

Two tools, as the knowledge base says: move a stale copy aside (never delete
it), and pin the intended build exactly as `caffedoc build` does: the same
`caffedoc-caffe.pth` in the interpreter's first site directory, whose import line
puts the build first on sys.path. One pin per interpreter, so a fix and a build
replace each other's instead of competing. Stale copies are still dealt with, so
that no second caffe stays behind to shadow it again once the pin is gone. Copies
that come from PYTHONPATH or the working directory are the user's environment,
not files caffedoc should touch: those stay manual.
"""

from __future__ import annotations

import os
from pathlib import Path

from caffedoc import host
from caffedoc.build.install import PTH_NAME, pin_line
from caffedoc.findings import Finding
from caffedoc.fix.plan import Action, FixContext, manual, plans
from caffedoc.fix.steps import MoveAside, Step, WriteFile
from caffedoc.probes import Facts
from caffedoc.probes.caffe import CaffeFacts, Install
from caffedoc.probes.python import PythonFacts


def _site_dir(py: PythonFacts | None) -> Path | None:
    t = py.target if py else None
    return Path(t.site_dirs[0]) if t and t.ok and t.site_dirs else None


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


def _plan(cf: CaffeFacts, py: PythonFacts | None, intended: str, ctx: FixContext):
    """(steps, why manual) to make the package at `intended` the one `import caffe` loads."""
    real = [i for i in cf.installs if i.kind != "namespace"]
    pos = next((n for n, i in enumerate(real) if i.path == intended), None)
    stale = real[:pos] if pos is not None else real
    site = _site_dir(py)
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


def _action(f: Finding, cf: CaffeFacts, py: PythonFacts | None, intended: str, ctx: FixContext):
    steps, why = _plan(cf, py, intended, ctx)
    return Action(f.id, f.title, tuple(steps)) if steps else manual(f, why)


@plans("shadowed-caffe")
def shadowed(facts: Facts, findings: list[Finding], ctx: FixContext) -> list[Action]:
    cf: CaffeFacts | None = facts.get("caffe")
    py: PythonFacts | None = facts.get("python")
    w = cf.winner if cf else None
    if cf is None or w is None:
        return [manual(f, "the Caffe facts could not be gathered") for f in findings]
    tree = cf.tree
    if tree and tree.packages and not w.in_tree:
        mine = next((i for i in cf.installs if i.in_tree and i.kind != "namespace"), None)
        intended = mine.path if mine else tree.packages[0]
    else:
        # Without --caffe the next copy on sys.path is the one meant (as the check says).
        others = [i for i in cf.installs if i is not w and i.kind != "namespace"]
        if not others:
            return [manual(f) for f in findings]
        intended = others[0].path
    return [_action(f, cf, py, intended, ctx) for f in findings[:1]]


@plans("caffe-missing")
def missing(facts: Facts, findings: list[Finding], ctx: FixContext) -> list[Action]:
    """A --caffe build with a python/caffe package that is not on sys.path: pin it."""
    cf: CaffeFacts | None = facts.get("caffe")
    if cf is None or cf.tree is None or not cf.tree.packages:
        return [manual(f) for f in findings]
    py: PythonFacts | None = facts.get("python")
    return [_action(f, cf, py, cf.tree.packages[0], ctx) for f in findings[:1]]
