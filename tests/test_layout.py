"""The package's shape: no import cycles, and the pipeline never imports
the edges (figures, report, CLI, batch, web). Every import counts, those
inside functions too, read from the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import kmq

PACKAGE = Path(kmq.__file__).resolve().parent
#: Modules at the edges: they may import the core, never the reverse.
EDGES = ("kmq.__main__", "kmq.plot", "kmq._cli", "kmq.batch", "kmq.palette", "kmq._web")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """kmq module -> the kmq modules it imports (anywhere in its code)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                candidates = [f"{stem}.{alias.name}" for alias in node.names] + [stem]
            else:
                continue
            for candidate in candidates:
                # The longest prefix that is a module of the package.
                while candidate and candidate not in modules:
                    candidate = candidate.rpartition(".")[0]
                if candidate and candidate != name:
                    targets.add(candidate)
        graph[name] = targets
    return graph


def _is_edge(name: str) -> bool:
    return any(name == edge or name.startswith(edge + ".") for edge in EDGES)


def _parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_cycles():
    graph = _imports()
    # Importing a submodule runs its parents' __init__ first; those edges are
    # the package structure, not a cycle (kmq -> kmq._engine.kmeans -> kmq).
    graph = {name: {t for t in targets if t not in _parents(name)} for name, targets in graph.items()}
    cycles = []
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert cycles == []


def test_the_pipeline_never_imports_the_edges():
    graph = _imports()
    crossings = sorted(
        (name, target)
        for name, targets in graph.items()
        if not _is_edge(name)
        for target in targets
        if _is_edge(target)
    )
    assert crossings == []
