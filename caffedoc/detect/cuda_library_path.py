"""cuda-library-path: a Caffe library needs a CUDA/cuDNN library the loader cannot find.

The rule sees which directories hold the missing libraries and why the loader skips
them (not listed in its configuration, or listed but the cache is stale); the remedy
turns that one reading into the words `check` prints and the steps `fix` applies:
the directory in an ld.so.conf.d entry (or appended to ld.so.conf when it includes
no such directory), then `ldconfig`. Undo removes the entry and the soname links
ldconfig made, then runs ldconfig again: the cache is rebuilt from the configuration
as it then is, never copied back (a copy would drop what apt or ldconfig added since).
The configuration and cache are the ones the check read (CAFFEDOC_LD_SO_CONF /
CAFFEDOC_LD_SO_CACHE), so tests use private ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from caffedoc import host
from caffedoc.detect import detects
from caffedoc.detect.cudafacts import cuda_facts
from caffedoc.findings import Hit, Severity
from caffedoc.fix.steps import AppendLine, RunCommand, Step, WriteFile
from caffedoc.probes import Facts
from caffedoc.probes.cuda import CUDA_LIB, CudaFacts, LibraryDir
from caffedoc.remedy import FixContext, Remedy
from caffedoc.shellwords import AND, PIPE, cmd

CONF_NAME = "caffedoc-cuda.conf"
DEFAULT_CONF = Path("/etc/ld.so.conf")
DEFAULT_CACHE = Path("/etc/ld.so.cache")


@dataclass(frozen=True)
class Unfound:
    """Where the missing libraries are: in directories the configuration lacks
    (`uncovered`), in listed ones the cache lacks (`stale`), or `nowhere`. `machine_*`
    are the same for every Caffe library here, so fixing one hit fixes them all."""

    cuda: CudaFacts
    uncovered: tuple[Path, ...] = ()
    stale: tuple[Path, ...] = ()
    nowhere: tuple[str, ...] = ()
    machine_uncovered: tuple[Path, ...] = ()
    machine_stale: tuple[Path, ...] = ()


def _where(d: LibraryDir, cuda: CudaFacts) -> str:
    if d.covered_by == "ld.so.conf":
        return (
            f"which {cuda.ld_so_conf} lists, but the cache {cuda.ld_so_cache} has no entry "
            f"for {', '.join(d.not_in_cache)}: ldconfig was not rerun after they were installed"
        )
    return f"which neither {cuda.ld_so_conf} (with its includes) nor LD_LIBRARY_PATH lists"


def _ldconfig_argv(cuda: CudaFacts, exe: str = "ldconfig") -> tuple[str, ...]:
    if cuda.ld_so_conf == DEFAULT_CONF and cuda.ld_so_cache == DEFAULT_CACHE:
        return (exe,)
    return (exe, "-f", str(cuda.ld_so_conf), "-C", str(cuda.ld_so_cache))


def _conf_dir(cuda: CudaFacts) -> Path | None:
    """The ld.so.conf.d-style directory the configuration includes, if it has one."""
    return next((Path(p).parent for p in cuda.conf_includes if p.endswith(".conf")), None)


def _refresh(cuda: CudaFacts) -> str:
    return f"Refresh the linker cache: {cmd('sudo', *_ldconfig_argv(cuda))}."


def _conf_line_fix(cuda: CudaFacts, directories: tuple[Path, ...]) -> str:
    """The exact ld.so.conf.d entry for `directories` (one a line), then the cache refresh."""
    confd = _conf_dir(cuda)
    if confd is None:
        tee = ["sudo", "tee", "-a", str(cuda.ld_so_conf)]
    else:
        tee = ["sudo", "tee", str(confd / CONF_NAME)]
    add = cmd(
        "printf", "%s\\n", *map(str, directories), PIPE, *tee, AND, "sudo", *_ldconfig_argv(cuda)
    )
    # The evidence names the directories: prose here could hold a path's backtick.
    them = "it" if len(directories) == 1 else "them"
    return (
        f"Let the dynamic loader search {them}: {add}. "
        "LD_LIBRARY_PATH works for one shell only, not for services or other users."
    )


def _words(u: Unfound) -> str | None:
    fixes = []
    if u.uncovered:
        fixes.append(_conf_line_fix(u.cuda, u.uncovered))
    elif u.stale:
        fixes.append(_refresh(u.cuda))
    if u.nowhere:
        fixes.append(
            f"No {', '.join(u.nowhere)} was found on this machine: install the CUDA/cuDNN "
            "release it belongs to, or rebuild Caffe against the CUDA that is installed."
        )
    return " ".join(fixes) or None


def conf_steps(cuda: CudaFacts, dirs: tuple[Path, ...]) -> list[Step]:
    """Add `dirs` to the loader configuration: our own ld.so.conf.d entry when the
    configuration includes such a directory, else a line in ld.so.conf itself."""
    if not dirs:
        return []
    confd = _conf_dir(cuda)
    if confd is None:
        return [AppendLine(cuda.ld_so_conf, str(d)) for d in dirs]
    entry = confd / CONF_NAME
    old = (host.read_text(entry) or "").splitlines() if entry.exists() else []
    lines = list(dict.fromkeys([*old, *map(str, dirs)]))
    return [WriteFile(entry, "\n".join(lines) + "\n")]


def remedy(hit: Hit, ctx: FixContext | None) -> Remedy:
    u: Unfound = hit.subject
    words = _words(u)
    if ctx is None:
        return Remedy(words)
    uncovered, stale = u.machine_uncovered, u.machine_stale
    if not uncovered and not stale:
        return Remedy(words, why_manual="no directory on this machine holds the missing library")
    found = host.which_all("ldconfig", ctx.env.get("PATH", "") + ":/usr/sbin:/sbin")
    refresh = RunCommand(
        _ldconfig_argv(u.cuda, str(found[0]) if found else "ldconfig"),
        regenerate=(u.cuda.ld_so_cache,),
        watch=uncovered + stale,
        reverse=f"remove the links ldconfig made and run it again to rebuild {u.cuda.ld_so_cache}",
        timeout=120,
    )
    return Remedy(words, (*conf_steps(u.cuda, uncovered), refresh))


def _homes(cuda: CudaFacts, soname: str) -> list[LibraryDir]:
    return [
        d
        for d in cuda.library_dirs
        if soname in d.libraries and d.covered_by in (None, "ld.so.conf")
    ]


@detects("cuda-library-path", remedy=remedy)
def library_path(facts: Facts) -> Iterator[Hit]:
    cuda = cuda_facts(facts)
    if cuda is None:
        return
    per_lib = []
    for lib in cuda.caffe_libraries:
        # Other libraries that do not resolve are the caffe area's (caffe-library-missing).
        missing = [n for n in lib.unresolved if CUDA_LIB.match(n)]
        if missing:
            per_lib.append((lib, missing))
    wanted = {n for _, missing in per_lib for n in missing}
    homes = [d for d in cuda.library_dirs if wanted & set(d.libraries)]
    machine_uncovered = tuple(dict.fromkeys(d.path for d in homes if d.covered_by is None))
    machine_stale = tuple(dict.fromkeys(d.path for d in homes if d.covered_by == "ld.so.conf"))
    explained: set[Path] = set()
    for lib, missing in per_lib:
        evidence = [
            f"{lib.path} needs {', '.join(missing)}; the loader finds "
            f"{'it' if len(missing) == 1 else 'them'} nowhere (RUNPATH: "
            f"{', '.join(lib.runpath) or 'none'}; LD_LIBRARY_PATH: "
            f"{':'.join(cuda.ld_library_path) or 'unset'}; cache: {cuda.ld_so_cache})"
        ]
        stale: list[Path] = []
        uncovered: list[Path] = []
        nowhere: list[str] = []
        for soname in missing:
            found = _homes(cuda, soname)
            evidence += [f"{soname} is in {d.path}, {_where(d, cuda)}" for d in found]
            for d in found:
                bucket = stale if d.covered_by else uncovered
                if d.path not in bucket:
                    bucket.append(d.path)
            if not found:
                nowhere.append(soname)
        explained.update(stale + uncovered)
        subject = Unfound(
            cuda, tuple(uncovered), tuple(stale), tuple(nowhere), machine_uncovered, machine_stale
        )
        yield Hit(Severity.ERROR, tuple(evidence), detail=", ".join(missing), subject=subject)
    for d in cuda.library_dirs:
        if d.path in explained:
            continue
        if d.covered_by is None or d.not_in_cache:
            # Not needed by any Caffe library: worth knowing, not a problem to fix.
            subject = Unfound(cuda, stale=(d.path,)) if d.not_in_cache else Unfound(cuda, (d.path,))
            yield Hit(
                Severity.INFO,
                (f"{d.path} holds {', '.join(d.libraries)}, {_where(d, cuda)}",),
                detail=str(d.path),
                subject=subject,
            )
