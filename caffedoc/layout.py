"""What `caffedoc build` leaves on a machine, written and read by this one module.

Build writes these and check, fix and smoke read them; keeping both sides here is
what lets neither package import the other:

- the install layout: a prefix holding `lib/` (libcaffe and the CUDA libraries it
  bundles), `python/` (pycaffe) and the build record;
- the build record, `<prefix>/.caffedoc-build.json`: the cache key, the recipe and,
  for a CUDA build, the CUDA, cuDNN and GPU targets it was compiled for;
- the `.pth` pin, one per interpreter, by build and fix alike;
- the last-build pointer under caffedoc's cache root: `caffedoc smoke`'s default.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from caffedoc import safefs
from caffedoc.errors import CaffedocError

RECORD = ".caffedoc-build.json"
PTH_NAME = "caffedoc-caffe.pth"
LAST_BUILD = "last-build.json"
CUDA_FIELDS = ("cuda", "cudnn", "architectures")


def cache_root() -> Path:
    """$CAFFEDOC_CACHE_DIR, else ~/.cache/caffedoc (honouring XDG_CACHE_HOME)."""
    explicit = os.environ.get("CAFFEDOC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "caffedoc"


def python_dir(prefix: Path) -> Path:
    """Where pycaffe lives in an install prefix: what the pin puts on sys.path."""
    return prefix / "python"


# ---------------------------------------------------------------- the build record


@dataclass(frozen=True)
class BuildRecord:
    """What a finished build says of itself. Every field may be absent from a record
    an older caffedoc (or a person) wrote: a reader gets None, never a crash."""

    key: str | None = None  # the plan's cache key: equal keys, equal builds
    recipe: str | None = None
    python: str | None = None  # "3.11"
    abi: str | None = None
    static_protobuf: bool | None = None
    source_sha256: str | None = None
    cuda: str | None = None  # "13.0"
    cudnn: str | None = None  # "9.13.1"
    architectures: tuple[str, ...] | None = None  # ("sm_75", "compute_75")
    built_at: str | None = None
    path: Path | None = None  # the file it was read from (not written)

    def write(self, prefix: Path) -> None:
        """Into `prefix`; a CPU build's record has no CUDA fields at all."""
        data = {
            k: v
            for k, v in asdict(self).items()
            if k != "path" and not (k in CUDA_FIELDS and v is None)
        }
        (prefix / RECORD).write_text(json.dumps(data, indent=2))

    @classmethod
    def read(cls, prefix: Path) -> BuildRecord | None:
        """The record in `prefix`, or None when there is none (or it is not a JSON object)."""
        path = prefix / RECORD
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None

        def text(name: str) -> str | None:
            value = data.get(name)
            return str(value) if value not in (None, "") else None

        archs = data.get("architectures")
        static = data.get("static_protobuf")
        return cls(
            key=text("key"),
            recipe=text("recipe"),
            python=text("python"),
            abi=text("abi"),
            static_protobuf=static if isinstance(static, bool) else None,
            source_sha256=text("source_sha256"),
            cuda=text("cuda"),
            cudnn=text("cudnn"),
            architectures=tuple(map(str, archs)) if isinstance(archs, list) else None,
            built_at=text("built_at"),
            path=Path(os.path.normpath(path)),
        )


def record_of(library: Path) -> BuildRecord | None:
    """The record of the install a library belongs to: <prefix>/lib/libcaffe.so or
    <prefix>/python/caffe/_caffe.so, the record in <prefix>; a wheel's caffe/_caffe.so
    or caffe/libcaffe.so, the record packed beside it in caffe/."""
    for prefix in (library.parent, library.parent.parent, library.parent.parent.parent):
        record = BuildRecord.read(prefix)
        if record is not None:
            return record
    return None


# ---------------------------------------------------------------- the pin


def pin_line(python_dir: Path | str) -> str:
    """The .pth content that puts `python_dir` first on sys.path (build and fix both pin so).

    A plain path line would land after site-packages and PYTHONPATH (a stale caffe
    there would win); an import line runs at start-up and inserts the path in front.
    """
    target = str(python_dir)
    return f"import sys; {target!r} in sys.path or sys.path.insert(0, {target!r})\n"


def pin(pth: Path, prefix: Path) -> str:
    """Put the prefix's python/ first on the interpreter's sys.path, via a .pth file,
    written as fix writes it (`safefs`: a fresh temporary, no link followed, the
    site directory's owner)."""
    target = str(python_dir(prefix))
    try:
        safefs.write_file(pth, [pin_line(target).encode()], 0o644)
    except OSError as exc:
        raise CaffedocError(
            f"cannot write {pth}: {exc.strerror}: build for an interpreter you can write to "
            "(a virtual environment), or run as its owner"
        ) from exc
    return target


# ---------------------------------------------------------------- the last build


def remember_build(python: Path, prefix: Path) -> None:
    """Record the interpreter just pinned to `prefix` (atomically: readers see old or new)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{LAST_BUILD}.{os.getpid()}"
    tmp.write_text(json.dumps({"python": str(python), "prefix": str(prefix)}, indent=2) + "\n")
    os.replace(tmp, root / LAST_BUILD)


def last_built_python() -> Path | None:
    """The interpreter of the last build, when it is recorded and still there."""
    try:
        python = Path(json.loads((cache_root() / LAST_BUILD).read_text())["python"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return python if python.exists() else None
