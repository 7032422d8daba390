"""The import layers of DESIGN.md section 2, checked from the source: nothing imports upward, and
no two parts import each other (function-level imports count: a lazy import is still a dependency).

    cli -> report / export -> run -> backends, scoring, tasks, contamination, catalog -> store -> base
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "evalkit"
# Lower number = lower layer. Parts of one layer may import each other, but not in a circle.
LAYER = {
    "__main__": 6,  # `python -m evalkit`: the entry point above the CLI
    "cli": 5,
    "report": 4,
    "export": 4,
    "run": 3,
    "backends": 2,
    "scoring": 2,
    "tasks": 2,
    "contamination": 2,
    "catalog": 2,
    "store": 1,
}
BASE = 0  # types, errors, secrets and the other single-file utilities at the top of the package


def part_of(module: str) -> str:
    """'evalkit.run.runner' -> 'run'; 'evalkit.types' -> 'types'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(part: str) -> int:
    return LAYER.get(part, BASE)


def module_name(path: Path, pkg: Path = PKG) -> str:
    rel = path.relative_to(pkg.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, pkg: Path = PKG) -> set[str]:
    """Every evalkit module that ``path`` imports, at any depth of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path, pkg)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    out = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("evalkit")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("evalkit"):
                out.add(mod)
                out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (names for the type checker, never imported)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def source_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in imports_of(path) if m in modules and m != name}
    return graph


def test_nothing_imports_upward() -> None:
    upward = []
    for mod, deps in source_graph().items():
        for dep in deps:
            a, b = part_of(mod), part_of(dep)
            if a != b and layer_of(b) > layer_of(a):
                upward.append(f"{mod} ({a}, layer {layer_of(a)}) imports {dep} ({b}, layer {layer_of(b)})")
    assert not upward, "imports against the layers of DESIGN.md:\n" + "\n".join(sorted(upward))


def test_no_two_parts_import_each_other() -> None:
    parts: dict[str, set[str]] = defaultdict(set)
    for mod, deps in source_graph().items():
        for dep in deps:
            if part_of(mod) != part_of(dep):
                parts[part_of(mod)].add(part_of(dep))
    circles = sorted(f"{a} <-> {b}" for a in parts for b in parts[a] if a < b and a in parts.get(b, set()))
    assert not circles, f"parts that import each other: {circles}"


def test_no_module_import_circle() -> None:
    graph = source_graph()
    # A package's __init__ importing its own submodules (to register them) is not a circle.
    for mod in graph:
        graph[mod] = {d for d in graph[mod] if not d.startswith(mod + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                found.append(stack[stack.index(d) :] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found[:10])


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    # The layer test must be able to fail: a scoring module importing the runner is caught.
    f = tmp_path / "evalkit" / "scoring" / "bad.py"
    f.parent.mkdir(parents=True)
    f.write_text("def f():\n    from evalkit.run.runner import run_evaluation\n")
    assert "evalkit.run.runner" in imports_of(f, tmp_path / "evalkit")
    g = tmp_path / "evalkit" / "scoring" / "rel.py"
    g.write_text("from ..run import runner\n")
    assert "evalkit.run.runner" in imports_of(g, tmp_path / "evalkit")
    h = tmp_path / "evalkit" / "scoring" / "typed.py"
    h.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from evalkit.run import runner\n")
    assert not imports_of(h, tmp_path / "evalkit")
