"""`caffedoc build`."""

import json
import os
import shlex
import signal
import sys
from functools import partial
from pathlib import Path
from typing import Annotated, Optional

import typer

from caffedoc import options
from caffedoc.errors import CaffedocError


def build(
    recipe: Annotated[
        Optional[str], typer.Option(help="Build this recipe (see `recipes`).")
    ] = None,
    cuda: Annotated[
        Optional[str], typer.Option(metavar="X.Y", help="Build for this CUDA version.")
    ] = None,
    cudnn: Annotated[
        Optional[str], typer.Option(metavar="A.B[.C]", help="With --cuda: this cuDNN version.")
    ] = None,
    cpu_only: Annotated[bool, typer.Option("--cpu-only", help="Build without CUDA.")] = False,
    cuda_arch: Annotated[
        Optional[str],
        typer.Option(
            metavar="CC[,CC…]",
            help="GPU targets, e.g. 7.5,86 (default: the GPUs here, else the recipe's list).",
        ),
    ] = None,
    static_protobuf: Annotated[
        bool,
        typer.Option(
            "--static-protobuf",
            help="Link a private, static libprotobuf (the fix for the caffe.proto clash).",
        ),
    ] = False,
    portable: Annotated[
        bool,
        typer.Option(
            "--portable",
            help="Static protobuf and a minimal OpenCV (built once, cached): for a small wheel.",
        ),
    ] = False,
    prefix: Annotated[
        Optional[str], typer.Option(help="Install here (default: ~/.local/opt/caffe-RECIPE).")
    ] = None,
    python: Annotated[
        Optional[Path],
        typer.Option(help="Interpreter (or venv) to build for and pin; default: python3."),
    ] = None,
    source: Annotated[
        Optional[Path],
        typer.Option(metavar="DIR|TARBALL", help="Use this Caffe tree or tarball (verified)."),
    ] = None,
    jobs: Annotated[
        Optional[int], typer.Option(help="Parallel compile jobs (default: cores and memory).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the whole plan and change nothing.")
    ] = False,
    deps_only: Annotated[
        bool, typer.Option("--deps-only", help="Only install the recipe's system packages.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Machine-readable plan or result.")
    ] = False,
    wheel: Annotated[
        bool,
        typer.Option("--wheel", help="Then pack the install as a portable wheel."),
    ] = False,
    out: Annotated[
        Optional[Path],
        typer.Option(metavar="DIR", help="With --wheel: write it here (default: ./wheelhouse)."),
    ] = None,
) -> None:
    """Build a known-good Caffe from a recipe, install it, pin the interpreter, prove it.

    The recipe is chosen from this machine (distro, CUDA, GPU) and the flags; an
    impossible request is refused with the reason. A build whose inputs did not change
    is a cache hit. Each step logs to a file; a re-run resumes an interrupted build.

    Exit status: 0 built (or cache hit), 1 a step failed, 2 refused or bad usage.
    """
    from caffedoc.build import arches, engine, wheel_gpu
    from caffedoc.build.interpreter import deps_argv, install_deps
    from caffedoc.build.plan import Plan, make_plan
    from caffedoc.build.wheel import make as make_wheel
    from caffedoc.build.wheel import refuse_early
    from caffedoc.probes import default_python
    from caffedoc.probes.machine import host_facts
    from caffedoc.recipes import load_all
    from caffedoc.resolution import Request, resolve

    asked_arches = arches.parse(cuda_arch) if cuda_arch is not None else ()
    if asked_arches and cpu_only:
        raise CaffedocError("--cpu-only cannot be combined with --cuda-arch")
    host = host_facts()
    request = Request(recipe=recipe, cuda=cuda, cudnn=cudnn, cpu_only=cpu_only)
    chosen = resolve(load_all(), host, request)
    if deps_only:
        _, missing = chosen.recipe.packages_here() or ({}, chosen.recipe.apt)
        done = engine.install_packages(missing, chosen.recipe.manager())
        typer.echo(f"{chosen.recipe.name}: {done}")
        return
    if prefix is not None and not prefix.strip():
        raise CaffedocError(f"--prefix {prefix!r}: empty; name the directory to install into")
    if source is not None and not source.exists():
        raise CaffedocError(f"--source {source}: no such file or directory")
    env = dict(os.environ)
    interpreter = options.interpreter(python) or default_python(env)

    def plan_now() -> Plan:
        return make_plan(
            chosen.recipe,
            chosen.why,
            host,
            interpreter,
            prefix=Path(prefix) if prefix is not None else None,
            given_source=source,
            jobs=jobs,
            static_protobuf=static_protobuf,
            cuda_arch=asked_arches,
            portable=portable,
        )

    plan = plan_now()
    if out is not None and not wheel:
        raise CaffedocError("--out names where --wheel writes the wheel: add --wheel")
    wheel_dir = refuse_early(plan.recipe, plan.python, out or Path("wheelhouse")) if wheel else None
    if wheel and plan.recipe.kind == "cuda":
        wheel_gpu.runtime_wheels(plan.recipe)
    if dry_run:
        typer.echo(json.dumps(plan.to_json(), indent=2) if as_json else plan.render())
        return
    signal.signal(signal.SIGTERM, _interrupt)
    log = sys.stderr
    if plan.python.missing:  # the cache key holds numpy's major version: plan again after
        log.write(f"pycaffe's packages: {shlex.join(deps_argv(plan.python))}\n")
        log.write(f"pycaffe's packages: {install_deps(plan.python)}\n")
        plan = plan_now()
    log.write(f"recipe {plan.recipe.name}: {plan.why}\n")
    outcome = engine.execute(plan, out=log)
    made = None
    if wheel_dir is not None:
        log.write(f"packing a wheel for {plan.python.path} into {wheel_dir} (auditwheel)\n")
        gpu = plan.recipe.kind == "cuda"  # CUDA and cuDNN from NVIDIA's wheels (wheel_gpu)
        retarget = partial(wheel_gpu.retarget, plan.recipe, outcome.prefix) if gpu else None
        made = make_wheel(outcome.prefix, plan.python, plan.recipe.protobuf, wheel_dir, retarget)
    if as_json:
        result = {"plan": plan.to_json(), "result": outcome.to_json()}
        if made is not None:
            result["wheel"] = made.to_json()
        typer.echo(json.dumps(result, indent=2))
    else:
        how = {"prefix": "already installed", "artifact": "from the build cache", "built": "built"}
        typer.echo(
            f"Caffe ({plan.recipe.name}) is in {outcome.prefix} ({how[outcome.cache]}, "
            f"{outcome.seconds:.1f} s); {outcome.python} imports it."
        )
        if made is not None:
            typer.echo(
                f"wheel {made.path} ({made.size / 1e6:.1f} MB, {made.installed / 1e6:.1f} MB "
                f"installed, {made.tag}, {len(made.bundled)} libraries bundled): "
                f"pip install --find-links {made.path.parent} caffe"
            )


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM cleans up like Ctrl-C: the running step's processes die, nothing half-installed."""
    raise KeyboardInterrupt
