"""Rules about Caffe installs: none at all, the wrong one winning on sys.path, and
a compiled module whose libraries do not resolve."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from caffedoc.build.install import PTH_NAME, pin_line
from caffedoc.detect import detects
from caffedoc.findings import Hit, Severity
from caffedoc.probes import Facts
from caffedoc.probes.caffe import CaffeFacts, Install, Linkage
from caffedoc.probes.cuda import CUDA_LIB
from caffedoc.probes.python import PythonFacts
from caffedoc.shellwords import AND, PIPE, TO, cmd

LOADER_ERRORS = (
    "cannot open shared object file",
    "No module named '_caffe'",
    "No module named _caffe",
)
CANNOT_OPEN = re.compile(r"([\w.+-]+\.so[\w.]*): cannot open shared object file")


def _describe(i: Install) -> str:
    return f"{i.path} (sys.path entry {i.entry or repr('')} from {i.origin})"


def _site_dir(py: PythonFacts | None) -> str | None:
    t = py.target if py else None
    if t is None or not t.site_dirs:
        return None
    return t.site_dirs[0]


def _pin(parent: str, py: PythonFacts | None) -> str:
    line = pin_line(parent).strip()
    site = _site_dir(py)
    if site is None:
        return f"write the line {line} into a {PTH_NAME} in the interpreter's site-packages"
    return cmd("printf", "%s\\n", line, TO, f"{site}/{PTH_NAME}")


@detects("caffe-missing")
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
        parent = os.path.dirname(tree.packages[0])
        evidence.append(f"--caffe {tree.root} holds {tree.packages[0]}, which is not on sys.path")
        yield Hit(
            Severity.ERROR,
            tuple(evidence),
            fix=f"Put that build on the interpreter's sys.path: {_pin(parent, py)}.",
            detail="the --caffe build is not importable",
        )
        return
    if tree:
        evidence.append(f"--caffe {tree.root} holds no python/caffe package (pycaffe not built)")
    # A warning, not an error: nothing is broken, there is only nothing to diagnose yet.
    yield Hit(Severity.WARNING, tuple(evidence))


@detects("shadowed-caffe")
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
            fix=_fix(w, intended, os.path.dirname(target), py),
            detail=f"{w.path} wins over --caffe",
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
        fix=_fix(w, others[0], os.path.dirname(others[0].path), py),
        detail=f"{len(others) + 1} caffe packages on sys.path",
    )


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


def _missing(link: Linkage) -> list[str]:
    """What the link misses, CUDA and cuDNN aside: those are cuda-library-path's, which
    knows where they are and which loader entry would find them."""
    return [n for n in link.missing if not CUDA_LIB.match(n)]


def _missing_text(link: Linkage, what: str) -> str:
    names = ", ".join(f"{n} => not found" for n in _missing(link))
    return f"{what} {link.path} needs libraries the dynamic loader cannot find: {names}"


def _loader_error(error: str | None) -> bool:
    """The import failed in the loader, for a library that is not CUDA's."""
    if not error or not any(s in error for s in LOADER_ERRORS):
        return False
    m = CANNOT_OPEN.search(error)
    return not (m and CUDA_LIB.match(m.group(1)))


@detects("caffe-library-missing")
def caffe_library_missing(facts: Facts) -> Iterator[Hit]:
    cf: CaffeFacts | None = facts.get("caffe")
    if cf is None:
        return
    evidence: list[str] = []
    links: list[Linkage] = []
    w = cf.winner
    if w is not None and w.kind == "package" and w.extension is None:
        evidence.append(f"{w.path} has no compiled _caffe module: pycaffe was not built there")
    if w is not None and w.extension is not None:
        links.append(w.extension.linkage)
    if cf.tree:
        links += [x for x in (cf.tree.libcaffe,) if x]
        if cf.tree.extension and (
            w is None or cf.tree.extension.path != (w.extension and w.extension.path)
        ):
            links.append(cf.tree.extension.linkage)
    for link in links:
        if _missing(link):
            kind = "libcaffe" if "libcaffe" in os.path.basename(link.path) else "pycaffe's module"
            evidence.append(_missing_text(link, kind))
        elif link.error:
            evidence.append(f"the dynamic loader rejects {link.path}: {link.error}")
    a = cf.import_attempt
    if _loader_error(a.error):
        evidence.append(
            f"`import caffe` under {cf.python}: {a.error_type}: {a.error.splitlines()[0]}"
        )
    if not evidence:
        return
    present = _found_elsewhere(cf, [n for x in links for n in _missing(x)])
    fix = None
    if cf.tree and cf.tree.packages and w is not None and not w.in_tree:
        fix = (
            f"The broken copy, {w.path}, is not the --caffe build in {cf.tree.root}: stop it "
            "from shadowing that build (see shadowed-caffe) rather than repairing it."
        )
    elif present:
        dirs = sorted({os.path.dirname(p) for p in present})
        fix = (
            f"{', '.join(os.path.basename(p) for p in present)} exists in {', '.join(dirs)}: "
            f"let the dynamic loader search it ({_conf_add(dirs)}), or "
            "rebuild Caffe so its RUNPATH finds it (caffedoc build installs a relocatable tree)."
        )
    yield Hit(Severity.ERROR, tuple(evidence), fix=fix)


def _conf_add(dirs: list[str]) -> str:
    """Append `dirs` to an ld.so.conf.d entry, one a line, and refresh the cache."""
    conf = "/etc/ld.so.conf.d/caffe.conf"
    return cmd("printf", "%s\\n", *dirs, PIPE, "sudo", "tee", "-a", conf, AND, "sudo", "ldconfig")


def _found_elsewhere(cf: CaffeFacts, missing: list[str]) -> list[str]:
    """Copies of missing libraries in the --caffe tree, if any."""
    if not cf.tree or not missing:
        return []
    by_name = {os.path.basename(p): p for p in cf.tree.libraries}
    return [by_name[n] for n in dict.fromkeys(missing) if n in by_name]


@detects("caffe-import-crash")
def caffe_import_crash(facts: Facts) -> Iterator[Hit]:
    cf: CaffeFacts | None = facts.get("caffe")
    a = cf.import_attempt if cf else None
    if a is None or not a.crashed or (cf.winner is None and not a.caffe):
        return
    evidence = [f"`import caffe` under {cf.python}: {a.crashed}"]
    evidence += [f"stderr: {line}" for line in a.stderr_tail.splitlines()[-3:] if line.strip()]
    yield Hit(Severity.ERROR, tuple(evidence))
