"""The client's parts depend on each other one way, and none grows into a second core.py."""

from __future__ import annotations

import ast
from pathlib import Path

import securechat.client

CLIENT = Path(securechat.client.__file__).parent


def _imports(path: Path) -> set[str]:
    """The `securechat.client` modules a file imports, type-checking-only imports included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "securechat.client":
                found.update(f"securechat.client.{a.name}" for a in node.names)
            elif node.module.startswith("securechat.client."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("securechat.client."))
    return found


def _graph() -> dict[str, set[str]]:
    return {
        f"securechat.client.{path.stem}": _imports(path)
        for path in CLIENT.glob("*.py")
        if path.stem != "__init__"
    }


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle, as the modules along it; empty when there is none."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return []
        for target in sorted(graph.get(module, ())):
            if found := visit(target, [*path, module]):
                return found
        done.add(module)
        return []

    for module in sorted(graph):
        if found := visit(module, []):
            return found
    return []


def test_the_cycle_finder_finds_a_circle() -> None:
    """Without this the test below could pass on a finder that never finds anything."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_the_client() -> None:
    assert _cycle(_graph()) == []


def test_no_client_module_passes_500_lines() -> None:
    sizes = {path.name: len(path.read_text().splitlines()) for path in CLIENT.glob("*.py")}
    assert {n: size for n, size in sizes.items() if size > 500} == {}
