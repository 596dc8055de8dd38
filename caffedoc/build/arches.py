"""Which GPU architectures a CUDA build compiles for, and why; or why it cannot.

The list comes from what the toolkit can target (`nvcc --list-gpu-code`): a GPU's own
compute capability when GPUs are present (one target compiles fastest and runs best),
otherwise the recipe's list. PTX for the newest target is added so that GPUs newer
than the toolkit still run, compiled at load time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from caffedoc.errors import CaffedocError

# Architecture families, by compute capability, for messages a person can act on.
FAMILIES = (
    (30, "Kepler"), (50, "Maxwell"), (60, "Pascal"), (70, "Volta"), (75, "Turing"),
    (80, "Ampere"), (89, "Ada Lovelace"), (90, "Hopper"), (100, "Blackwell"),
)  # fmt: skip


@dataclass(frozen=True)
class Choice:
    real: tuple[str, ...]  # cubins: "75", "86"
    ptx: str | None  # PTX for this virtual architecture, for newer GPUs
    why: str

    def cmake_args(self) -> tuple[str, ...]:
        return (
            "-DCUDA_ARCH_NAME=Manual",
            f"-DCUDA_ARCH_BIN={' '.join(self.real)}",
            f"-DCUDA_ARCH_PTX={self.ptx or ''}",
        )

    def names(self) -> list[str]:
        """As the built library will list them: sm_75, …, compute_120."""
        return [f"sm_{a}" for a in self.real] + ([f"compute_{self.ptx}"] if self.ptx else [])


def family(arch: str) -> str:
    n = int(arch)
    return next((name for low, name in reversed(FAMILIES) if n >= low), "pre-Kepler")


def parse(text: str) -> tuple[str, ...]:
    """`--cuda-arch 7.5,86 sm_120` → ("75", "86", "120"); a malformed item is refused."""
    out: list[str] = []
    for item in re.split(r"[,\s]+", text.strip()):
        m = re.fullmatch(r"(?:sm_|compute_)?(\d+)(?:\.(\d))?", item)
        if not item or m is None:
            raise CaffedocError(
                f"--cuda-arch {text!r}: {item!r} is not a compute capability (e.g. 7.5, 86, sm_120)"
            )
        arch = m.group(1) + (m.group(2) or "")
        if arch not in out:
            out.append(arch)
    return tuple(out)


def choose(
    recipe_arches: Iterable[str],
    supported: Iterable[str] | None,
    gpus: Iterable[str] = (),
    asked: Iterable[str] = (),
    *,
    toolkit: str = "this CUDA",
    elsewhere: dict[str, str] | None = None,
) -> Choice:
    """The targets for a build, or a one-line refusal naming what cannot be targeted.

    `supported` is None when the toolkit's nvcc is not on this machine yet (it comes
    from wheels): the choice is then checked again once it is.
    """
    asked, gpus = tuple(asked), tuple(sorted(set(gpus), key=int))
    if asked:
        wanted, why = asked, "--cuda-arch was asked"
    elif gpus:
        wanted, why = gpus, "the GPUs here are " + ", ".join(f"sm_{g}" for g in gpus)
    else:
        wanted, why = tuple(recipe_arches), "no GPU here, so the recipe's list"
    if supported is not None:
        supported = tuple(supported)
        if not asked and not gpus:
            wanted = tuple(a for a in wanted if a in supported)
            why += f" that {toolkit} can target"
        refused = [a for a in wanted if a not in supported]
        if refused:
            raise CaffedocError(refusal(refused, supported, toolkit, elsewhere or {}))
    if not wanted:
        raise CaffedocError(f"{toolkit} can target none of the recipe's architectures")
    ordered = tuple(sorted(wanted, key=int))
    return Choice(ordered, ordered[-1], why)


def refusal(refused: list[str], supported: tuple[str, ...], toolkit: str,
            elsewhere: dict[str, str]) -> str:  # fmt: skip
    """One line: what cannot be built, what the toolkit targets, what to use instead."""
    span = (
        f"sm_{min(supported, key=int)} to sm_{max(supported, key=int)}" if supported else "nothing"
    )
    names = ", ".join(f"sm_{a} ({family(a)})" for a in refused)
    low = [a for a in refused if supported and int(a) < int(min(supported, key=int))]
    why = (
        f"{toolkit} dropped {', '.join(sorted({family(a) for a in low}))}"
        if low
        else f"{toolkit} does not know it yet"
    )
    alt = sorted({elsewhere[a] for a in refused if a in elsewhere})
    instead = f"; use recipe {' or '.join(alt)}" if alt else ""
    return f"cannot build for {names}: {toolkit} targets {span} ({why}){instead}"
