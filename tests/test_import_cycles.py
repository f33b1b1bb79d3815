"""The project's modules import each other without cycles, and the apps in one direction:
``kpi`` and ``fieldwork`` read ``surveys``, never the reverse, and ``kpi`` never reads
``fieldwork`` (docs/architecture.md). Read from the source
with ``ast``, so an import inside a function counts as much as one at the top: a cycle
cannot be hidden by moving an import into a function."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "fieldwork", "kpi", "surveys", "workspace")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    }


def imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports. Its own parent packages are left out: Python
    imports them before the module whatever it says."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    return {m for m in found if m in modules and m != name and m not in ancestors}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@functools.cache  # parsed once per run: the tests only read it
def project_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports(name, path, modules) for name, path in modules.items()}


def test_the_checker_finds_a_cycle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    source = "def f():\n    from kpi import models\n"
    tree_imports = [n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)]
    assert tree_imports == ["kpi"]  # ast.walk sees inside functions


def test_no_module_of_the_project_imports_itself_through_others():
    assert cycles(project_graph()) == []


def test_surveys_never_imports_kpi():
    graph = project_graph()
    wrong = {
        (name, other)
        for name, others in graph.items()
        if name.split(".")[0] == "surveys"
        for other in others
        if other.split(".")[0] == "kpi"
    }
    assert wrong == set()


def test_surveys_and_kpi_never_import_fieldwork():
    graph = project_graph()
    wrong = {
        (name, other)
        for name, others in graph.items()
        if name.split(".")[0] in {"surveys", "kpi"}
        for other in others
        if other.split(".")[0] == "fieldwork"
    }
    assert wrong == set()


def test_no_domain_app_imports_the_workspace():
    """The dashboard reads surveys, kpi and fieldwork; they never read it."""
    graph = project_graph()
    wrong = {
        (name, other)
        for name, others in graph.items()
        if name.split(".")[0] in {"surveys", "kpi", "fieldwork"}
        for other in others
        if other.split(".")[0] == "workspace"
    }
    assert wrong == set()
