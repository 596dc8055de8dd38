"""caffe-library-missing: a Caffe library or pycaffe's module needs libraries, other
than CUDA's, that the dynamic loader cannot find (CUDA's are cuda_library_path's).

The remedy's words: a broken copy that shadows the --caffe build is the shadowing's
problem, not a repair; libraries that the --caffe tree holds get the exact
ld.so.conf.d command for their directories. It has no steps yet, so `fix` shows
these words as the manual fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from caffedoc.detect import detects
from caffedoc.findings import Hit, Severity
from caffedoc.probes import Facts
from caffedoc.probes.caffe import CaffeFacts, Linkage
from caffedoc.probes.cuda import CUDA_LIB
from caffedoc.remedy import FixContext, Remedy
from caffedoc.shellwords import AND, PIPE, cmd


@dataclass(frozen=True)
class Unresolved:
    """What the remedy needs: the broken copy when it shadows the --caffe build (in
    `tree`), and the missing libraries found in that tree, as paths."""

    shadowing: str | None
    tree: str | None  # the --caffe root
    present: tuple[str, ...] = ()


LOADER_ERRORS = (
    "cannot open shared object file",
    "No module named '_caffe'",
    "No module named _caffe",
)
CANNOT_OPEN = re.compile(r"([\w.+-]+\.so[\w.]*): cannot open shared object file")


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


def remedy(hit: Hit, ctx: FixContext | None) -> Remedy:
    u: Unresolved = hit.subject
    if u.shadowing is not None:
        return Remedy(
            f"The broken copy, {u.shadowing}, is not the --caffe build in {u.tree}: stop it "
            "from shadowing that build (see shadowed-caffe) rather than repairing it."
        )
    if not u.present:
        return Remedy(None)
    dirs = sorted({os.path.dirname(p) for p in u.present})
    return Remedy(
        f"{', '.join(os.path.basename(p) for p in u.present)} exists in {', '.join(dirs)}: "
        f"let the dynamic loader search it ({_conf_add(dirs)}), or "
        "rebuild Caffe so its RUNPATH finds it (caffedoc build installs a relocatable tree)."
    )


@detects("caffe-library-missing", remedy=remedy)
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
    shadowing = cf.tree and cf.tree.packages and w is not None and not w.in_tree
    subject = Unresolved(
        shadowing=w.path if shadowing else None,
        tree=cf.tree.root if cf.tree else None,
        present=tuple(_found_elsewhere(cf, [n for x in links for n in _missing(x)])),
    )
    yield Hit(Severity.ERROR, tuple(evidence), subject=subject)
