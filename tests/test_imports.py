"""The import graph of src/opstatus: no loops, and every layer imports only the ones below it.

The graph is read from the source with :mod:`ast`, without importing anything, so an import
hidden in a function body or under ``if TYPE_CHECKING:`` counts like any other. Both are
included on purpose: deferring an import or making it type-only keeps the interpreter from
tripping over a loop but leaves the loop in the design (two modules that each need the other
to be understood), and a layer that names a higher layer's types in annotations still depends
on it; mypy follows those imports too.

An edge goes to the module an import statement makes Python load: ``from . import x`` and
``from .pkg import x`` to the submodule ``x`` where there is one, otherwise to the package
(whose ``__init__`` defines the name). A package's ``__init__`` running before its submodules
is not counted as an edge, or every module would loop through ``opstatus/__init__.py``.

The layers, top to bottom: cli -> server -> http -> service -> stores/auth -> models.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

Graph = dict[str, set[str]]


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under ``root`` (the folder holding the
    top-level package)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _base_package(module: str, path: Path, level: int) -> str:
    """The package a relative import of ``level`` dots in ``module`` starts from."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return package


def imports_of(module: str, path: Path, modules: Iterable[str]) -> tuple[set[str], set[str]]:
    """The modules of ``modules`` that ``module`` imports, and the top-level names of the
    outside packages it imports."""
    known = set(modules)
    internal: set[str] = set()
    external: set[str] = set()

    def add(name: str) -> None:
        # `import a.b.c` loads a.b.c; a name that is no module of ours is an outside package.
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            internal.add(name)

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in {m.split(".")[0] for m in known}:
                    add(alias.name)
                else:
                    external.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _base_package(module, path, node.level)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
                if target.split(".")[0] not in {m.split(".")[0] for m in known}:
                    external.add(target.split(".")[0])
                    continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                add(submodule if submodule in known else target)
    internal.discard(module)
    return internal, external


def build_graph(root: Path) -> tuple[Graph, dict[str, set[str]]]:
    """Internal import edges and outside imports of every module under ``root``."""
    modules = module_names(root)
    graph: Graph = {}
    outside: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name], outside[name] = imports_of(name, path, modules)
    return graph, outside


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle through each group of modules that import each other (Tarjan's strongly
    connected components), each as a path that starts and ends on the same module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(graph, set(component)) for component in components]


def _cycle_in(graph: Graph, component: set[str]) -> list[str]:
    """The shortest loop from the component's first module (by name) back to itself."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & component):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no loop in {sorted(component)}")  # pragma: no cover


GRAPH, OUTSIDE = build_graph(SRC)


def _is_cli(module: str) -> bool:
    part = module.split(".")[1] if module.count(".") else ""
    return part == "cli" or part.startswith("cli_")


def _in(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _is_server(module: str) -> bool:
    return _in(module, "opstatus.server")


def _is_http(module: str) -> bool:
    return _in(module, "opstatus.http")


def _violations(importer: Callable[[str], bool], imported: Callable[[str], bool]) -> list[str]:
    return sorted(
        f"{a} imports {b}"
        for a, targets in GRAPH.items()
        if importer(a)
        for b in targets
        if imported(b)
    )


def test_the_graph_is_read() -> None:
    """The edges the other tests rely on are found: relative, ``from . import x``, absolute."""
    assert "opstatus.cli" in GRAPH and "opstatus.client._sync" in GRAPH
    assert "opstatus.models" in GRAPH["opstatus.client._base"]  # from ..models import
    assert "opstatus.http.audit" in GRAPH["opstatus.http.guard"]  # from . import audit
    assert "opstatus.cli_operations" in GRAPH["opstatus.cli"]
    assert "uvicorn" in OUTSIDE["opstatus.server.running"]


def test_a_loop_is_found(tmp_path: Path) -> None:
    """The checker itself: a loop through ``from . import x`` and a lazy import is reported."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .b import B\n")
    (package / "a.py").write_text("from .sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from ..a import x\nB = 1\n")
    (package / "c.py").write_text("import pkg.a\nfrom pkg import sub\n")
    graph, _ = build_graph(tmp_path)
    assert graph["pkg.c"] == {"pkg.a", "pkg.sub"}
    assert find_cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.a"]]


def test_no_module_imports_itself_back() -> None:
    cycles = find_cycles(GRAPH)
    assert not cycles, "import loops:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_http_knows_neither_server_nor_cli() -> None:
    assert _violations(_is_http, lambda m: _is_cli(m) or _is_server(m)) == []


def test_the_server_knows_no_cli() -> None:
    assert _violations(_is_server, _is_cli) == []


@pytest.mark.parametrize(
    "layer", ["opstatus.service", "opstatus.stores", "opstatus.auth", "opstatus.models"]
)
def test_the_core_knows_neither_http_server_nor_cli(layer: str) -> None:
    higher = lambda m: _is_http(m) or _is_server(m) or _is_cli(m)  # noqa: E731
    assert _violations(lambda m: _in(m, layer), higher) == []


def test_only_the_server_imports_uvicorn() -> None:
    found = sorted(m for m, names in OUTSIDE.items() if "uvicorn" in names and not _is_server(m))
    assert found == []
