"""No import circle in src/securechat: dependencies between modules point one way.

A circle means two modules that cannot be read, tested or changed apart (the
relay's app, connection and revocation were one: a connection was handed the
whole server). The graph is built from the source with `ast`, nothing is
imported, and every `import` statement counts wherever it stands:

- at module level;
- under `if TYPE_CHECKING:`. A type-only import costs nothing at run time, but
  it is still a dependency: the module is written against the other one and
  cannot be understood or moved without it. The app <-> connection circle was
  exactly such an import;
- inside a function. That is the usual way to dodge a circle at import time,
  which leaves the circle in the design.

`from package import name` is an edge to `package.name` when that is a module,
else to the package. Importing `a.b.c` also runs `a/__init__.py` and
`a/b/__init__.py`, but those implicit edges are not counted: a package whose
`__init__` re-exports its own modules (its public API, as `scanner/` does)
would otherwise form a circle with each of them.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT_PACKAGE = "securechat"


def modules(src: Path, root: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package `root` under `src`."""
    found = {}
    for path in sorted((src / root).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(name: str, path: Path, tree: ast.Module) -> Iterator[tuple[str, list[str]]]:
    """(module named by the statement, names it imports from it) for each import."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, [alias.name for alias in node.names]


def import_graph(src: Path, root: str) -> dict[str, set[str]]:
    """Module -> the modules of `root` it imports."""
    known = modules(src, root)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        edges = set()
        for target, names in _imported(name, path, ast.parse(path.read_text(), str(path))):
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
            if submodules:
                edges.update(submodules)
            if len(submodules) < len(names) or not names:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target:
                    edges.add(target)
        edges.discard(name)
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[tuple[list[str], set[str]]]:
    """Each strongly connected component of more than one module, with one circle through
    it (a -> b -> ... -> a), so that a failure names an actual path to break."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [(_cycle_through(graph, component), component) for component in components]


def _cycle_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """The shortest path from the component's first module back to itself."""
    start = min(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node] & component):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no cycle in the component {sorted(component)}")


def _packages() -> list[str]:
    return sorted({name.split(".")[1] for name in modules(SRC, ROOT_PACKAGE) if "." in name})


@pytest.mark.parametrize("package", _packages())
def test_no_import_circle(package: str) -> None:
    """One test per top-level package, so a circle is reported where it lives."""
    prefix = f"{ROOT_PACKAGE}.{package}"
    found = [
        f"{' -> '.join(circle)}; the modules tied together: {', '.join(sorted(component))}"
        for circle, component in circles(import_graph(SRC, ROOT_PACKAGE))
        if any(m == prefix or m.startswith(prefix + ".") for m in component)
    ]
    assert not found, "import circles:\n" + "\n".join(found)


def test_every_kind_of_import_is_an_edge(tmp_path: Path) -> None:
    """The checker itself: type-only, function-local and relative imports make a circle."""
    pkg = tmp_path / "demo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from demo.sub import b\n"
    )
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import thing\n")
    (pkg / "c.py").write_text("import demo.a\nthing = 1\n")
    (pkg / "d.py").write_text("from demo import c\n")

    graph = import_graph(tmp_path, "demo")

    assert graph["demo.d"] == {"demo.c"}
    assert circles(graph) == [
        (["demo.a", "demo.sub.b", "demo.c", "demo.a"], {"demo.a", "demo.sub.b", "demo.c"})
    ]
