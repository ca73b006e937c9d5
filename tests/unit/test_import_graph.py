"""unstuck's modules import each other without a cycle, counting the imports inside functions too.

A function-level import hides a cycle from Python (each module finishes loading before the other's function
runs) but not from a reader: the two modules still need each other, and moving either import to the top
breaks the start. The graph here is read from the source (ast), so a new cycle is red before it bites.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import unstuck

PACKAGE = Path(unstuck.__file__).parent


def module_names() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def source_of(name: str) -> Path:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imports_of(name: str, known: set[str]) -> dict[str, int]:
    """The unstuck modules `name` imports anywhere in its source (module level or in a function), each with
    the line of its first import. `from unstuck.x import y` counts as importing unstuck.x.y when y is a
    module, else unstuck.x."""
    path = source_of(name)
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for target in targets:
            # `import unstuck.a.b` imports unstuck.a.b; a name inside a module counts as that module.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target != "unstuck" and target.startswith("unstuck"):
                found.setdefault(target, node.lineno)
    return found


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Each strongly connected component of more than one module (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_of_the_package_imports():
    for name in module_names():
        if name != "unstuck.__main__":  # runs the command line when imported
            importlib.import_module(name)


def test_no_import_cycle_among_module_or_function_level_imports():
    names = module_names()
    known = set(names)
    graph = {name: imports_of(name, known) for name in names}
    described = []
    for component in cycles(graph):
        members = set(component)
        edges = [f"{a} -> {b} ({source_of(a).relative_to(PACKAGE.parent)}:{line})"
                 for a in component for b, line in graph[a].items() if b in members]
        described.append("cycle among " + ", ".join(component) + ":\n  " + "\n  ".join(edges))
    assert not described, "\n".join(described)


def test_the_graph_sees_imports_inside_functions():
    # The reader itself: a function-level `from unstuck.x import y` and a relative import are edges.
    names = module_names()
    known = set(names)
    assert "unstuck.project.python_requirement" in imports_of("unstuck.project.project_env", known)
    assert cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
