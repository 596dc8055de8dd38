"""Execute a plan: cache hit, or the logged, resumable steps; then install, pin and smoke."""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from caffedoc import host
from caffedoc.build import arches, install, opencv, paths, source, toolkit
from caffedoc.build import protobuf as pb
from caffedoc.build.plan import Plan
from caffedoc.build.steps import Log, Runner, StepError, StepFailed
from caffedoc.errors import CaffedocError
from caffedoc.layout import RECORD, BuildRecord, pin, remember_build
from caffedoc.platform import PackageManager


@dataclass
class Outcome:
    prefix: Path
    python: Path
    cache: str  # "prefix" (already installed), "artifact" (copied from the cache) or "built"
    seconds: float
    smoke: dict[str, Any] | None = None
    resumed: list[str] = field(default_factory=list)
    logs: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": str(self.prefix),
            "python": str(self.python),
            "cache": self.cache,
            "seconds": round(self.seconds, 2),
            "smoke": self.smoke,
            "resumed": self.resumed,
            "logs": self.logs,
        }


def refuse_unbuildable(plan: Plan) -> None:
    recipe = plan.recipe
    if recipe.status == "blocked":
        raise CaffedocError(f"recipe {recipe.name} cannot be built yet: {recipe.reason}")
    if recipe.status == "bad":
        raise CaffedocError(f"recipe {recipe.name} is known to be bad: {recipe.reason}")
    if plan.static_protobuf:
        pb.check_possible(recipe.protobuf)


def install_packages(
    missing: tuple[str, ...], manager: PackageManager, log: Log | None = None
) -> str:
    """Install the missing packages as root; otherwise say the exact command."""
    cmd = manager.install_argv(missing)
    if not missing:
        return "all installed"
    if os.geteuid() != 0:
        raise CaffedocError(
            f"missing system packages: {' '.join(missing)}; as root, run: {shlex.join(cmd)}"
        )
    env = {**os.environ, **manager.install_env()}
    if log is not None:
        log.check(log.run(cmd, timeout=3600, env=env), f"{cmd[0]} install")
    else:
        res = host.run(cmd, timeout=3600, env=env)
        if not res.ok:
            tail = " | ".join(res.output.strip().splitlines()[-3:])
            raise CaffedocError(f"{res.describe()}: {tail}", code=1)
    return f"installed {len(missing)}"


def execute(plan: Plan, *, out: TextIO = sys.stderr) -> Outcome:
    start = time.monotonic()
    refuse_unbuildable(plan)
    locks = paths.cache_root() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{plan.key[:16]}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            out.write("waiting for another caffedoc build of the same inputs to finish...\n")
            fcntl.flock(lock, fcntl.LOCK_EX)
        outcome = _execute_locked(plan, out)
    outcome.seconds = time.monotonic() - start
    return outcome


def verify_origin(plan: Plan) -> str:
    """Check a tarball's hash or a tree's files; run before any cache lookup too."""
    o, src = plan.origin, plan.recipe.source
    if o.kind == "tree":
        source.verify_tree(o.path, src)
        return "every file matches the manifest"
    source.verify_tarball(o.path, src)
    return f"sha256 {src.sha256[:12]}… matches"


def _execute_locked(plan: Plan, out: TextIO) -> Outcome:
    if plan.origin.kind != "apt":
        verify_origin(plan)
    record = BuildRecord.read(plan.prefix)
    # The key covers the -dev package versions, so a removed system library means a miss.
    if record and record.key == plan.key:
        cache = "prefix"
        out.write(f"cache hit: {plan.prefix} already holds this build ({plan.key[:16]})\n")
        outcome = Outcome(plan.prefix, plan.python.path, cache, 0.0)
    elif (plan.artifact / RECORD).is_file():
        out.write(f"cache hit: installing the finished build {plan.artifact}\n")
        install.install_tree(plan.artifact, plan.prefix)
        outcome = Outcome(plan.prefix, plan.python.path, "artifact", 0.0)
    else:
        outcome = _build(plan, out)
    target = pin(plan.pth, plan.prefix)
    remember_build(plan.python.path, plan.prefix)  # `caffedoc smoke`'s default interpreter
    out.write(f"pinned {plan.python.path} to {target} ({plan.pth})\n")
    outcome.smoke = _smoke(plan, out)
    return outcome


def _build(plan: Plan, out: TextIO) -> Outcome:
    work = plan.workdir
    work.mkdir(parents=True, exist_ok=True)
    (work / "plan.json").write_text(json.dumps(plan.to_json(), indent=2))
    runner = Runner(work, out)
    out.write(f"building {plan.recipe.name} in {work} (logs: {runner.logs})\n")
    env = build_env(plan)
    recipe, src, bld = plan.recipe, work / "src", work / "build"

    manager = plan.recipe.manager()
    runner.step("packages", lambda log: install_packages(plan.missing, manager, log), once=False)

    def fetch(log: Log) -> str:
        o = plan.origin
        if o.kind == "apt":
            s = recipe.source
            source.apt_source(s.apt_package or "", s.apt_suite or "", s.tarball, o.path, log.path)
        return o.detail

    runner.step("fetch", fetch)

    runner.step("verify", lambda log: verify_origin(plan), once=False)

    def patch(log: Log) -> str:
        fresh = work / "src.new"
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(src, ignore_errors=True)
        o = plan.origin
        if o.kind == "tree":
            shutil.copytree(o.path, fresh, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        else:
            source.extract(o.path, fresh)
        apply_patches(recipe.patches, fresh, log)
        fresh.rename(src)
        return f"{len(recipe.patches)} applied"

    runner.step("patch", patch)

    if plan.toolkit is not None:
        runner.step("toolkit", lambda log: cuda_toolkit(plan, log), once=False)

    protobuf_args: list[str] = []
    if plan.static_protobuf:
        version = pb.system_version() or recipe.protobuf
        runner.step("protobuf", lambda log: str(pb.pic_protobuf(version, log, plan.jobs, env)))
        lib = pb.library(version)
        protobuf_args = [
            f"-DProtobuf_LIBRARY={lib}",
            f"-DProtobuf_LIBRARY_RELEASE={lib}",
            "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,--exclude-libs,libprotobuf.a",
        ]

    opencv_args: list[str] = []
    if plan.portable:
        runner.step("opencv", lambda log: str(opencv.minimal_opencv(log, plan.jobs, env)))
        opencv_args = [f"-DOpenCV_DIR={opencv.config_dir()}"]

    def configure(log: Log) -> None:
        args = ["cmake", "-S", src, "-B", bld, *plan.cmake_args, *protobuf_args, *opencv_args]
        ccache = shutil.which("ccache")
        if ccache:
            args.append("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
        log.check(log.run(args, timeout=600, env=env), "cmake")
        if ccache and plan.toolkit is not None:
            # FindCUDA resets CUDA_NVCC_EXECUTABLE on the configure that sets the toolkit
            # root, so the ccache wrapper goes in by a second, incremental one.
            nvcc = toolkit.ccache_wrapper(plan.toolkit.nvcc, work)
            res = log.run(["cmake", f"-DCUDA_NVCC_EXECUTABLE={nvcc}", bld], timeout=600, env=env)
            log.check(res, "cmake (nvcc through ccache)")

    runner.step("configure", configure)

    def compile_(log: Log) -> None:
        res = log.run(["cmake", "--build", bld, "-j", str(plan.jobs)], timeout=4 * 3600, env=env)
        log.check(res, "compiling")

    runner.step("compile", compile_, once=False, progress=True)

    def stage(log: Log) -> str:
        staged = work / "stage"
        shutil.rmtree(staged, ignore_errors=True)
        log.check(
            log.run(["cmake", "--install", bld, "--prefix", staged], timeout=600, env=env),
            "cmake --install",
        )
        if plan.portable:
            log.note(opencv.bundle(staged))
        for line in install.relocate(staged):
            log.note(line)
        if plan.toolkit is not None:
            log.note(toolkit.bundle(plan.toolkit.root, staged))
        missing = install.unresolved(staged)
        if missing:
            raise StepError(f"unresolved libraries after install: {', '.join(missing)}")
        _record(plan).write(staged)
        artifact = plan.artifact
        artifact.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(artifact, ignore_errors=True)
        staged.rename(artifact)
        install.install_tree(artifact, plan.prefix)
        return f"into {plan.prefix}"

    runner.step("install", stage, once=False)
    return Outcome(plan.prefix, plan.python.path, "built", 0.0, resumed=runner.resumed,
                   logs=str(runner.logs))  # fmt: skip


def cuda_toolkit(plan: Plan, log: Log) -> str:
    """Assemble (or reuse) the CUDA root; a wheel-borne nvcc's targets are checked now."""
    tk = plan.toolkit
    assert tk is not None and plan.arches is not None
    root = toolkit.assemble(tk, log)
    if tk.compiler is None:  # the plan could not ask this nvcc before it was downloaded
        supported = toolkit.supported_architectures(tk.nvcc)
        refused = [a for a in plan.arches.real if a not in supported]
        if refused:
            raise StepError(arches.refusal(refused, supported, f"CUDA {tk.cuda}", {}))
    return f"{root} ({tk.describe()})"


def apply_patches(patches: tuple[Path, ...], tree: Path, log: Log) -> None:
    """`patch -p1` each patch; a patch that does not apply cleanly fails the step."""
    for p in patches:
        res = log.run(
            ["patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-i", p],
            timeout=60,
            cwd=tree,
        )
        log.check(res, f"patch {p.name} does not apply")


def build_env(plan: Plan) -> dict[str, str]:
    """The compile environment: ccache shared by every build, hits across work folders.
    ccache hashes LANG, LC_CTYPE and LC_MESSAGES with every compile: one fixed locale makes
    a build's objects hit from another shell or an image (where LANG is often unset)."""
    ccache = paths.ccache_dir()
    ccache.mkdir(parents=True, exist_ok=True)
    return {
        **{k: v for k, v in os.environ.items() if k not in ("LC_CTYPE", "LC_MESSAGES")},
        "CCACHE_DIR": str(ccache),
        "CCACHE_BASEDIR": str(plan.workdir),
        "CCACHE_NOHASHDIR": "1",
        "LANG": "C",
        "LC_ALL": "C",
    }


def _record(plan: Plan) -> BuildRecord:
    """What the prefix says of this build; `check` compares a CUDA build's CUDA, cuDNN
    (X.Y.Z) and targets with what its libraries load and hold."""
    cudnn = None
    if plan.arches is not None:
        cudnn = next((w.version for w in plan.recipe.toolkit_libraries if "cudnn" in w.name), None)
    return BuildRecord(
        key=plan.key,
        recipe=plan.recipe.name,
        python=plan.python.version,
        abi=plan.python.abi,
        static_protobuf=plan.static_protobuf,
        source_sha256=plan.recipe.source.sha256,
        cuda=plan.recipe.cuda if plan.arches is not None else None,
        cudnn=".".join(cudnn.split(".")[:3]) if cudnn else None,
        architectures=tuple(plan.arches.names()) if plan.arches is not None else None,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def _smoke(plan: Plan, out: TextIO) -> dict[str, Any]:
    """Prove the install with a real training step, in the pinned interpreter."""
    from caffedoc.smoke import run_smoke

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = run_smoke(plan.python.path, env=env)
    if not result.passed:
        out.write("smoke: FAILED\n")
        if result.finding is not None:
            out.write(f"  {result.finding.title}\n  fix: {result.finding.fix}\n")
        raise StepFailed(f"the smoke step failed for {plan.python.path} with {plan.prefix}")
    out.write("smoke: passed\n")
    return result.to_json()
