"""What to do about one instance of a known problem: the words `check` prints and the
steps `fix` applies, made by the same function from the same hit, so they cannot drift.

A rule's `remedy(hit, ctx)` is called twice over a hit's life: by the check with no
`FixContext` (words only: planning may read files or try commands, which a read-only
check must not pay for), and by `fix` with one (words and the steps that apply them).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from caffedoc.probes import Context

if TYPE_CHECKING:
    from caffedoc.fix.steps import Step


@dataclass(frozen=True)
class FixContext:
    """What a remedy may use besides the hit: where the check looked, and a stamp."""

    check: Context
    env: Mapping[str, str]
    stamp: str = field(default_factory=lambda: datetime.datetime.now().strftime("%Y%m%dT%H%M%S"))


@dataclass(frozen=True)
class Remedy:
    """`words`: the fix as a person reads it (None: the knowledge entry's fix text);
    `steps`: what `caffedoc fix` applies, journaled; `why_manual`: why there are none."""

    words: str | None
    steps: tuple[Step, ...] = ()
    why_manual: str | None = None
