"""`caffedoc docker --build`: each image built from its context and proven by its own RUN
steps (`check --strict --require`, `check --strict`, `smoke`); a failed step fails the
image with caffedoc's own words for it. Results print as text and, for CI, JUnit XML."""

from __future__ import annotations

import os
import re
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from caffedoc import docker
from caffedoc.build import paths, toolkit
from caffedoc.errors import CaffedocError
from caffedoc.images import base, context
from caffedoc.images.engine import Engine
from caffedoc.recipes import Recipe

# Where pip's CA bundle comes from on the host, in order (a TLS-intercepting proxy's CA
# is in it where the machine trusts that proxy).
CA_BUNDLES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")
TAIL = 25  # lines of the failing step's output kept as the finding
FINDING = re.compile(r"^[✗!] \[[a-z0-9-]+\] ")  # an error or warning in check's text


@dataclass
class Built:
    recipe: str
    tag: str
    outcome: str  # built | failed | skipped
    seconds: float = 0.0
    size: int | None = None
    why: str = ""  # the failing step's words, or why it was not built
    log: Path | None = None

    def line(self) -> str:
        if self.outcome == "built":
            size = f"{self.size / 1e6:.0f} MB" if self.size else "size unknown"
            return f"{self.recipe}: built and verified as {self.tag} ({size}, {self.seconds:.0f} s)"
        return f"{self.recipe}: {self.outcome}: {self.why}"


def host_ca() -> Path | None:
    for key in CA_BUNDLES:
        value = os.environ.get(key)
        if value and Path(value).is_file():
            return Path(value)
    return SYSTEM_CA if SYSTEM_CA.is_file() else None


def tag_of(recipe: Recipe, cuda_arch: tuple[str, ...] = ()) -> str:
    """caffe:NAME; an image built for some GPU targets only says which (-sm75)."""
    return f"caffe:{recipe.name}" + "".join(f"-sm{a}" for a in cuda_arch)


def missing_bases(engine: Engine, recipe: Recipe, make_bases: bool) -> str | None:
    """Find, make (debootstrap) or pull the stages' base images; say what is missing."""
    for image in dict.fromkeys((recipe.base_image, docker.runtime_image(recipe.base_image))):
        if engine.has_image(image):
            continue
        if make_bases and base.can_make(image):
            base.make(engine, image)
            continue
        pulled = engine.run("pull", image, timeout=1800)
        if pulled.ok:
            continue
        said = (pulled.stderr.strip().splitlines() or [pulled.ending()])[-1]
        hint = "; --base-from-debootstrap makes it here" if base.can_make(image) else ""
        return f"the base image {image} is not here and cannot be pulled ({said}){hint}"
    return None


def build(
    engine: Engine,
    recipe: Recipe,
    *,
    make_bases: bool = False,
    source: Path | None = None,
    dockerfile: Path | None = None,
    cuda_arch: tuple[str, ...] = (),
) -> Built:
    """Build and prove `recipe`'s image with `engine`; a CUDA image for `cuda_arch` only
    when given (the Dockerfile's CUDA_ARCH build argument)."""
    tag = tag_of(recipe, cuda_arch)
    logs = paths.cache_root() / "images"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{recipe.name}.log"
    with tempfile.TemporaryDirectory(prefix=f"context-{recipe.name}-", dir=logs) as scratch:
        ctx = context.make(recipe, Path(scratch) / "context", source)
        missing = missing_bases(engine, recipe, make_bases)
        if missing:
            return Built(recipe.name, tag, "skipped", why=missing)
        file = ctx / "Dockerfile"
        if dockerfile is not None:
            try:
                file.write_bytes(dockerfile.read_bytes())
            except OSError as exc:
                raise CaffedocError(f"--file {dockerfile}: {exc.strerror}") from exc
        else:
            file.write_text(docker.render(recipe, ccache_volume=engine.volumes))
        volumes, args = {}, {}
        if cuda_arch:
            args[docker.CUDA_ARCH] = ",".join(cuda_arch)
        if engine.volumes and docker.toolkit_wheels(recipe):
            wheels = toolkit.wheel_dir()
            wheels.mkdir(parents=True, exist_ok=True)
            volumes[str(wheels)] = docker.WHEELS
        if engine.volumes:
            ccache = paths.ccache_dir()
            ccache.mkdir(parents=True, exist_ok=True)
            volumes[str(ccache)] = docker.CCACHE
            ca = host_ca()
            if ca is not None:
                volumes[str(ca)] = f"{docker.HOST_CA}:ro"
                args["PIP_CERT"] = docker.HOST_CA
        start = time.monotonic()
        res = engine.build(file, ctx, tag, volumes=volumes, build_args=args)
        seconds = time.monotonic() - start
    log.write_text(f"$ {res.describe()}\n{res.stdout}\n{res.stderr}", encoding="utf-8")
    if not res.ok:
        return Built(recipe.name, tag, "failed", seconds, why=_finding(res.stdout, res.stderr),
                     log=log)  # fmt: skip
    return Built(recipe.name, tag, "built", seconds, engine.size(tag), log=log)


def _finding(stdout: str, stderr: str) -> str:
    """The failing step's own output (from its STEP line on), its last lines: caffedoc's
    finding where a caffedoc step failed."""
    lines = [line for line in (stdout + "\n" + stderr).splitlines() if line.strip()]
    steps = [i for i, line in enumerate(lines) if "STEP " in line and "Error:" not in line]
    step = lines[steps[-1] if steps else 0 :]
    # A failed check: its errors and warnings with their evidence and fix, not the areas
    # that passed; else (a build, a smoke step) the step's last lines.
    found, keep = [], False
    for line in step:
        words = line.strip()
        if FINDING.match(words):
            keep = True
        elif not words.startswith(("seen:", "fix:", "see:")):
            keep = False
        if keep or words.startswith("caffedoc: error:"):
            found.append(line)
    return "\n".join([*step[:1], *found] if found else step[-TAIL:])


def junit(results: list[Built], path: Path) -> None:
    """One test case per image: a failure carries the finding, a skip its reason."""
    suite = ET.Element("testsuite", name="caffedoc docker --build", tests=str(len(results)),
                       failures=str(sum(r.outcome == "failed" for r in results)),
                       skipped=str(sum(r.outcome == "skipped" for r in results)))  # fmt: skip
    for r in results:
        case = ET.SubElement(suite, "testcase", classname="images", name=r.recipe,
                             time=f"{r.seconds:.1f}")  # fmt: skip
        if r.outcome == "failed":
            said = [w.strip() for w in r.why.splitlines()
                    if w.startswith("caffedoc: error:") or FINDING.match(w.strip())]  # fmt: skip
            message = (said or r.why.splitlines()[-1:] or ["failed"])[0][:200]
            ET.SubElement(case, "failure", message=message).text = r.why
        elif r.outcome == "skipped":
            ET.SubElement(case, "skipped", message=r.why)
        else:
            ET.SubElement(case, "system-out").text = r.line()
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    try:
        path.write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")
    except OSError as exc:
        raise CaffedocError(f"--junit {path}: cannot write: {exc.strerror}") from exc
