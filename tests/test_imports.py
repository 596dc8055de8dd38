"""caffedoc's modules import one another without a cycle, lazy imports included.

The graph is read from the source with `ast`, so a cycle fails here before it can
make an import order matter at run time. A function-level (lazy) import counts
like any other: it only moves when the cycle would bite.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "caffedoc"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The caffedoc modules `name` runs when imported or called: what it names, and the
    packages above those that are not its own (their __init__ runs first)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            named.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            subs = {f"{base}.{a.name}" for a in node.names} & modules.keys()
            named.update(subs)
            if len(subs) < len(node.names):  # a name defined in `base` itself
                named.add(base)
    out = set()
    own = set(_ancestors(name)) | {name}
    for target in named:
        for m in (*_ancestors(target), target):
            if m in modules and m not in own:
                out.add(m)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = _graph()
    graph["caffedoc.layout"].add("caffedoc.build.engine")  # engine imports layout
    assert any("caffedoc.layout" in c for c in _cycles(graph))


def test_build_and_probes_do_not_import_each_other():
    """They share what build writes through caffedoc.layout, and ELF reading through
    caffedoc.elf; recipe resolution reads the probes from outside build."""
    graph = _graph()
    for a, b in (("caffedoc.build", "caffedoc.probes"), ("caffedoc.probes", "caffedoc.build")):
        crossing = [m for m in graph if m.startswith(a) for t in graph[m] if t.startswith(b)]
        assert crossing == [], crossing
