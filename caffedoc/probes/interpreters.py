"""Interpreters: what one Python sees (sys.path, site dirs, .pth files, and every
caffe, protobuf and numpy on its sys.path, located without importing them), from
`scripts/introspect.py` run inside it, as its owner under root.

The `target` probe is the interpreter that should import caffe: the python,
caffe and opencv areas and Caffe's binaries all read it, so it runs once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caffedoc import host
from caffedoc.probes import Context, Session, probe
from caffedoc.probes.commands import executable
from caffedoc.shellwords import Raw

SCRIPTS = Path(__file__).parent / "scripts"


@dataclass(frozen=True)
class Located:
    """One copy of a package on an interpreter's sys.path, in sys.path order."""

    path: str
    kind: str  # package, namespace, module, zip
    entry: str  # the sys.path entry holding it ('' = the working directory)
    index: int  # position of that entry in sys.path
    origin: str  # why the entry is there: PYTHONPATH, a .pth file, site-packages…
    version: str | None = None
    installer: str | None = None  # from the dist-info INSTALLER file: pip, uv…
    extensions: tuple[str, ...] = ()  # caffe: its _caffe*.so files
    pb2: str | None = None  # caffe: proto/caffe_pb2.py


@dataclass(frozen=True)
class Interpreter:
    """What one interpreter sees, or why it could not be examined."""

    path: str
    error: str | None = None
    executable: str | None = None  # sys.executable: what a shim or symlink really runs
    version: str | None = None
    implementation: str | None = None
    soabi: str | None = None
    prefix: str | None = None
    base_prefix: str | None = None
    sys_path: tuple[str, ...] = ()
    cwd: str | None = None
    pythonpath: str = ""
    site_dirs: tuple[str, ...] = ()
    pth_files: tuple[dict[str, Any], ...] = ()
    caffe: tuple[Located, ...] = ()
    protobuf: tuple[Located, ...] = ()
    numpy: tuple[Located, ...] = ()
    protobuf_implementation_env: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def major_minor(self) -> str | None:
        return ".".join(self.version.split(".")[:2]) if self.version else None

    @property
    def in_venv(self) -> bool:
        return bool(self.prefix and self.base_prefix and self.prefix != self.base_prefix)

    def winner(self, name: str) -> Located | None:
        """The copy `import name` loads: the first regular one, else a namespace."""
        found: tuple[Located, ...] = getattr(self, name)
        regular = [p for p in found if p.kind != "namespace"]
        return (regular or list(found) or [None])[0]


def _origin(entry: str, info: dict[str, Any]) -> str:
    if entry == "":
        return f"the working directory ({info.get('cwd')})"
    pythonpath = [os.path.normpath(p) for p in info.get("pythonpath", "").split(os.pathsep) if p]
    if os.path.normpath(entry) in pythonpath:
        return "PYTHONPATH"
    for pth in info.get("pth", []):
        if os.path.normpath(entry) in pth["adds"]:
            return pth["file"]
    if entry == info.get("user_site"):
        return "user site-packages"
    if entry in info.get("site_dirs", []) or entry.endswith(("site-packages", "dist-packages")):
        return "site-packages"
    if any(entry.startswith(info.get(k) or "\0") for k in ("base_prefix", "prefix")):
        return "the standard library"
    return "the interpreter's start-up (sitecustomize or a .pth import line)"


def _located(items: list[dict[str, Any]], info: dict[str, Any]) -> tuple[Located, ...]:
    return tuple(
        Located(
            path=i["path"],
            kind=i["kind"],
            entry=i["entry"],
            index=i["index"],
            origin=_origin(i["entry"], info),
            version=i.get("version"),
            installer=i.get("installer"),
            extensions=tuple(i.get("extensions", ())),
            pb2=i.get("pb2"),
        )
        for i in items
    )


def ended(res: host.Result, script: str, name: str) -> str:
    """How a child ended, naming its script rather than quoting it."""
    named = tuple(Raw(f"<caffedoc/probes/scripts/{name}>") if a == script else a for a in res.argv)
    return dataclasses.replace(res, argv=named).describe()


def account(python: str) -> tuple[pwd.struct_passwd | None, str, str | None]:
    """Whom `python`'s code runs as: (the user to pass to host.run, their name, why not
    as the interpreter's owner). Under root, an interpreter (or venv) owned by someone
    else runs as them, so their sitecustomize never runs as root."""
    owner = host.code_owner(python)
    if owner is None:
        return None, _me(), None
    if host.can_switch_user():
        return owner, owner.pw_name, None
    return None, _me(), f"not as its owner {owner.pw_name}: setpriv is not installed"


def _me() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def run_python(
    ctx: Context,
    python: str,
    args: list[str],
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> host.Result:
    """Run the interpreter `python` (shims followed) with `args`, as its owner under root."""
    exe = executable(python, ctx.env)
    user = account(exe)[0]
    return host.run(
        [exe, *args],
        timeout=ctx.limit() if timeout is None else timeout,
        env=ctx.env if env is None else env,
        user=user,
    )


def _report(res: host.Result) -> dict[str, Any] | None:
    """introspect.py's report: the JSON object on its last line of output."""
    try:
        info = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return info if isinstance(info, dict) else None


def _introspect(python: str, ctx: Context) -> Interpreter:
    script = (SCRIPTS / "introspect.py").read_text(encoding="utf-8")
    res = run_python(ctx, python, ["-c", script])
    said = ended(res, script, "introspect.py")
    if not res.ok:
        tail = res.stderr.strip().splitlines()[-1:] if res.stderr.strip() else []
        return Interpreter(python, error=f"{said}: {tail[0]}" if tail else said)
    info = _report(res)
    if info is None:
        said = (res.stdout.strip().splitlines() or [""])[-1][:80]
        printed = f"printed {said!r}" if said else "printed nothing"
        return Interpreter(python, error=f"not a Python interpreter: {said} and {printed}")
    pk = info.get("packages", {})
    return Interpreter(
        path=python,
        executable=info.get("executable"),
        version=info.get("version"),
        implementation=info.get("implementation"),
        soabi=info.get("soabi"),
        prefix=info.get("prefix"),
        base_prefix=info.get("base_prefix"),
        sys_path=tuple(info.get("sys_path", ())),
        cwd=info.get("cwd"),
        pythonpath=info.get("pythonpath", ""),
        site_dirs=tuple(info.get("site_dirs", ()))
        + ((info["user_site"],) if info.get("user_site") else ()),
        pth_files=tuple(p for p in info.get("pth", ()) if p["adds"]),
        caffe=_located(pk.get("caffe", []), info),
        protobuf=_located(pk.get("protobuf", []), info),
        numpy=_located(pk.get("numpy", []), info),
        protobuf_implementation_env=info.get("protobuf_implementation_env"),
    )


def introspect(session: Session, python: str | os.PathLike[str]) -> Interpreter:
    """What `python` sees; one child per interpreter and check."""
    p = str(python)
    return session.once(("introspect", p), lambda: _introspect(p, session.ctx))


def _target_unexamined(t: Interpreter) -> str | None:
    return f"the target {t.path} could not be examined: {t.error}" if t.error else None


@probe("target", unexamined=_target_unexamined, area=False, subject="the target interpreter")
def target(session: Session) -> Interpreter:
    """The interpreter that should import caffe, as it sees itself: most areas read it."""
    return introspect(session, session.ctx.python)
