"""caffe-import-crash: `import caffe` kills the interpreter. (Which Caffe loads, if any,
is caffe_on_path's; one whose libraries do not resolve, caffe_library_missing's.)"""

from __future__ import annotations

from collections.abc import Iterator

from caffedoc.detect import detects
from caffedoc.findings import Hit, Severity
from caffedoc.probes import Facts
from caffedoc.probes.caffe import CaffeFacts


@detects("caffe-import-crash")
def caffe_import_crash(facts: Facts) -> Iterator[Hit]:
    cf: CaffeFacts | None = facts.get("caffe")
    a = cf.import_attempt if cf else None
    if a is None or not a.crashed or (cf.winner is None and not a.caffe):
        return
    evidence = [f"`import caffe` under {cf.python}: {a.crashed}"]
    evidence += [f"stderr: {line}" for line in a.stderr_tail.splitlines()[-3:] if line.strip()]
    yield Hit(Severity.ERROR, tuple(evidence))
