"""Where caffedoc keeps its caches: one root, overridable for tests and CI."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from caffedoc.layout import cache_root

__all__ = ["cache_root", "ccache_dir", "sources_dir", "staged"]


def sources_dir() -> Path:
    return cache_root() / "sources"


def ccache_dir() -> Path:
    """Shared by every build; $CAFFEDOC_CCACHE_DIR lets a private cache root reuse it."""
    explicit = os.environ.get("CAFFEDOC_CCACHE_DIR")
    return Path(explicit) if explicit else cache_root() / "ccache"


@contextlib.contextmanager
def staged(dest: Path) -> Iterator[Path]:
    """A fresh folder beside `dest` that replaces it when the block succeeds and is removed
    when it fails: a cache entry is the old one or the whole new one, never half of one."""
    stage = dest.with_name(f"{dest.name}.new-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        yield stage
        shutil.rmtree(dest, ignore_errors=True)
        stage.rename(dest)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
