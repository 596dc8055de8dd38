"""Python interpreters and pips: what a user runs, and what each one sees.

Two kinds of facts. The *commands*: every python*/pip* a user could run (PATH
in order, the usual bin directories, pyenv's shims, the active venv), and for
each the interpreter it really runs (shebangs and pyenv shims followed). The
*interpreters*: what each one sees, from `scripts/introspect.py` run inside it
(sys.path, site dirs, .pth files, and every caffe, protobuf and numpy on its
sys.path, located without importing them). The target interpreter also gets
the real imports, in two children of `scripts/try_import.py`: `import caffe;
import cv2` (whose caffe steps are the caffe probe's import attempt) and the
reverse (the opencv probe reads both).

The protobuf, caffe and opencv probes read the same facts: `introspect` and
`imports` run each child once per context however many probes ask, and the
import children start with the python probe, before anything else.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import pwd
import re
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from caffedoc import host
from caffedoc.probes import Context, probe
from caffedoc.shellwords import Raw

SCRIPTS = Path(__file__).parent / "scripts"
COMMAND_NAME = re.compile(r"^(python|pip)(\d+(?:\.\d+)?)?$")
MARK = "@@caffedoc "
T = TypeVar("T")


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


@dataclass(frozen=True)
class Command:
    """A python or pip a user can run, and the interpreter behind it."""

    name: str
    path: str
    dirs: tuple[str, ...]  # where it was found: PATH, /usr/bin, pyenv shims…
    first_on_path: bool  # what a bare `name` runs
    kind: str = "python"  # python or pip
    shebang: str | None = None
    runs: str | None = None  # the interpreter it runs (shebang/shim followed)
    via: str | None = None  # how `runs` was found: shebang, env, pyenv shim, binary
    broken: bool = False  # it names an interpreter that does not exist
    note: str | None = None  # why it runs nothing, when it does not


@dataclass(frozen=True)
class ImportAttempt:
    """`import caffe` in a fresh child of the target interpreter."""

    ok: bool
    ran: str  # how the child ended, in words
    error_type: str | None = None
    error: str | None = None
    frames: tuple[str, ...] = ()
    caffe: str | None = None  # caffe.__file__
    extension: str | None = None  # caffe._caffe.__file__
    pb2: str | None = None  # caffe.proto.caffe_pb2.__file__ once loaded
    pb2_load: dict[str, Any] | None = None  # the separate caffe_pb2 load, when done
    protobuf: dict[str, Any] | None = None  # version, implementation, file
    numpy: str | None = None
    stderr_tail: str = ""
    crashed: str | None = None  # the signal, a timeout


@dataclass(frozen=True)
class CodeRun:
    """An interpreter whose code (its start-up, sitecustomize and .pth files, the modules
    imported) a check runs, and the account it runs as."""

    python: str
    what: str  # "sys.path; import caffe, cv2"
    user: str
    note: str | None = None  # why not as the interpreter's owner, when it should have been


@dataclass(frozen=True)
class PythonFacts:
    target: Interpreter
    commands: tuple[Command, ...]
    interpreters: dict[str, Interpreter] = field(default_factory=dict)  # by command target
    pyenv_root: str | None = None
    pyenv_version: tuple[str, ...] = ()
    virtual_env: str | None = None
    runs_code: tuple[CodeRun, ...] = ()


# --- once per context --------------------------------------------------------------

_lock = threading.Lock()
_scopes: dict[int, dict[tuple, concurrent.futures.Future]] = {}


def once(ctx: Context, key: tuple, compute: Callable[[], T]) -> T:
    """Compute `key` a single time per context however many probes ask at once.

    The cache lives as long as `ctx`: a later check (after `caffedoc fix`, say) with a
    new context looks at the machine afresh.
    """
    return _future(ctx, key, compute, background=False).result()


def _future(
    ctx: Context, key: tuple, compute: Callable[[], T], *, background: bool
) -> concurrent.futures.Future:
    with _lock:
        scope = _scopes.get(id(ctx))
        if scope is None:
            scope = _scopes[id(ctx)] = {}
            weakref.finalize(ctx, _scopes.pop, id(ctx), None)
        fut = scope.get(key)
        owner = fut is None
        if owner:
            fut = scope[key] = concurrent.futures.Future()
    if owner and background:
        threading.Thread(target=_fill, args=(fut, compute), daemon=True).start()
    elif owner:
        _fill(fut, compute)
    return fut


def _fill(fut: concurrent.futures.Future, compute: Callable[[], Any]) -> None:
    try:
        fut.set_result(compute())
    except BaseException as exc:
        fut.set_exception(exc)


# --- interpreters ------------------------------------------------------------------


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


def _ended(res: host.Result, script: str, name: str) -> str:
    """How a child ended, naming its script rather than quoting it."""
    named = tuple(Raw(f"<caffedoc/probes/scripts/{name}>") if a == script else a for a in res.argv)
    return dataclasses.replace(res, argv=named).describe()


def _account(python: str) -> tuple[pwd.struct_passwd | None, str, str | None]:
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


def _run_python(
    ctx: Context, python: str, args: list[str], env: Mapping[str, str] | None = None
) -> host.Result:
    """Run the interpreter `python` (shims followed) with `args`, as its owner under root."""
    exe = executable(python, ctx.env)
    user = _account(exe)[0]
    return host.run(
        [exe, *args], timeout=ctx.timeout, env=ctx.env if env is None else env, user=user
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
    res = _run_python(ctx, python, ["-c", script])
    ended = _ended(res, script, "introspect.py")
    if not res.ok:
        tail = res.stderr.strip().splitlines()[-1:] if res.stderr.strip() else []
        return Interpreter(python, error=f"{ended}: {tail[0]}" if tail else ended)
    info = _report(res)
    if info is None:
        said = (res.stdout.strip().splitlines() or [""])[-1][:80]
        printed = f"printed {said!r}" if said else "printed nothing"
        return Interpreter(python, error=f"not a Python interpreter: {ended} and {printed}")
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


def introspect(ctx: Context, python: str | os.PathLike[str]) -> Interpreter:
    """What `python` sees; one child per interpreter and context."""
    p = str(python)
    return once(ctx, ("introspect", p), lambda: _introspect(p, ctx))


@dataclass(frozen=True)
class ImportChild:
    """One run of `scripts/try_import.py`: its steps in order, and how it ended."""

    order: tuple[str, ...]
    steps: tuple[tuple[str, dict[str, Any]], ...]  # (step, what it reported), in order
    result: host.Result
    ended: str  # how the child ended, its script named rather than quoted

    def step(self, name: str) -> dict[str, Any] | None:
        return next((data for step, data in self.steps if step == name), None)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [data for step, data in self.steps if step == name]

    @property
    def caffe_stderr(self) -> str:
        """What the child printed on stderr up to the end of its caffe steps."""
        return self.result.stderr.split(MARK + "caffe-done", 1)[0]

    @property
    def stderr(self) -> str:
        return self.result.stderr.replace(MARK + "caffe-done\n", "")


# `import caffe; import cv2` (which is also the caffe probe's `import caffe`) and the
# reverse: each imports caffe, the slowest thing a check does, so they start first.
IMPORT_ORDERS: tuple[tuple[str, ...], ...] = (("caffe", "cv2"), ("cv2", "caffe"))


# Importing numpy starts a BLAS thread per core; the two import children run side by side
# and compute nothing, so one thread each halves their CPU. A user's own setting wins.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run_imports(ctx: Context, order: tuple[str, ...]) -> ImportChild:
    script = (SCRIPTS / "try_import.py").read_text(encoding="utf-8")
    res = _run_python(ctx, str(ctx.python), ["-c", script, *order], {**ONE_THREAD, **ctx.env})
    steps = []
    for line in res.stdout.splitlines():
        if line.startswith(MARK):
            try:
                data = json.loads(line[len(MARK) :])
            except ValueError:
                continue
            if isinstance(data, dict) and "step" in data:
                steps.append((data.pop("step"), data))
    return ImportChild(order, tuple(steps), res, _ended(res, script, "try_import.py"))


def start_imports(ctx: Context) -> None:
    """Start both import-order children now, in the background, once per context."""
    for order in IMPORT_ORDERS:
        _future(ctx, ("imports", order), lambda o=order: _run_imports(ctx, o), background=True)


def imports(ctx: Context, order: tuple[str, ...]) -> ImportChild:
    """The child that imports `order` in one process, once per context."""
    return once(ctx, ("imports", order), lambda: _run_imports(ctx, order))


def _attempt(child: ImportChild, timeout: float) -> ImportAttempt:
    res = child.result
    crashed = None
    # The protobuf step ends the caffe steps: a crash after it belongs to a later import.
    if child.step("protobuf") is None:
        if res.timed_out:
            crashed = f"did not finish within {timeout:.0f} s"
        elif res.signal_name:
            crashed = f"killed by {res.signal_name}"
        elif res.error:
            crashed = f"could not start: {res.error}"
    imp = child.step("import")
    stderr_tail = "\n".join(child.caffe_stderr.strip().splitlines()[-6:])
    if imp is None:
        return ImportAttempt(
            ok=False,
            ran=child.ended,
            error=crashed or "the import child printed no result",
            stderr_tail=stderr_tail,
            crashed=crashed or child.ended,
        )
    return ImportAttempt(
        ok=bool(imp.get("ok")),
        ran=child.ended,
        error_type=imp.get("error_type"),
        error=imp.get("error"),
        frames=tuple(imp.get("frames", ())),
        caffe=imp.get("caffe"),
        extension=imp.get("extension"),
        pb2=imp.get("pb2"),
        pb2_load=child.step("pb2"),
        protobuf=child.step("protobuf"),
        numpy=imp.get("numpy"),
        stderr_tail=stderr_tail,
        crashed=crashed,
    )


def import_attempt(ctx: Context) -> ImportAttempt:
    """`import caffe` under the target interpreter: the first steps of the child that
    then imports cv2 (`import caffe; import cv2`)."""
    return _attempt(imports(ctx, IMPORT_ORDERS[0]), ctx.timeout)


# --- commands ----------------------------------------------------------------------


def _search_dirs(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(directory, why it is searched), PATH first, duplicates removed."""
    home = env.get("HOME", "")
    pyenv_root = env.get("PYENV_ROOT") or (os.path.join(home, ".pyenv") if home else "")
    dirs = [(d, "PATH") for d in env.get("PATH", "").split(os.pathsep) if d]
    if env.get("VIRTUAL_ENV"):
        dirs.append((os.path.join(env["VIRTUAL_ENV"], "bin"), "the active venv"))
    if pyenv_root:
        dirs.append((os.path.join(pyenv_root, "shims"), "pyenv shims"))
    if home:
        dirs.append((os.path.join(home, ".local", "bin"), "~/.local/bin"))
    dirs += [("/usr/local/bin", "/usr/local/bin"), ("/usr/bin", "/usr/bin")]
    out, taken = [], set()
    for d, why in dirs:
        real = os.path.realpath(d)
        if real not in taken:
            taken.add(real)
            out.append((d, why))
    return out


def _pyenv_versions(env: Mapping[str, str], root: str) -> tuple[str, ...]:
    """The versions pyenv selects, the way pyenv does: env, .python-version, global."""
    if env.get("PYENV_VERSION"):
        return tuple(re.split(r"[:\s]+", env["PYENV_VERSION"].strip()))
    d = os.getcwd()
    while True:
        text = host.read_text(os.path.join(d, ".python-version"))
        if text is not None:
            return tuple(v for v in text.split() if not v.startswith("#"))
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    text = host.read_text(os.path.join(root, "version"))
    return tuple(text.split()) if text else ("system",)


def _is_pyenv_shim(text: str) -> bool:
    return "pyenv" in text and 'exec "' in text and "libexec/pyenv" in text


def _shebang(path: str) -> tuple[str | None, str | None, str | None]:
    """(first line, interpreter it names, how) for a script; Nones for binaries."""
    head = host.read_text(path, limit=4096) or ""
    if not head.startswith("#!"):
        return None, None, None
    lines = head.splitlines()
    first = lines[0][2:].strip()
    # pip's launcher for interpreter paths too long for a shebang line
    if first in ("/bin/sh", "/usr/bin/env sh") and len(lines) > 1:
        m = re.match(r"^'''exec' (?:\"([^\"]+)\"|(\S+))", lines[1])
        if m:
            return first, m.group(1) or m.group(2), "exec line"
    parts = first.split()
    if not parts:
        return first, None, None
    if os.path.basename(parts[0]) == "env" and len(parts) > 1:
        args = [a for a in parts[1:] if not a.startswith("-")]
        return first, args[0] if args else None, "env"
    return first, parts[0], "shebang"


def _resolve_env(name: str, env: Mapping[str, str], shims: str | None) -> str | None:
    for d in env.get("PATH", "").split(os.pathsep):
        if d and d != shims and os.path.isfile(os.path.join(d, name)):
            return os.path.join(d, name)
    return None


def _through_shim(name: str, env: Mapping[str, str], pyenv: tuple) -> str | None:
    """What pyenv's shim `name` runs: the first selected version that has it."""
    root, versions = pyenv
    for v in versions:
        if v == "system":
            cand = _resolve_env(name, env, os.path.join(root, "shims"))
        else:
            cand = os.path.join(root, "versions", v, "bin", name)
        if cand and os.path.isfile(cand):
            return cand
    return None


def _pyenv(env: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """(pyenv root, the versions it selects here), or ("", ()) without pyenv."""
    home = env.get("HOME", "")
    root = env.get("PYENV_ROOT") or (os.path.join(home, ".pyenv") if home else "")
    root = root if root and os.path.isdir(root) else ""
    return root, _pyenv_versions(env, root) if root else ()


def executable(python: str, env: Mapping[str, str]) -> str:
    """The interpreter itself when `python` is a pyenv shim: the shim costs ~0.1 s a call."""
    if not _is_pyenv_shim(host.read_text(python, limit=4096) or ""):
        return python
    pyenv = _pyenv(env)
    return (pyenv[0] and _through_shim(os.path.basename(python), env, pyenv)) or python


def _command(
    name: str, path: str, dirs: list[str], first: bool, env: Mapping[str, str], pyenv: tuple
) -> Command:
    kind = "pip" if name.startswith("pip") else "python"
    base = Command(name, path, tuple(dirs), first, kind=kind)
    target, shim = path, None
    if _is_pyenv_shim(host.read_text(path, limit=4096) or ""):
        target = _through_shim(name, env, pyenv)
        if target is None:
            note = f"pyenv selects {', '.join(pyenv[1])}, which has no {name}"
            return replace(base, via="pyenv shim", note=note)
        shim = f"pyenv shim → {target}"
    first_line, runs, how = _shebang(target)
    if first_line is None:  # a binary: an interpreter itself
        return replace(base, runs=target if kind == "python" else None, via=shim or "binary")
    if runs is None:
        return replace(base, shebang=first_line, broken=True, note="its shebang names nothing")
    if how == "env":
        found = _resolve_env(runs, env, None)
        if found is None:
            note = f"`#!{first_line}` finds no {runs} on PATH"
            return replace(base, shebang=first_line, runs=runs, via="env", broken=True, note=note)
        runs = found
    broken = not (os.path.isfile(runs) and os.access(runs, os.X_OK))
    return replace(
        base,
        shebang=first_line,
        runs=runs,
        via=shim or how,
        broken=broken,
        note=f"its interpreter {runs} does not exist" if broken else None,
    )


def find_commands(env: Mapping[str, str]) -> tuple[tuple[Command, ...], tuple]:
    """Every python*/pip* in the usual places, each followed to its interpreter."""
    pyenv = _pyenv(env)
    path_dirs = [os.path.realpath(d) for d in env.get("PATH", "").split(os.pathsep) if d]
    where: dict[str, list[str]] = {}
    order: list[tuple[str, str]] = []
    first_seen: dict[str, str] = {}
    for d, why in _search_dirs(env):
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            if not COMMAND_NAME.match(n):
                continue
            p = os.path.join(d, n)
            if not (os.path.isfile(p) and os.access(p, os.X_OK)):
                continue
            if p not in where:
                order.append((n, p))
                where[p] = []
            where[p].append(why)
            if os.path.realpath(d) in path_dirs and n not in first_seen:
                first_seen[n] = p
    commands = tuple(_command(n, p, where[p], first_seen.get(n) == p, env, pyenv) for n, p in order)
    return commands, pyenv


# --- the probe ---------------------------------------------------------------------


def _summarize(f: PythonFacts) -> list[str]:
    t = f.target
    major = (t.version or "3").split(".")[0]
    lines = []
    if t.ok:
        venv = f", venv of {t.base_prefix}" if t.in_venv else ""
        runs = f"{t.executable}, " if t.executable and t.executable != t.path else ""
        lines.append(f"target: {t.path} ({runs}Python {t.version}{venv})")
    else:
        lines.append(f"target: {t.path} could not be examined: {t.error}")
    for c in f.commands:
        if c.first_on_path and c.kind == "pip" and c.name in ("pip", f"pip{major}"):
            other = f.interpreters.get(c.runs or "")
            into = f"{other.prefix} (Python {other.version})" if other and other.ok else c.runs
            lines.append(f"{c.name}: {c.note}" if c.broken or not c.runs else f"{c.name} → {into}")
    broken = [c for c in f.commands if c.broken]
    if broken:
        lines.append(f"{len(broken)} python/pip command(s) cannot run")
    for r in f.runs_code:
        note = f" ({r.note})" if r.note else ""
        lines.append(f"runs code of: {r.python} ({r.what}) as {r.user}{note}")
    return lines


def _code_runs(ctx: Context, asked: list[str]) -> tuple[CodeRun, ...]:
    """Every interpreter this check runs, what it runs there, and as whom."""
    imports = ", ".join(IMPORT_ORDERS[0])
    out = []
    for p in asked:
        what = "sys.path" + (f"; import {imports}" if p == str(ctx.python) else "")
        _user, name, note = _account(executable(p, ctx.env))
        out.append(CodeRun(p, what, name, note))
    return tuple(out)


def _same_interpreter(path: str) -> tuple[str, str]:
    """Names of one binary in one directory see one sys.path (a venv is found from the
    directory the name is in, the rest from the binary)."""
    return os.path.realpath(os.path.dirname(path)), os.path.realpath(path)


def _renamed(interp: Interpreter, path: str) -> Interpreter:
    """What `path` sees, from what another name of the same interpreter saw."""
    if interp.path == path:
        return interp
    executable = path if interp.executable == interp.path else interp.executable
    return replace(interp, path=path, executable=executable)


def _named_python(path: str) -> bool:
    return os.path.basename(os.path.realpath(path)).startswith(("python", "pypy"))


def _gather(ctx: Context) -> PythonFacts:
    start_imports(ctx)
    commands, (root, versions) = find_commands(ctx.env)
    # Only what is a Python by its name: a `python3` script's `#!/bin/sh` is no interpreter
    # to hand Python code to.
    others = {
        c.runs
        for c in commands
        if c.first_on_path and c.runs and not c.broken and _named_python(c.runs)
    }
    wanted = [str(ctx.python), *sorted(others - {str(ctx.python)})]
    # python, python3 and python3.11 beside each other are one interpreter: ask it once.
    first: dict[tuple[str, str], str] = {}
    for p in wanted:
        first.setdefault(_same_interpreter(p), p)
    asked = list(first.values())
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(asked))) as pool:
        found = dict(zip(asked, pool.map(lambda p: introspect(ctx, p), asked)))
    seen = {p: _renamed(found[first[_same_interpreter(p)]], p) for p in wanted}
    return PythonFacts(
        target=seen[str(ctx.python)],
        commands=commands,
        interpreters=seen,
        pyenv_root=root or None,
        pyenv_version=versions,
        virtual_env=ctx.env.get("VIRTUAL_ENV"),
        runs_code=_code_runs(ctx, asked),
    )


def _unexamined(f: PythonFacts) -> str | None:
    """A target that could not be run (hung, crashed, not a Python) leaves the area unseen."""
    return (
        f"the target {f.target.path} could not be examined: {f.target.error}"
        if f.target.error
        else None
    )


@probe("python", _summarize, _unexamined)
def gather(ctx: Context) -> PythonFacts:
    """The python area's facts, once per context (the protobuf probe reads them too)."""
    return once(ctx, ("python",), lambda: _gather(ctx))
