"""Recipes: known-good (and known-bad) ways to build Caffe, kept as data.

One TOML file per combination lives in the project's `recipes/` folder, beside
the patches and source manifests it names. Loading validates every field, so a
malformed recipe is reported with its file and field instead of failing halfway
through a build. Which recipe fits a machine is `caffedoc.resolution`'s.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caffedoc import platform, toml
from caffedoc.errors import CaffedocError
from caffedoc.platform import PackageManager

# One scale for what a recipe's "good" rests on. verified: built and smoked by the
# project's own tests (`verified = { by = TEST, on = WHERE }` says which, on which OS and
# in which image or root); reported: known good from field reports, never built by
# caffedoc; unverified: should build, but no caffedoc machine could (the reason says why);
# blocked: resolves, but cannot be built yet; bad: refused.
STATUSES = ("verified", "reported", "unverified", "blocked", "bad")
# Those `caffedoc build` builds (blocked and bad are refused) and `caffedoc docker` images.
BUILDABLE = ("verified", "reported", "unverified")
KINDS = ("cpu", "cuda")
_HEX = re.compile(r"^[0-9a-f]+$")
_VERSION = re.compile(r"^\d+(\.\d+)*$")
_WHEEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[0-9][0-9A-Za-z.]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def recipes_dir() -> Path:
    """The recipes folder: the checkout's `recipes/`, or the copy packaged in the wheel."""
    here = Path(__file__).resolve().parent
    if (here.parent / "pyproject.toml").is_file() and (here.parent / "recipes").is_dir():
        return here.parent / "recipes"
    if (here / "data" / "recipes").is_dir():
        return here / "data" / "recipes"
    raise CaffedocError("the recipes folder is missing from this installation of caffedoc")


class RecipeError(CaffedocError):
    """A malformed recipe: names the file and the field."""


@dataclass(frozen=True)
class Source:
    repository: str
    commit: str
    tarball: str
    sha256: str
    size: int
    manifest: Path  # per-file sha256 list of the pristine tree
    apt_suite: str | None = None  # a Debian suite whose source package carries the tarball
    apt_package: str | None = None


@dataclass(frozen=True)
class Wheel:
    """One of NVIDIA's PyPI wheels a CUDA toolkit is assembled from, pinned by its hash."""

    requirement: str  # name==version
    sha256: str

    @property
    def name(self) -> str:
        return self.requirement.split("==")[0]

    @property
    def version(self) -> str:
        return self.requirement.split("==")[1]


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    summary: str
    status: str
    reason: str | None
    verified: tuple[str, str] | None  # (test that proves it, where: OS and image or root)
    alternative: str | None
    distros: tuple[tuple[str, str], ...]  # (id, version) pairs it fits
    machines: tuple[str, ...]
    compiler: str
    python: str  # major or major.minor the recipe builds for
    base_image: str  # a container image with the platform, for `caffedoc docker`
    kind: str  # cpu or cuda
    cuda: str | None
    cudnn: str | None
    architectures: tuple[str, ...]  # sm_XY numbers as "XY"
    protobuf: str
    static_protobuf: bool
    opencv: str
    boost: str
    blas: str
    apt: tuple[str, ...]
    source: Source
    patches: tuple[Path, ...]
    cmake: tuple[tuple[str, str], ...]
    toolkit_compiler: tuple[Wheel, ...] = ()  # nvcc, headers, cudart: when the machine lacks them
    toolkit_libraries: tuple[Wheel, ...] = ()  # cuBLAS, cuRAND, cuDNN
    package_manager: str = "apt"  # the [packages] key: the adapter that installs `apt`
    digest: str = field(default="", compare=False)  # sha256 of the file and its patches

    def manager(self) -> PackageManager:
        """The platform's package manager, which installs and queries this recipe's packages."""
        return platform.manager(self.package_manager)

    def packages_here(
        self, env: Mapping[str, str] | None = None
    ) -> tuple[dict[str, str], tuple[str, ...]] | None:
        """(installed versions, missing names) of this recipe's packages on this machine;
        None where its package manager's database is not here."""
        installed = self.manager().installed(self.apt, env)
        return None if installed is None else (installed, platform.missing(self.apt, installed))

    def platform(self) -> str:
        return " or ".join(pretty(d, v) for d, v in self.distros)

    def fits(self, distro: str, version: str) -> bool:
        return any(d == distro and version_match(v, version) for d, v in self.distros)

    def proof(self) -> str:
        """What the status rests on, in words: for listings and image headers."""
        if self.verified:
            return f"verified by {self.verified[0]} on {self.verified[1]}"
        return f"{self.status}: {self.reason}"

    def compute(self) -> str:
        if self.kind == "cpu":
            return "CPU only"
        return f"CUDA {self.cuda}" + (f" + cuDNN {self.cudnn}" if self.cudnn else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "status": self.status,
            "verified": dict(zip(("by", "on"), self.verified)) if self.verified else None,
            "reason": self.reason,
            "alternative": self.alternative,
            "platform": [f"{d} {v}" for d, v in self.distros],
            "machines": list(self.machines),
            "compiler": self.compiler,
            "python": self.python,
            "base_image": self.base_image,
            "compute": self.kind,
            "cuda": self.cuda,
            "cudnn": self.cudnn,
            "architectures": list(self.architectures),
            "protobuf": self.protobuf,
            "static_protobuf": self.static_protobuf,
            "opencv": self.opencv,
            "boost": self.boost,
            "blas": self.blas,
            "apt": list(self.apt),
            "source": {
                "repository": self.source.repository,
                "commit": self.source.commit,
                "tarball": self.source.tarball,
                "sha256": self.source.sha256,
            },
            "patches": [p.name for p in self.patches],
            "cmake": dict(self.cmake),
            "toolkit": {
                "compiler": [w.requirement for w in self.toolkit_compiler],
                "libraries": [w.requirement for w in self.toolkit_libraries],
            },
            "file": str(self.path),
        }


def _is_wheel(entry: object) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("wheel"), str)
        and bool(_WHEEL.match(entry["wheel"]))
        and isinstance(entry.get("sha256"), str)
        and bool(_SHA256.match(entry["sha256"]))
    )


def pretty(distro: str, version: str) -> str:
    names = {"debian": "Debian", "ubuntu": "Ubuntu"}
    return f"{names.get(distro, distro.capitalize())} {version}"


def version_match(want: str, have: str) -> bool:
    """A version "12" fits 12 and 12.4; "18.04" fits only 18.04."""
    return have == want or have.startswith(want + ".")


class _Reader:
    """Typed access to one TOML table that names the file and field on error."""

    def __init__(self, data: dict[str, Any], path: Path, prefix: str = "") -> None:
        self.data, self.path, self.prefix = data, path, prefix

    def fail(self, key: str, what: str) -> RecipeError:
        return RecipeError(f"recipe {self.path.name}: field '{self.prefix}{key}': {what}")

    def table(self, key: str) -> _Reader:
        value = self.data.get(key)
        if not isinstance(value, dict):
            raise self.fail(key, "missing table" if value is None else "expected a table")
        return _Reader(value, self.path, f"{self.prefix}{key}.")

    def text(self, key: str, *, default: str | None = None, pattern: re.Pattern[str] | None = None,
            choices: Sequence[str] = ()) -> str:  # fmt: skip
        value = self.data.get(key, default)
        if value is None:
            raise self.fail(key, "missing")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "expected a non-empty string")
        if pattern is not None and not pattern.match(value):
            raise self.fail(key, f"{value!r} does not match {pattern.pattern}")
        if choices and value not in choices:
            raise self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def opt_text(self, key: str, **kw: Any) -> str | None:
        return None if self.data.get(key) is None else self.text(key, **kw)

    def integer(self, key: str) -> int:
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise self.fail(key, "expected a positive integer")
        return value

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        if not isinstance(value, bool):
            raise self.fail(key, "expected true or false")
        return value

    def texts(self, key: str, *, allow_empty: bool = True) -> tuple[str, ...]:
        value = self.data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "expected a list of strings")
        if not value and not allow_empty:
            raise self.fail(key, "must not be empty")
        return tuple(value)

    def wheels(self, key: str) -> tuple[Wheel, ...]:
        value = self.data.get(key, [])
        entries = value if isinstance(value, list) else [None]
        if not all(_is_wheel(e) for e in entries):
            raise self.fail(key, "expected a list of { wheel = 'name==version', sha256 = '…' }")
        return tuple(Wheel(e["wheel"], e["sha256"]) for e in entries)

    def text_map(self, key: str) -> tuple[tuple[str, str], ...]:
        value = self.data.get(key)
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.fail(key, "expected a table of strings")
        return tuple(value.items())


def load(path: Path) -> Recipe:
    """Read and validate one recipe file."""
    try:
        text = path.read_text(encoding="utf-8")
        data = toml.loads(text)
    except OSError as exc:
        raise RecipeError(f"recipe {path.name}: cannot be read: {exc.strerror}") from exc
    except toml.TOMLDecodeError as exc:
        raise RecipeError(f"recipe {path.name}: not valid TOML: {exc}") from exc
    root = _Reader(data, path)
    base = path.parent
    name = root.text("name", pattern=re.compile(r"^[a-z0-9][a-z0-9.+-]*$"))
    if name != path.stem:
        raise root.fail("name", f"{name!r} differs from the file name {path.stem!r}")
    status = root.text("status", choices=STATUSES)
    reason = root.opt_text("reason")
    if status != "verified" and reason is None:
        raise root.fail("reason", f"a {status} recipe must say why")
    verified = None
    if status == "verified":
        proof = root.table("verified")
        verified = (proof.text("by"), proof.text("on"))
    elif "verified" in root.data:
        raise root.fail("verified", f"a {status} recipe was not verified")

    plat = root.table("platform")
    distros = []
    for entry in plat.texts("distros", allow_empty=False):
        parts = entry.split()
        if len(parts) != 2 or not _VERSION.match(parts[1]):
            raise plat.fail("distros", f"{entry!r} is not 'distro version' (e.g. 'debian 12')")
        distros.append((parts[0].lower(), parts[1]))
    python = plat.text("python", pattern=_VERSION)

    comp = root.table("compute")
    kind = comp.text("kind", choices=KINDS)
    cuda = cudnn = None
    arches: tuple[str, ...] = ()
    if kind == "cuda":
        cuda = comp.text("cuda", pattern=_VERSION)
        cudnn = comp.opt_text("cudnn", pattern=_VERSION)
        arches = comp.texts("architectures", allow_empty=False)
        if not all(a.isdigit() for a in arches):
            raise comp.fail("architectures", "expected compute capabilities like '75'")

    stack = root.table("stack")
    src = root.table("source")
    source = Source(
        repository=src.text("repository"),
        commit=src.text("commit", pattern=_HEX),
        tarball=src.text("tarball"),
        sha256=src.text("sha256", pattern=_SHA256),
        size=src.integer("size"),
        manifest=_existing(src, "manifest", base),
        apt_suite=src.opt_text("apt_suite"),
        apt_package=src.opt_text("apt_package"),
    )
    compiler_wheels: tuple[Wheel, ...] = ()
    library_wheels: tuple[Wheel, ...] = ()
    if "toolkit" in root.data:
        if kind != "cuda":
            raise root.fail("toolkit", "only a CUDA recipe assembles a CUDA toolkit")
        tk = root.table("toolkit")
        compiler_wheels, library_wheels = tk.wheels("compiler"), tk.wheels("libraries")
    bld = root.table("build")
    patches = tuple(_existing(bld, "patches", base, rel) for rel in bld.texts("patches"))

    managers = list(root.table("packages").data)
    if len(managers) != 1 or managers[0] not in platform.MANAGERS:
        known = ", ".join(platform.MANAGERS)
        raise root.fail("packages", f"one package manager's list ({known}), not {managers}")
    recipe = Recipe(
        name=name,
        path=path,
        summary=root.text("summary"),
        status=status,
        reason=reason,
        verified=verified,
        alternative=root.opt_text("alternative"),
        distros=tuple(distros),
        machines=plat.texts("machines", allow_empty=False),
        compiler=plat.text("compiler"),
        python=python,
        base_image=plat.text("base_image"),
        kind=kind,
        cuda=cuda,
        cudnn=cudnn,
        architectures=arches,
        protobuf=stack.text("protobuf"),
        static_protobuf=stack.flag("static_protobuf"),
        opencv=stack.text("opencv"),
        boost=stack.text("boost"),
        blas=stack.text("blas"),
        apt=root.table("packages").texts(managers[0]),
        package_manager=managers[0],
        source=source,
        patches=patches,
        cmake=bld.text_map("cmake"),
        toolkit_compiler=compiler_wheels,
        toolkit_libraries=library_wheels,
    )
    digest = hashlib.sha256(text.encode())
    for p in patches:
        digest.update(p.read_bytes())
    return _with_digest(recipe, digest.hexdigest())


def _existing(r: _Reader, key: str, base: Path, rel: str | None = None) -> Path:
    rel = rel if rel is not None else r.text(key)
    path = (base / rel).resolve()
    if not path.is_file() or base.resolve() not in path.parents:
        raise r.fail(key, f"{rel!r}: no such file beside the recipe")
    return path


def _with_digest(recipe: Recipe, digest: str) -> Recipe:
    object.__setattr__(recipe, "digest", digest)
    return recipe


@functools.lru_cache(maxsize=4)
def load_all(folder: Path | None = None) -> tuple[Recipe, ...]:
    """Every recipe in `folder` (default: the project's), validated, by name."""
    folder = folder or recipes_dir()
    recipes = tuple(load(p) for p in sorted(folder.glob("*.toml")))
    names = {r.name for r in recipes}
    for r in recipes:
        if r.alternative is not None and r.alternative not in names:
            raise RecipeError(
                f"recipe {r.path.name}: field 'alternative': no recipe named {r.alternative!r}"
            )
    return recipes
