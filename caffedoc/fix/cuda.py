"""cuda-library-path: let the dynamic loader find the CUDA/cuDNN libraries Caffe needs.

The durable fix is the loader's own configuration: the library directory in an
ld.so.conf.d entry (or appended to ld.so.conf when it includes no such
directory), then `ldconfig` to rebuild the cache. Undo removes the entry and the
soname links ldconfig made in the library directories, then runs ldconfig again:
the cache is rebuilt from the configuration as it then is, never copied back (a
copy would drop what apt or ldconfig added since). The configuration and cache
are the ones the check read (CAFFEDOC_LD_SO_CONF / CAFFEDOC_LD_SO_CACHE), so tests
use private ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from caffedoc import host
from caffedoc.findings import Finding
from caffedoc.fix.plan import Action, FixContext, manual, plans
from caffedoc.fix.steps import AppendLine, RunCommand, Step, WriteFile
from caffedoc.probes import Facts
from caffedoc.probes.cuda import CUDA_LIB, CudaFacts

CONF_NAME = "caffedoc-cuda.conf"
DEFAULT_CONF = Path("/etc/ld.so.conf")
DEFAULT_CACHE = Path("/etc/ld.so.cache")


def _needed_dirs(cuda: CudaFacts) -> tuple[list[Path], list[Path]]:
    """(directories the configuration lacks, listed directories the cache lacks) that
    hold a CUDA library some Caffe library cannot resolve."""
    missing = {s for lib in cuda.caffe_libraries for s in lib.unresolved if CUDA_LIB.match(s)}
    homes = [d for d in cuda.library_dirs if missing & set(d.libraries)]
    uncovered = [d.path for d in homes if d.covered_by is None]
    stale = [d.path for d in homes if d.covered_by == "ld.so.conf"]
    return list(dict.fromkeys(uncovered)), list(dict.fromkeys(stale))


def ldconfig_argv(cuda: CudaFacts, env: Mapping[str, str]) -> tuple[str, ...]:
    found = host.which_all("ldconfig", env.get("PATH", "") + ":/usr/sbin:/sbin")
    exe = str(found[0]) if found else "ldconfig"
    if cuda.ld_so_conf == DEFAULT_CONF and cuda.ld_so_cache == DEFAULT_CACHE:
        return (exe,)
    return (exe, "-f", str(cuda.ld_so_conf), "-C", str(cuda.ld_so_cache))


def conf_steps(cuda: CudaFacts, dirs: list[Path]) -> list[Step]:
    """Add `dirs` to the loader configuration: our own ld.so.conf.d entry when the
    configuration includes such a directory, else a line in ld.so.conf itself."""
    if not dirs:
        return []
    confd = next((Path(p).parent for p in cuda.conf_includes if p.endswith(".conf")), None)
    if confd is None:
        return [AppendLine(cuda.ld_so_conf, str(d)) for d in dirs]
    entry = confd / CONF_NAME
    old = (host.read_text(entry) or "").splitlines() if entry.exists() else []
    lines = list(dict.fromkeys([*old, *map(str, dirs)]))
    return [WriteFile(entry, "\n".join(lines) + "\n")]


@plans("cuda-library-path")
def library_path(facts: Facts, findings: list[Finding], ctx: FixContext) -> list[Action]:
    cuda: CudaFacts | None = facts.get("cuda")
    if cuda is None:
        return [manual(f, "the CUDA facts could not be gathered") for f in findings]
    uncovered, stale = _needed_dirs(cuda)
    if not uncovered and not stale:
        why = "no directory on this machine holds the missing library"
        return [manual(f, why) for f in findings]
    refresh = RunCommand(
        ldconfig_argv(cuda, ctx.env),
        regenerate=(cuda.ld_so_cache,),
        watch=tuple(uncovered + stale),
        reverse=f"remove the links ldconfig made and run it again to rebuild {cuda.ld_so_cache}",
        timeout=120,
    )
    title = "; ".join(f.title for f in findings)
    return [Action("cuda-library-path", title, (*conf_steps(cuda, uncovered), refresh))]
