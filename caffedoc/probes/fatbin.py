"""The GPU targets compiled into a library: its fatbinary, read without cuobjdump.

nvcc puts each compilation unit's device code in a fatbinary container, and the
linker gathers the containers of a shared library in its `.nv_fatbin` section
(`__nv_relfatbin` in relocatable device code). A container is a 16-byte header
(u32 magic 0xBA55ED50, u16 version, u16 header size, u64 size of what follows)
then entries, each a header (u16 kind: 1 PTX, 2 ELF cubin; u16 version; u32 header
size; u64 payload size; u32 compressed size; u32; u16 minor, u16 major version of
the payload format; u32 arch; u32 name offset, u32 name length; u64 flags) and its
payload. Flags 0x8000 mark a compressed payload, 0x100000 an arch-specific target
(sm_90a), 0x200000 a family-specific one (sm_100f). The layout is the community's
reading of NVIDIA's format, checked against nvcc 13's output and NVIDIA's cuobjdump
in tests/test_cuda_build_facts.py. Only headers are read: compressed payloads need
no decompression, and a library is mapped, not read whole.

The ELF section table is parsed here (a few struct reads) rather than through
`readelf`, and when it names no fatbin section (stripped section headers, another
compiler's layout) the whole file is scanned for container headers instead.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass

MAGIC = 0xBA55ED50
MAGIC_BYTES = struct.pack("<I", MAGIC)
SECTIONS = (".nv_fatbin", "__nv_relfatbin")
KINDS = {1: "compute", 2: "sm"}  # PTX is named by its virtual architecture
COMPRESSED = 0x8000
ARCH_SPECIFIC = 0x100000  # sm_90a
FAMILY_SPECIFIC = 0x200000  # sm_100f

_CONTAINER = struct.Struct("<IHHQ")
_ENTRY = struct.Struct("<HHIQIIHHIIIQ")  # up to and including the flags


class NotElf(ValueError):
    """The file is no ELF object (or its headers are cut short)."""


@dataclass(frozen=True)
class Entry:
    kind: str  # "sm" (a cubin) or "compute" (PTX)
    arch: int  # 75, 120
    suffix: str  # "", "a" or "f"
    compressed: bool
    payload: int  # bytes in the file

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.arch}{self.suffix}"


def _sections(mm: mmap.mmap | bytes) -> dict[str, tuple[int, int]]:
    """Section name → (file offset, size), from the ELF section header table."""
    if len(mm) < 64 or mm[:4] != b"\x7fELF":
        raise NotElf("not an ELF file")
    wide = mm[4] == 2
    end = "<" if mm[5] == 1 else ">"
    if wide:
        (shoff,) = struct.unpack_from(end + "Q", mm, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", mm, 0x3A)
        fmt = struct.Struct(end + "IIQQQQIIQQ")  # name type flags addr offset size …
    else:
        (shoff,) = struct.unpack_from(end + "I", mm, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", mm, 0x2E)
        fmt = struct.Struct(end + "IIIIIIIIII")
    if shoff == 0 or shnum == 0:
        return {}
    if shentsize < fmt.size or shoff + shnum * shentsize > len(mm) or shstrndx >= shnum:
        raise NotElf("its section header table lies outside the file")
    headers = [fmt.unpack_from(mm, shoff + i * shentsize) for i in range(shnum)]
    names_at, names_size = headers[shstrndx][4], headers[shstrndx][5]
    names = bytes(mm[names_at : names_at + names_size])
    out = {}
    for h in headers:
        name_off, sh_type, offset, size = h[0], h[1], h[4], h[5]
        if sh_type == 8:  # SHT_NOBITS: nothing in the file
            continue
        name = names[name_off : names.find(b"\0", name_off)].decode("ascii", "replace")
        out.setdefault(name, (offset, size))
    return out


def _container(
    data: mmap.mmap | bytes, at: int, end: int, strict: bool
) -> tuple[list[Entry], int] | None:
    """The entries of the container at `at`, and where it ends; None if there is none.
    `strict` (scanning a whole file, where the magic may be chance): only the version
    and header size seen so far, and at least one entry, count."""
    if at + _CONTAINER.size > end:
        return None
    magic, version, header, size = _CONTAINER.unpack_from(data, at)
    if magic != MAGIC or header < _CONTAINER.size or at + header + size > end:
        return None
    if strict and (version, header) != (1, _CONTAINER.size):
        return None
    entries = []
    pos, stop = at + header, at + header + size
    while pos + _ENTRY.size <= stop:
        kind, _v, head, payload, _csize, _u, _minor, _major, arch, _no, _nl, flags = (
            _ENTRY.unpack_from(data, pos)
        )
        if head < _ENTRY.size or pos + head + payload > stop:
            break  # not an entry after all: keep what was read
        if kind in KINDS:
            suffix = "a" if flags & ARCH_SPECIFIC else "f" if flags & FAMILY_SPECIFIC else ""
            entries.append(Entry(KINDS[kind], arch, suffix, bool(flags & COMPRESSED), payload))
        pos += head + payload
    if strict and not entries:
        return None
    return entries, stop


def _walk(data: mmap.mmap | bytes, start: int, end: int, strict: bool = False) -> list[Entry]:
    """Every container from `start` on, as nvcc and the linker lay them end to end
    (8-byte aligned, padding between them skipped)."""
    out: list[Entry] = []
    pos = start
    while pos < end:
        found = data.find(MAGIC_BYTES, pos, end)
        if found < 0:
            break
        got = _container(data, found, end, strict)
        if got is None:
            pos = found + 4
            continue
        entries, pos = got
        out += entries
    return out


def entries(path: str | os.PathLike[str]) -> list[Entry]:
    """The fatbin entries of an ELF file, in file order. Raises NotElf, OSError."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 64:
            raise NotElf("not an ELF file")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            try:
                sections = _sections(mm)
            except struct.error as exc:
                raise NotElf(f"its ELF headers are cut short ({exc})") from None
            named = [sections[s] for s in SECTIONS if s in sections]
            if not named:  # no section says where: look everywhere
                return _walk(mm, 0, size, strict=True)
            out: list[Entry] = []
            for offset, length in named:
                out += _walk(mm, offset, min(offset + length, size))
            return out


def _order(name: str) -> tuple[int, int, str]:
    kind, _, rest = name.partition("_")
    digits = "".join(c for c in rest if c.isdigit())
    return (0 if kind == "sm" else 1, int(digits or 0), rest)


def targets(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The distinct targets, cubins (sm_XX) then PTX (compute_XX), each by number:
    ("sm_75", "sm_80", "compute_120"). Raises NotElf, OSError."""
    return tuple(sorted({e.name for e in entries(path)}, key=_order))
