"""The library's boundaries (DESIGN section 5): ``rbsf`` imports none of the packages built on
it, and its modules import each other without a cycle."""
import ast
from pathlib import Path
from typing import Dict, Set

REPO = Path(__file__).resolve().parents[1]
OUTSIDE = ("trackers", "tools", "benchmarks", "experiments")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> Set[str]:
    """Modules imported by ``path``: every import, or those run when the module loads."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _library() -> Dict[str, Path]:
    return {_module_name(p): p for p in (REPO / "rbsf").rglob("*.py")}


def test_library_imports_nothing_built_on_it():
    offenders = {name: sorted(m for m in _imports(path, top_level_only=False)
                              if m.split(".")[0] in OUTSIDE)
                 for name, path in _library().items()}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_import_cycle_inside_the_library():
    modules = _library()
    graph = {name: {m for m in _imports(path, top_level_only=False) if m in modules and m != name}
             for name, path in modules.items()}
    # a package's __init__ importing its own submodules is how packages work, not a cycle
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    state: Dict[str, int] = {}

    def visit(node: str, trail: list) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail + [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
