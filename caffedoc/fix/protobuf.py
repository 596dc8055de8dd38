"""protobuf: make the Python runtime and caffe_pb2.py agree; relink against the clash.

For a runtime that cannot load the generated code there are two fixes, tried in
this order:
1. regenerate caffe_pb2.py from caffe.proto with a protoc on PATH — chosen only
   when a trial (generate into a scratch directory, import it with the target
   interpreter) shows that runtime loads the result; it leaves the runtime,
   which other packages may depend on, alone;
2. install a runtime the code needs, with the target interpreter's own
   `-m pip` (`caffedoc.fix.pip`: undone file by file, without the network).
The descriptor clash is fixed by rebuilding Caffe with a private static
libprotobuf, which `caffedoc build --static-protobuf` does.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from caffedoc import host
from caffedoc.findings import Finding
from caffedoc.fix import pip
from caffedoc.fix.plan import Action, FixContext, manual, plans
from caffedoc.fix.steps import RunCommand, owner
from caffedoc.probes import Facts
from caffedoc.probes.caffe import CaffeFacts
from caffedoc.probes.protobuf import Gencode, ProtobufFacts


def _fits(version: str | None, needs: str) -> bool:
    try:
        return version is not None and Version(version) in SpecifierSet(needs)
    except (InvalidVersion, InvalidSpecifier):
        return False


def runtime_problem(pb: ProtobufFacts) -> bool:
    """The target's runtime cannot (or only with the slow pure-Python one) load the code."""
    if pb.gencode is None:
        return False
    load = pb.load or {}
    if load.get("ok") is False:
        return True
    rt = pb.target_runtime
    return bool(pb.gencode.needs) and not _fits(rt.version if rt else None, pb.gencode.needs)


def caffe_proto(cf: CaffeFacts | None, pb2: Path) -> Path | None:
    """caffe.proto of the tree the code came from: --caffe's, or the source tree around it."""
    if cf is not None and cf.tree is not None and cf.tree.proto:
        return Path(cf.tree.proto)
    candidate = pb2.parent.parent.parent.parent / "src" / "caffe" / "proto" / "caffe.proto"
    return candidate if candidate.is_file() else None


def loads_with(protoc: str, proto: Path, python: str, env: Mapping[str, str]) -> bool:
    """Generate caffe_pb2.py with `protoc` into a scratch directory and import it there."""
    scratch = tempfile.mkdtemp(prefix="caffedoc-pb2-")
    try:
        gen = host.run(
            [protoc, f"-I{proto.parent}", f"--python_out={scratch}", proto], timeout=60, env=env
        )
        if not gen.ok:
            return False
        clean = {k: v for k, v in env.items() if k != "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"}
        trial = f"import sys; sys.path.insert(0, {scratch!r}); import caffe_pb2"
        return host.run([python, "-c", trial], timeout=60, env=clean).ok
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def regenerate(
    pb: ProtobufFacts, code: Gencode, proto: Path, env: Mapping[str, str]
) -> RunCommand | None:
    """The step that rewrites caffe_pb2.py with the first protoc whose code loads."""
    pb2 = Path(code.path)
    for protoc, _version in pb.protoc:
        if loads_with(protoc, proto, pb.python, env):
            return RunCommand(
                (protoc, f"-I{proto.parent}", f"--python_out={pb2.parent}", str(proto)),
                preserve=(pb2,),
                reverse=f"restore the previous caffe_pb2.py (made by {code.generated_by})",
                timeout=120,
                owner=owner(pb2.parent),
            )
    return None


@plans("protobuf-version-drift")
def version_drift(facts: Facts, findings: list[Finding], ctx: FixContext) -> list[Action]:
    pb: ProtobufFacts | None = facts.get("protobuf")
    python_side = [f for f in findings if "caffe_pb2" in f.title]
    rest = [manual(f) for f in findings if f not in python_side]
    if pb is None or pb.gencode is None or not python_side or not runtime_problem(pb):
        return [manual(f) for f in python_side] + rest
    code, f = pb.gencode, python_side[0]
    proto = caffe_proto(facts.get("caffe"), Path(code.path))
    if proto is not None:
        regen = regenerate(pb, code, proto, ctx.env)
        if regen is not None:
            return [Action(f.id, f.title, (regen,)), *rest]
    if not code.needs:
        return [manual(f, f"{code.path} came from an unrecognised protoc"), *rest]
    step, why = pip.install(pb.python, "protobuf", f"protobuf{code.needs}", ctx.env)
    return [Action(f.id, f.title, (step,)) if step else manual(f, why), *rest]


@plans("protobuf-descriptor-clash")
def descriptor_clash(facts: Facts, findings: list[Finding], ctx: FixContext) -> list[Action]:
    """Rebuild with a private static libprotobuf for the interpreter the check looked at.

    The build's own dry run names the prefix it installs into and the .pth that pins
    the interpreter: both are preserved, so undo brings back the previous Caffe.
    """
    f = findings[0]
    build = (
        sys.executable,
        "-m",
        "caffedoc",
        "build",
        "--static-protobuf",
        "--python",
        str(ctx.check.python),
    )
    dry = host.run([*build, "--dry-run", "--json"], timeout=300, env=ctx.env)
    try:
        plan = json.loads(dry.stdout)
        prefix, pin = Path(plan["prefix"]), Path(plan["pin"])
    except (ValueError, KeyError, TypeError):
        why = (dry.stderr.strip().splitlines() or [dry.describe()])[-1]
        return [manual(f, f"`caffedoc build --static-protobuf` cannot plan here: {why}")]
    step = RunCommand(
        build,
        preserve=(prefix, pin),
        reverse=f"restore {prefix} and {pin} as they were",
        timeout=3600,
    )
    return [Action(f.id, f.title, (step,))]
