#!/usr/bin/env python3
"""Count import cycles between the files of a package: ``python3 tools/import_cycles.py monitorkit``.

Every import counts (inside functions and under TYPE_CHECKING too), and so does a module name
written as a string ("monitorkit.rules.service:RuleService"), because each is a dependency a
reader of the code has to follow.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def module_files(root: Path) -> dict[str, Path]:
    """Return every module of the package at ``root`` by dotted name."""
    mods: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = path
    return mods


def _targets(module: str, node: ast.Import | ast.ImportFrom, is_package: bool, mods: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".")[: None if is_package else -1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, base] if base else parts)
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]


def import_graph(root: Path) -> dict[str, set[str]]:
    """Return module -> the package's modules it imports."""
    mods = module_files(root)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            found: list[str] = []
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found = _targets(module, node, path.name == "__init__.py", mods)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.partition(":")[0] in mods:
                found = [node.value.partition(":")[0]]  # "module" or "module:Class", imported by name later
            for target in found:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def main() -> None:
    groups = cycles(import_graph(Path(sys.argv[1] if len(sys.argv) > 1 else "monitorkit")))
    print(len(groups), "cycle groups")
    for group in groups:
        print(" ", len(group), group)


if __name__ == "__main__":
    main()
