"""Which interpreter the last `caffedoc build` pinned: the default of `caffedoc smoke`.

One small JSON file under caffedoc's cache root. `caffedoc build` writes it after
pinning (`remember_build`); `caffedoc smoke` without --python reads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from caffedoc.build.paths import cache_root

LAST_BUILD = "last-build.json"


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
