"""Which recipe fits this machine: `resolve` picks the recipe for a host and a request,
or refuses with one line that says why and what to use instead. The machine is read
once (`compute_seen`) for build's choice and for `check --require`'s comparison.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from caffedoc.errors import CaffedocError
from caffedoc.recipes import Recipe, pretty, version_match


def compute_seen(
    toolkit_versions: Iterable[str | None],
    cudnn_versions: Iterable[str | None],
    compute_capabilities: Iterable[str | None],
) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(CUDA X.Y, cuDNN, GPU targets as "86") of a machine, as recipes state them: the one
    reading of the probes' compute facts, for build's resolution and check --require."""
    toolkit = next((v for v in toolkit_versions if v), None)
    cudnn = next((v for v in cudnn_versions if v), None)
    arches = tuple(sorted({cc.replace(".", "") for cc in compute_capabilities if cc}))
    return (".".join(toolkit.split(".")[:2]) if toolkit else None), cudnn, arches


@dataclass(frozen=True)
class HostFacts:
    """What resolution needs to know about a machine (built from probe facts, or by tests)."""

    distro: str  # debian, ubuntu…
    version: str  # 12, 18.04…
    machine: str = "x86_64"
    cuda: str | None = None  # the CUDA toolkit found, X.Y
    cudnn: str | None = None
    gpu_arches: tuple[str, ...] = ()  # compute capabilities of the GPUs, as "86"
    cuda_roots: tuple[Path, ...] = ()  # the CUDA toolkits found (a recipe may use their nvcc)

    def platform(self) -> str:
        return pretty(self.distro, self.version)


@dataclass(frozen=True)
class Request:
    """What the user asked for on the command line."""

    recipe: str | None = None
    cuda: str | None = None
    cudnn: str | None = None
    cpu_only: bool = False


@dataclass(frozen=True)
class Resolution:
    recipe: Recipe
    why: str  # one sentence: why this recipe


def resolve(recipes: Iterable[Recipe], host: HostFacts, req: Request) -> Resolution:
    """The recipe for this host and request, or a one-line refusal (CaffedocError)."""
    recipes = tuple(recipes)
    if req.cpu_only and (req.cuda or req.cudnn):
        raise CaffedocError("--cpu-only cannot be combined with --cuda or --cudnn")
    if req.cudnn and not req.cuda and not req.recipe:
        raise CaffedocError("--cudnn needs --cuda X.Y beside it")
    if req.recipe:
        return _by_name(recipes, host, req)
    if req.cuda:
        return _by_cuda(recipes, host, req)
    if req.cpu_only or not host.gpu_arches:
        cpu = [r for r in recipes if r.kind == "cpu"]
        why = "--cpu-only was asked" if req.cpu_only else "no NVIDIA GPU was found"
        return _pick(cpu, host, f"{why}, so a CPU-only build", "CPU-only")
    return _for_gpu(recipes, host)


def _by_name(recipes: tuple[Recipe, ...], host: HostFacts, req: Request) -> Resolution:
    found = [r for r in recipes if r.name == req.recipe]
    if not found:
        names = ", ".join(r.name for r in recipes)
        raise CaffedocError(f"no recipe named {req.recipe!r}; known recipes: {names}")
    recipe = found[0]
    if req.cuda and recipe.cuda != req.cuda:
        raise CaffedocError(f"recipe {recipe.name} is for {recipe.compute()}, not CUDA {req.cuda}")
    if req.cudnn and not version_match(req.cudnn, recipe.cudnn or ""):
        raise CaffedocError(
            f"recipe {recipe.name} is for {recipe.compute()}, not cuDNN {req.cudnn}"
        )
    _refuse_bad(recipe, recipes)
    _check_platform(recipe, host)
    _check_gpus(recipe, host)
    return Resolution(recipe, f"--recipe {recipe.name} was asked")


def _by_cuda(recipes: tuple[Recipe, ...], host: HostFacts, req: Request) -> Resolution:
    cuda = [r for r in recipes if r.kind == "cuda" and version_match(req.cuda or "", r.cuda or "")]
    if not cuda:
        known = sorted({r.cuda for r in recipes if r.cuda}, key=_vkey)
        raise CaffedocError(
            f"no recipe for CUDA {req.cuda}; recipes exist for CUDA {', '.join(known)}"
        )
    asked = f"CUDA {req.cuda}"
    if req.cudnn:
        with_cudnn = [r for r in cuda if r.cudnn and version_match(req.cudnn, r.cudnn)]
        if not with_cudnn:
            known = ", ".join(sorted({r.cudnn for r in cuda if r.cudnn}, key=_vkey))
            raise CaffedocError(
                f"no recipe for CUDA {req.cuda} with cuDNN {req.cudnn}; "
                f"for CUDA {req.cuda} there is cuDNN {known}"
            )
        cuda, asked = with_cudnn, f"{asked} with cuDNN {req.cudnn}"
        if all(r.status == "bad" for r in cuda):
            _refuse_bad(cuda[0], recipes)
    usable = [r for r in cuda if r.status != "bad"]
    if not usable:
        _refuse_bad(cuda[0], recipes)
    resolution = _pick(usable, host, f"{asked} was asked", asked)
    _check_gpus(resolution.recipe, host)
    return resolution


def _for_gpu(recipes: tuple[Recipe, ...], host: HostFacts) -> Resolution:
    gpus = ", ".join(f"sm_{a}" for a in host.gpu_arches)
    cuda = [r for r in recipes if r.kind == "cuda" and r.status != "bad" and _targets(r, host)]
    if not cuda:
        raise CaffedocError(f"no recipe's CUDA can target this GPU ({gpus}); use --cpu-only")
    if host.cuda:
        same = [r for r in cuda if version_match(host.cuda, r.cuda or "")]
        if same and any(r.fits(host.distro, host.version) for r in same):
            return _pick(same, host, f"CUDA {host.cuda} is installed and targets {gpus}", "")
    newest = sorted(cuda, key=lambda r: _vkey(r.cuda or "0"), reverse=True)
    return _pick(newest, host, f"a CUDA that can target this GPU ({gpus})", "GPU")


def _pick(candidates: list[Recipe], host: HostFacts, why: str, what: str) -> Resolution:
    for r in candidates:
        if r.fits(host.distro, host.version) and host.machine in r.machines:
            return Resolution(r, f"{why}; recipe {r.name} fits {host.platform()}")
    if not candidates:
        raise CaffedocError(f"no {what} recipe exists")
    needs = "; ".join(f"{r.name} needs {r.platform()}" for r in candidates)
    raise CaffedocError(f"no {what} recipe fits {host.platform()} ({host.machine}): {needs}")


def _refuse_bad(recipe: Recipe, recipes: tuple[Recipe, ...]) -> None:
    if recipe.status != "bad":
        return
    alt = next((r for r in recipes if r.name == recipe.alternative), None)
    use = f"; use {alt.name} ({alt.compute()}, {alt.platform()})" if alt else ""
    raise CaffedocError(f"{recipe.summary} is known to be bad: {recipe.reason}{use}")


def _check_platform(recipe: Recipe, host: HostFacts) -> None:
    if not recipe.fits(host.distro, host.version):
        raise CaffedocError(
            f"recipe {recipe.name} needs {recipe.platform()}; this machine is {host.platform()}"
        )
    if host.machine not in recipe.machines:
        raise CaffedocError(
            f"recipe {recipe.name} is for {', '.join(recipe.machines)}; "
            f"this machine is {host.machine}"
        )


def _targets(recipe: Recipe, host: HostFacts) -> bool:
    return all(a in recipe.architectures for a in host.gpu_arches)


def _check_gpus(recipe: Recipe, host: HostFacts) -> None:
    if recipe.kind != "cuda" or not host.gpu_arches or _targets(recipe, host):
        return
    missing = ", ".join(f"sm_{a}" for a in host.gpu_arches if a not in recipe.architectures)
    top = max(recipe.architectures, key=int)
    raise CaffedocError(
        f"CUDA {recipe.cuda} cannot target this GPU ({missing}; it stops at sm_{top}): "
        "choose a newer CUDA or run without --cuda to let caffedoc pick one"
    )


def _vkey(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())
