"""protobuf, the three places Caffe meets it: the C++ library libcaffe loads
(and the headers and protoc a rebuild would use), the generated code
(caffe.pb.h, caffe_pb2.py) and the Python runtime of each interpreter that
matters. Which protoc generated a file is read from the file itself.
"""

from __future__ import annotations

import concurrent.futures
import fnmatch
import os
import re
from dataclasses import dataclass, field

from caffedoc import host
from caffedoc.probes import Context, Session, probe
from caffedoc.probes.caffe import CaffeFacts
from caffedoc.probes.interpreters import Interpreter
from caffedoc.probes.loader import read_cache
from caffedoc.probes.python import PythonFacts

HEADER_FILES = (
    ("google/protobuf/port_def.inc", re.compile(r"^#define PROTOBUF_VERSION (\d+)", re.M)),
    ("google/protobuf/stubs/common.h", re.compile(r"^#define GOOGLE_PROTOBUF_VERSION (\d+)", re.M)),
)
PB_H_PROTOC = re.compile(r"^#if (\d+) < (?:GOOGLE_)?PROTOBUF_MIN_PROTOC_VERSION", re.M)
PB_H_LIBRARY = re.compile(r"^#if (?:GOOGLE_)?PROTOBUF_VERSION < (\d+)", re.M)
PY_HEADER = re.compile(r"^# Protobuf Python Version: (\S+)", re.M)
DPKG_PATTERNS = ("libprotobuf*", "libprotoc*", "protobuf-compiler", "python3-protobuf")


def numeric_version(n: str) -> str:
    """3021012 → 3.21.12 (protobuf's own encoding of versions in headers)."""
    v = int(n)
    return f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"


@dataclass(frozen=True)
class Gencode:
    """A generated caffe_pb2.py and what can load it."""

    path: str
    style: str  # descriptors, serialized, builder, versioned
    generated_by: str  # the protoc that wrote it, as precisely as the file tells
    python_version: str | None  # its "# Protobuf Python Version:" header
    needs: str  # a pip requirement for runtimes that load it, e.g. ">=3.20.3,<8"


@dataclass(frozen=True)
class Runtime:
    """The protobuf Python runtime one interpreter imports, and any it shadows."""

    interpreter: str
    version: str | None
    location: str | None
    installer: str | None
    shadowed: tuple[str, ...] = ()  # "version at path" of later copies on sys.path


@dataclass(frozen=True)
class ProtobufFacts:
    python: str
    runtimes: tuple[Runtime, ...]  # the target first
    implementation: str | None  # the target's: upb, cpp, python
    implementation_env: str | None  # PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION
    protoc: tuple[tuple[str, str | None], ...]  # (path, version) in PATH order
    linker_cache: tuple[tuple[str, str], ...]  # (soname, path) of libprotobuf entries
    dpkg: dict[str, str]  # installed package → version
    headers: tuple[str, str] | None  # (include dir, version) a rebuild compiles against
    caffe_links: tuple[str, str, str | None] | None  # (soname, path, version) Caffe loads
    caffe_links_from: str | None  # the Caffe binary examined (that loads it, when one does)
    pb_h: tuple[str, str | None] | None  # (caffe.pb.h, protoc version that wrote it)
    gencode: Gencode | None  # the caffe_pb2.py `import caffe` loads
    load: dict[str, object] | None = field(default=None)  # the target's attempt at it

    @property
    def target_runtime(self) -> Runtime | None:
        return self.runtimes[0] if self.runtimes else None


def gencode(path: str) -> Gencode | None:
    """Classify a caffe_pb2.py by the generator's idioms."""
    text = host.read_text(path, limit=1 << 22)
    if text is None:
        return None
    header = PY_HEADER.search(text)
    if header:
        v = header.group(1)
        major = int(v.split(".")[0])
        return Gencode(path, "versioned", f"protoc for Python {v}", v, f">={v},<{major + 1}")
    if "internal import builder" in text:
        gen = "protoc 3.20 to 25"
        if "_globals = globals()" not in text:
            gen = "protoc 3.20 or 3.21"
        return Gencode(path, "builder", gen, None, ">=3.20.3,<8")
    if "_descriptor.FieldDescriptor(" in text:
        if "_internal_create_key" in text:
            return Gencode(path, "descriptors", "protoc 3.12 to 3.18", None, ">=3.12,<=3.20.3")
        return Gencode(path, "descriptors", "protoc older than 3.12", None, ">=3.0,<=3.20.3")
    if "AddSerializedFile" in text:
        return Gencode(path, "serialized", "protoc 3.19", None, ">=3.19,<8")
    return Gencode(path, "unknown", "an unrecognised protoc", None, "")


def _protoc(ctx: Context) -> tuple[tuple[str, str | None], ...]:
    found: dict[str, str] = {}
    for p in host.which_all("protoc", ctx.env.get("PATH", "")):
        found.setdefault(os.path.realpath(p), str(p))

    def version(p) -> tuple[str, str | None]:
        res = host.run([p, "--version"], timeout=ctx.limit(), env=ctx.env)
        m = re.search(r"libprotoc\s+(\S+)", res.stdout)
        return str(p), m.group(1) if m else None

    return tuple(map(version, found.values()))


def _linker_cache(session: Session) -> tuple[tuple[str, str], ...]:
    cache, _error = read_cache(session)
    return tuple(
        (soname, path)
        for soname, entries in cache.items()
        if soname.startswith("libprotobuf.so")
        for _flags, path in entries
    )


def _dpkg(ctx: Context) -> dict[str, str]:
    """Installed packages matching DPKG_PATTERNS → version, read from dpkg's own database
    (what `dpkg-query -W` prints, without a process that could hang)."""
    text = host.read_text(ctx.dpkg_status, limit=1 << 28) or ""
    out = {}
    for stanza in text.split("\n\n"):
        name = stanza.split("\n", 1)[0].removeprefix("Package: ")
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in DPKG_PATTERNS):
            continue
        fields = dict(ln.split(": ", 1) for ln in stanza.splitlines() if ": " in ln[:40])
        status = fields.get("Status", "").split()  # want, error flag, state
        if status[:1] == ["install"] and status[-1:] == ["installed"] and "Version" in fields:
            out[name] = fields["Version"]
    return out


def _headers(include_dirs: list[str]) -> tuple[str, str] | None:
    for d in include_dirs:
        for rel, pattern in HEADER_FILES:
            m = pattern.search(host.read_text(os.path.join(d, rel)) or "")
            if m:
                return d, numeric_version(m.group(1))
    return None


def _pb_h(path: str | None) -> tuple[str, str | None] | None:
    if path is None:
        return None
    text = host.read_text(path, limit=8192) or ""
    m = PB_H_PROTOC.search(text)
    if m:
        return path, numeric_version(m.group(1))
    m = PB_H_LIBRARY.search(text)  # older protoc: only the library it requires
    return path, numeric_version(m.group(1)) if m else None


def _runtime(interp: Interpreter) -> Runtime:
    copies = interp.protobuf
    win = copies[0] if copies else None
    return Runtime(
        interpreter=interp.path,
        version=win.version if win else None,
        location=win.path if win else None,
        installer=win.installer if win else None,
        shadowed=tuple(f"{c.version} at {c.path}" for c in copies[1:]),
    )


def _summarize(f: ProtobufFacts) -> list[str]:
    lines = []
    rt = f.target_runtime
    if rt and rt.version:
        how = ", ".join(x for x in (f.implementation, rt.installer and f"by {rt.installer}") if x)
        lines.append(f"Python runtime {rt.version}{f', {how}' if how else ''} ({rt.location})")
        lines += [f"shadowed on sys.path: protobuf {s}" for s in rt.shadowed]
    else:
        lines.append(f"no protobuf Python runtime in {f.python}")
    if f.gencode:
        lines.append(f"caffe_pb2.py: {f.gencode.style} code from {f.gencode.generated_by}")
    protoc = ", ".join(f"{v or '?'} ({p})" for p, v in f.protoc) or "none"
    lines.append(f"protoc on PATH: {protoc}")
    if f.caffe_links:
        _, path, version = f.caffe_links
        lines.append(f"Caffe loads {path}" + (f" ({version})" if version else ""))
    elif f.caffe_links_from:
        lines.append(f"{f.caffe_links_from} loads no shared libprotobuf (linked statically)")
    if f.headers:
        lines.append(f"headers: {f.headers[1]} in {f.headers[0]}")
    by_version: dict[str, list[str]] = {}
    for package, version in sorted(f.dpkg.items()):
        by_version.setdefault(version, []).append(package)
    lines += [f"dpkg {v}: {', '.join(names)}" for v, names in by_version.items()]
    return lines


def _loaded_by_caffe(
    facts: CaffeFacts, dpkg: dict[str, str]
) -> tuple[tuple[str, str, str | None] | None, str | None]:
    candidates = []
    if facts.winner and facts.winner.extension:
        candidates.append(facts.winner.extension.linkage)
    if facts.tree and facts.tree.libcaffe:
        candidates.append(facts.tree.libcaffe)
    for link in candidates:
        # A wheel carries its own copy, renamed by auditwheel (libprotobuf-1a2b3c4d.so.32):
        # that copy is not the machine's package, so no dpkg version is claimed for it.
        hit = link.find("libprotobuf.so") or link.find("libprotobuf-")
        if hit:
            soname, path = hit
            m = re.match(r"libprotobuf\.so\.(\d+)", soname)
            version = dpkg.get(f"libprotobuf{m.group(1)}") if m else None
            return (soname, path, version), link.path
    usable = [x for x in candidates if not x.error and not x.missing]
    return None, usable[0].path if usable else None


@dataclass(frozen=True)
class Installed:
    """protobuf as the machine has it, whatever the interpreter: read while the import
    children run, so the area waits on them alone."""

    protoc: tuple[tuple[str, str | None], ...]
    linker_cache: tuple[tuple[str, str], ...]
    dpkg: dict[str, str]


@probe("protobuf-installed", area=False, subject="the installed protobuf")
def installed(session: Session) -> Installed:
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        protoc = pool.submit(_protoc, session.ctx)
        cache = pool.submit(_linker_cache, session)
        dpkg = pool.submit(_dpkg, session.ctx)
        return Installed(protoc.result(), cache.result(), dpkg.result())


@probe("protobuf", ("python", "caffe", "protobuf-installed"), _summarize)
def gather(
    session: Session, py: PythonFacts, caffe_facts: CaffeFacts, machine: Installed
) -> ProtobufFacts:
    ctx = session.ctx
    target = py.target
    others = [i for p, i in py.interpreters.items() if p != str(ctx.python) and i.ok]
    tree = caffe_facts.tree
    include_dirs = [
        tree.cmake[k]
        for k in ("Protobuf_INCLUDE_DIR", "PROTOBUF_INCLUDE_DIR")
        if tree and k in tree.cmake
    ]
    headers = _headers([*include_dirs, "/usr/local/include", "/usr/include"])
    winner = target.winner("caffe")
    pb2_path = winner.pb2 if winner else None
    if pb2_path is None and tree:
        pb2_path = next(
            (
                os.path.join(p, "proto", "caffe_pb2.py")
                for p in tree.packages
                if os.path.isfile(os.path.join(p, "proto", "caffe_pb2.py"))
            ),
            None,
        )
    imp = caffe_facts.import_attempt
    load = None
    if imp.pb2:
        load = {"ok": True, "path": imp.pb2}
    elif imp.pb2_load:
        load = imp.pb2_load
    links, links_from = _loaded_by_caffe(caffe_facts, machine.dpkg)
    return ProtobufFacts(
        python=str(ctx.python),
        runtimes=tuple(_runtime(i) for i in [target, *others] if i.ok),
        implementation=(imp.protobuf or {}).get("implementation"),
        implementation_env=ctx.env.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"),
        protoc=machine.protoc,
        linker_cache=machine.linker_cache,
        dpkg=machine.dpkg,
        headers=headers,
        caffe_links=links,
        caffe_links_from=links_from,
        pb_h=_pb_h(tree.pb_h if tree else None),
        gencode=gencode(pb2_path) if pb2_path else None,
        load=load,
    )
