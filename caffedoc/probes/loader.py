"""Where the dynamic loader finds a library, reconstructed from the inputs ld.so uses.

Why not `ldd`: it runs the machine's own loader with the machine's own cache, so a
check pointed at another linker configuration (`Context.ld_so_conf`/`ld_so_cache`,
as tests and `caffedoc fix` previews do) would see two different worlds. Every
area resolves libraries here, the same way: RPATH (of the object and the objects
that loaded it, when it has no RUNPATH), LD_LIBRARY_PATH from the context's
environment, RUNPATH, the given cache as `ldconfig -p -C CACHE` prints it, then
the default directories. `$ORIGIN` is expanded per object. What each object needs
and where it searches comes from one `readelf` run per batch of files.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from caffedoc import host
from caffedoc.elf import Elf, NoReadelf, not_elf, readelf_dynamic
from caffedoc.probes import Session

SBIN = ("/usr/sbin", "/sbin")


@dataclass(frozen=True)
class Needed:
    soname: str
    path: Path | None  # where the loader finds it; None: it does not resolve
    how: str | None  # "RUNPATH", "ld.so.cache", "LD_LIBRARY_PATH", "loaded by the interpreter"…
    real_name: str | None  # the resolved file's real name: libcudnn.so.7.6.5

    @property
    def resolved(self) -> bool:
        return self.path is not None or self.how == "loaded by the interpreter"


@dataclass(frozen=True)
class Closure:
    """An object and everything it loads, as the loader would resolve them."""

    path: Path
    elf: Elf
    direct: tuple[Needed, ...]  # its own DT_NEEDED entries, resolved
    loaded: tuple[Needed, ...]  # every soname in the closure, breadth first, once each
    error: str | None = None  # the object itself could not be read as a shared object

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(n.soname for n in self.loaded if not n.resolved)


# ---------------------------------------------------------------- configuration


def multiarch() -> str:
    return getattr(sys.implementation, "_multiarch", "") or ""


def system_dirs() -> list[Path]:
    """The loader's default directories, searched after the cache."""
    arch = multiarch()
    dirs = [Path("/lib") / arch, Path("/usr/lib") / arch] if arch else []
    return [*dirs, Path("/lib64"), Path("/usr/lib64"), Path("/lib"), Path("/usr/lib")]


def conf_dirs(conf: Path, seen: set[str] | None = None) -> tuple[list[Path], list[str]]:
    """Directories an ld.so.conf lists, `include` lines followed (relative to the file)."""
    seen = set() if seen is None else seen
    dirs: list[Path] = []
    includes: list[str] = []
    real = os.path.realpath(conf)
    if real in seen:
        return dirs, includes
    seen.add(real)
    for raw in (host.read_text(conf) or "").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("hwcap "):
            continue
        if line.startswith("include "):
            for pattern in line.split()[1:]:
                pattern = str(conf.parent / pattern) if not os.path.isabs(pattern) else pattern
                includes.append(pattern)
                for inc in sorted(glob.glob(pattern)):
                    more, nested = conf_dirs(Path(inc), seen)
                    dirs += more
                    includes += nested
            continue
        dirs += [Path(d.split("=", 1)[0]) for d in re.split(r"[\s:,]+", line) if d]
    return dirs, includes


def ld_library_path(env: Mapping[str, str]) -> list[str]:
    return [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]


def _read_cache(session: Session) -> tuple[dict[str, list[tuple[str, str]]], str | None]:
    ctx = session.ctx
    found = host.which_all("ldconfig", ctx.env.get("PATH", "") + os.pathsep + os.pathsep.join(SBIN))
    if not found:
        return {}, "ldconfig not found"
    res = host.run([found[0], "-p", "-C", ctx.ld_so_cache], timeout=ctx.limit(), env=ctx.env)
    if not res.ok:
        return {}, f"{res.describe()}: {res.stderr.strip()[:200]}"
    cache: dict[str, list[tuple[str, str]]] = {}
    for line in res.stdout.splitlines():
        m = re.match(r"^\s+(\S+) \(([^)]*)\).* => (.+)$", line)
        if m:
            cache.setdefault(m.group(1), []).append((m.group(2), m.group(3).strip()))
    return cache, None


def read_cache(session: Session) -> tuple[dict[str, list[tuple[str, str]]], str | None]:
    """soname → [(flags, path)] of the context's cache, and why it could not be read;
    one `ldconfig -p` per check."""
    return session.once(("ld.so.cache",), lambda: _read_cache(session))


def cache_lookup(cache: Mapping[str, list[tuple[str, str]]], soname: str) -> str | None:
    entries = cache.get(soname, [])
    wide = [p for flags, p in entries if "64" in flags]
    return (wide or [p for _f, p in entries] or [None])[0]


# ---------------------------------------------------------------- ELF


class ReadelfHung(NoReadelf):
    """readelf ran out of time: what it did not say is unknown, not absent."""


class _Elves:
    """readelf results of one check, read in batches and kept. A readelf that hung once
    is not run again: a closure reads a batch per level, and each would hang as long."""

    def __init__(self, session: Session) -> None:
        self.ctx = session.ctx
        self.lock = threading.Lock()
        self.known: dict[str, Elf] = {}
        self.hung: str | None = None

    def read(self, paths: Iterable[Path]) -> dict[str, Elf]:
        wanted = list(dict.fromkeys(str(p) for p in paths))
        with self.lock:
            todo = [p for p in wanted if p not in self.known]
        if todo and self.hung:
            raise ReadelfHung(self.hung)
        if todo:
            limit, start = self.ctx.limit(), time.monotonic()
            found = readelf_dynamic([Path(p) for p in todo], limit, self.ctx.env)
            if time.monotonic() - start >= limit:  # killed at its limit: it said nothing
                self.hung = f"`readelf` did not finish within {limit:.0f} s"
                raise ReadelfHung(self.hung)
            with self.lock:
                for p in todo:
                    self.known[p] = found.get(p, Elf())
        with self.lock:
            return {p: self.known[p] for p in wanted}


def elves(session: Session) -> _Elves:
    return session.once(("elves",), lambda: _Elves(session))


def preloaded(session: Session) -> frozenset[str]:
    """Sonames the target interpreter itself loads: a module finds them already there."""

    def read() -> frozenset[str]:
        interpreter = Path(os.path.realpath(session.ctx.python))
        if not_elf(interpreter):
            return frozenset()
        return frozenset(elves(session).read([interpreter])[str(interpreter)].needed)

    return session.once(("preloaded",), read)


# ---------------------------------------------------------------- resolution


def expand(entry: str, origin: Path) -> Path:
    return Path(entry.replace("$ORIGIN", str(origin)).replace("${ORIGIN}", str(origin)))


def _needed(soname: str, path: Path, how: str) -> Needed:
    return Needed(soname, path, how, Path(os.path.realpath(path)).name)


def resolve(
    session: Session,
    soname: str,
    elf: Elf,
    origin: Path,
    inherited_rpath: tuple[Path, ...] = (),
) -> Needed:
    """Where ld.so would find `soname` for an object in `origin`, in ld.so's own order.

    `inherited_rpath`: the RPATH of the objects that loaded this one, which ld.so
    searches too when this object has no RUNPATH.
    """
    if "/" in soname:
        return Needed(soname, Path(soname) if os.path.exists(soname) else None, "path", None)
    if soname in preloaded(session):
        return Needed(soname, None, "loaded by the interpreter", None)
    searches: list[tuple[str, list[Path]]] = []
    if not elf.runpath:
        searches.append(("RPATH", [expand(p, origin) for p in elf.rpath] + list(inherited_rpath)))
    searches.append(("LD_LIBRARY_PATH", [Path(p) for p in ld_library_path(session.ctx.env)]))
    searches.append(("RUNPATH", [expand(p, origin) for p in elf.runpath]))
    for how, dirs in searches:
        for d in dirs:
            if (d / soname).exists():
                return _needed(soname, d / soname, how)
    cache, _error = read_cache(session)
    hit = cache_lookup(cache, soname)
    if hit and os.path.exists(hit):
        return _needed(soname, Path(hit), "ld.so.cache")
    for d in system_dirs():
        if (d / soname).exists():
            return _needed(soname, d / soname, "system directory")
    return Needed(soname, None, None, None)


def _closure(session: Session, path: Path) -> Closure:
    why = not_elf(path)
    if why:
        return Closure(path, Elf(), (), (), error=why)
    reader = elves(session)
    root = reader.read([path])[str(path)]
    # (object's ELF, its directory, RPATH it passes on to what it loads)
    level = [(root, path.parent, ())]
    direct: tuple[Needed, ...] = ()
    loaded: dict[str, Needed] = {}
    while level:
        found: list[tuple[Needed, tuple[Path, ...]]] = []
        for elf, origin, inherited in level:
            passes = (
                inherited
                if elf.runpath
                else (tuple(expand(p, origin) for p in elf.rpath) + inherited)
            )
            needs = [resolve(session, n, elf, origin, inherited) for n in elf.needed]
            if elf is root:
                direct = tuple(needs)
            for n in needs:
                if n.soname not in loaded:
                    loaded[n.soname] = n
                    if n.path is not None and not not_elf(n.path):
                        found.append((n, passes))
        read = reader.read([n.path for n, _ in found if n.path])
        level = [(read[str(n.path)], n.path.parent, passes) for n, passes in found if n.path]
    return Closure(path, root, direct, tuple(loaded.values()))


def closure(session: Session, path: str | os.PathLike[str]) -> Closure:
    """What `path` loads, resolved the way the loader would; once per path and check.

    Raises NoReadelf when binutils is missing."""
    p = Path(path)
    return session.once(("closure", str(p)), lambda: _closure(session, p))
