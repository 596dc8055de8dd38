"""The Caffe source: fetched offline-friendly, and verified before anything is built from it.

Upstream's git host is often unreachable, so a recipe names a hash-pinned tarball and,
on Debian, the source package that carries it. `apt-get source` runs with a private
configuration (its own sources.list, lists and cache under caffedoc's cache), so the
machine's apt state is never touched. A tree given with `--source DIR` is checked file
by file against the manifest stored beside the recipe.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from caffedoc import host
from caffedoc.build import paths
from caffedoc.errors import CaffedocError
from caffedoc.recipes import Source

APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


@dataclass(frozen=True)
class Origin:
    """Where this build's source comes from."""

    kind: str  # "tarball" (a file, cached or given) | "tree" (--source DIR) | "apt" (to fetch)
    path: Path  # the tarball or tree; for "apt", where the tarball will be cached
    detail: str  # for the plan

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "path": str(self.path), "detail": self.detail}


def origin(source: Source, given: Path | None) -> Origin:
    """Decide where the source comes from, without fetching anything. A source the user
    names is verified here, before any plan or cache hit rests on it (and again when used)."""
    if given is not None:
        if given.is_dir():
            verify_tree(given, source)
            return Origin("tree", given.resolve(), f"the tree {given} (matches the manifest)")
        if given.is_file():
            verify_tarball(given, source)
            return Origin("tarball", given.resolve(), f"the tarball {given} (sha256 verified)")
        raise CaffedocError(f"--source {given}: no such file or directory")
    cached = paths.sources_dir() / source.tarball
    if cached.is_file():
        return Origin("tarball", cached, f"the cached tarball {cached}")
    if source.apt_suite and source.apt_package:
        return Origin(
            "apt",
            cached,
            f"Debian's {source.apt_suite} source package {source.apt_package!r} "
            f"(apt-get source, private apt configuration), cached at {cached}",
        )
    raise CaffedocError(
        f"no way to fetch {source.tarball} here: pass --source with the tarball "
        f"(sha256 {source.sha256}) or a checkout of {source.repository} at {source.commit}"
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_tarball(path: Path, source: Source) -> None:
    actual = sha256_file(path)
    if actual != source.sha256:
        raise CaffedocError(
            f"{path}: sha256 {actual} is not the recipe's {source.sha256}; "
            "refusing a different or tampered source"
        )


def read_manifest(path: Path) -> dict[str, str]:
    """sha256sum-format lines: '<hash>  <relative path>'."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, rel = line.split(None, 1)
            out[rel.strip()] = digest
    return out


def verify_tree(tree: Path, source: Source) -> None:
    """Refuse a tree whose files differ from the pristine source (missing, changed or added)."""
    want = read_manifest(source.manifest)
    have = {
        str(p.relative_to(tree)): p
        for p in tree.rglob("*")
        if (p.is_file() or p.is_symlink()) and ".git" not in p.relative_to(tree).parts
    }
    changed = sorted(rel for rel, d in want.items() if rel in have and sha256_file(have[rel]) != d)
    missing = sorted(rel for rel in want if rel not in have)
    added = sorted(rel for rel in have if rel not in want)
    problems = []
    for label, items in (("changed", changed), ("missing", missing), ("not in the source", added)):
        if items:
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            problems.append(f"{label}: {', '.join(items[:3])}{more}")
    if problems:
        raise CaffedocError(
            f"--source {tree} is not {source.repository} at {source.commit} "
            f"({'; '.join(problems)}); refusing a different or tampered tree"
        )


def debian_mirror(files: tuple[Path, ...] = APT_SOURCES) -> str:
    """The URI of the machine's own Debian archive (not security), from its apt config."""
    for path in files:
        text = host.read_text(path) or ""
        if path.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields = _deb822(stanza)
                suites = fields.get("Suites", "").split()
                if "deb" in fields.get("Types", "").split() and any(
                    not s.endswith("-security") for s in suites
                ):
                    uris = fields.get("URIs", "").split()
                    if uris:
                        return uris[0]
        else:
            for line in text.splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "deb" and not parts[2].endswith("-security"):
                    return next(p for p in parts[1:] if not p.startswith("["))
    raise CaffedocError(
        "no Debian archive found in the apt configuration; pass --source with the Caffe tarball"
    )


def _deb822(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in stanza.splitlines():
        if line.startswith("#") or ":" not in line or line[:1].isspace():
            continue
        key, value = line.split(":", 1)
        fields[key.strip()] = value.strip()
    return fields


def apt_source(package: str, suite: str, want: str, dest: Path, log: Path) -> Path:
    """Download `want` (a file of `package`'s source in `suite`) into `dest`, privately."""
    root = paths.cache_root() / "apt" / suite
    lists, cache, dl = root / "lists", root / "cache", root / "download"
    for d in (lists / "partial", cache / "archives" / "partial", dl):
        d.mkdir(parents=True, exist_ok=True)
    sources = root / "sources.list"
    sources.write_text(f"deb-src {debian_mirror()} {suite} main\n")
    opts = [
        f"-oDir::Etc::SourceList={sources}",
        "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={lists}",
        f"-oDir::Cache={cache}",
        "-oAPT::Sandbox::User=root" if os.geteuid() == 0 else "-oDebug::NoLocking=1",
    ]
    for argv, cwd in (
        (["apt-get", *opts, "update"], None),
        (["apt-get", *opts, "source", "--download-only", package], dl),
    ):
        res = host.run(argv, timeout=900, cwd=cwd)
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"$ {' '.join(argv)}\n{res.stdout}{res.stderr}\n")
        if not res.ok:
            raise CaffedocError(
                f"fetching the {package} source failed: {res.describe()} (log: {log})"
            )
    got = dl / want
    if not got.is_file():
        raise CaffedocError(f"apt-get source {package} ({suite}) did not bring {want} (log: {log})")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".part-{os.getpid()}")
    shutil.copyfile(got, tmp)
    os.replace(tmp, dest)
    return dest


def extract(tarball: Path, dest: Path) -> None:
    """Unpack into `dest` (which must not exist); a single top folder is stripped."""
    with tarfile.open(tarball) as tar:
        members = tar.getmembers()
        tops = {m.name.split("/", 1)[0] for m in members}
        strip = len(tops) == 1 and any("/" in m.name for m in members)
        for m in members:
            if strip:
                m.name = m.name.split("/", 1)[1] if "/" in m.name else "."
            if m.name.startswith("/") or ".." in Path(m.name).parts:
                raise CaffedocError(f"{tarball}: unsafe member {m.name!r}")
        kept = [m for m in members if m.name != "."]
        dest.mkdir(parents=True)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=kept, filter="data")
        else:  # Python < 3.12 without the filter backport: members were checked above
            tar.extractall(dest, members=kept)
