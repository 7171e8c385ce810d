"""The package's layers import downward only (issue #22's first point), checked over `ast`.

Every `import` and `from ... import` in gunicorn_async_workers and gaw, at module level,
inside functions and under `if TYPE_CHECKING:` alike, is resolved to the layer it names.
A module may import its own layer's modules and any layer below its own, never one above.
`python -m tests.unit.test_import_layers` prints the graph of imports between modules.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "gunicorn_async_workers"
# Top to bottom. A module's layer is the first whose prefix names it (longest first).
LAYERS: list[tuple[str, ...]] = [
    ("gaw", f"{PACKAGE}.settings_table", PACKAGE),  # the entry points
    (f"{PACKAGE}.workers",),
    # (Prometheus: the arbiter's setup, the worker's files and the scrape's route.)
    (f"{PACKAGE}.server", f"{PACKAGE}.boot_check", f"{PACKAGE}.tls", f"{PACKAGE}.prometheus"),
    (f"{PACKAGE}.asgi", f"{PACKAGE}.wsgi"),
    # (With the Prometheus tally: what the recorder and the WebSocket sessions count in.)
    (f"{PACKAGE}.accesslog", f"{PACKAGE}.access_log_json", f"{PACKAGE}.prometheus.tally"),
    (f"{PACKAGE}.http",),
    # Declarations only: the options, and the ASGI messages' TypedDicts (which the access
    # log's records read too).
    (f"{PACKAGE}.config", f"{PACKAGE}.asgi.types"),
]
# Beside each other in one layer, and never importing each other.
INDEPENDENT = [(f"{PACKAGE}.asgi", f"{PACKAGE}.wsgi")]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            # The package itself is a layer by its __init__ alone: a module it holds must be
            # named by a layer of its own (else it has none, and the first test fails).
            inside = module.startswith(prefix + ".") and prefix != PACKAGE
            if (module == prefix or inside) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def imports_of(path: Path, *, runtime: bool = False) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in a file, relative ones resolved; with `runtime`,
    not those under `if TYPE_CHECKING:` (for types only, never executed)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return imports_in(path.read_text(), package, runtime=runtime)


def _nodes(node: ast.AST, runtime: bool) -> Iterator[ast.AST]:
    if (runtime and isinstance(node, ast.If) and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"):
        for child in node.orelse:
            yield from _nodes(child, runtime)
        return
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _nodes(child, runtime)


def imports_in(source: str, package: str, *,
               runtime: bool = False) -> Iterator[tuple[int, str]]:
    for node in _nodes(ast.parse(source), runtime):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or node.level and not node.module:
                # `from . import x`: each name may be a module of that package
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"
            else:
                yield node.lineno, target


def own_modules() -> list[Path]:
    return sorted([*(ROOT / PACKAGE).rglob("*.py"), *(ROOT / "gaw").rglob("*.py")])


def graph(*, runtime: bool = False) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in own_modules():
        source = module_name(path)
        edges.setdefault(source, set())
        for _line, target in imports_of(path, runtime=runtime):
            if layer_of(target) is not None and target != source:
                edges[source].add(target)
    return edges


def test_every_module_has_a_layer() -> None:
    assert [module_name(p) for p in own_modules() if layer_of(module_name(p)) is None] == []
    assert layer_of(f"{PACKAGE}.metrics") is None  # a new module must be given its layer


def test_imports_go_downward_only() -> None:
    upward = []
    for path in own_modules():
        source = module_name(path)
        own = layer_of(source)
        assert own is not None
        for line, target in imports_of(path):
            theirs = layer_of(target)
            if theirs is not None and theirs < own:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
            for left, right in INDEPENDENT:
                for a, b in ((left, right), (right, left)):
                    if (source == a or source.startswith(a + ".")) and (
                            target == b or target.startswith(b + ".")):
                        upward.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert upward == []


def test_http_knows_nothing_above_it() -> None:
    """The parsers, framing and connection import only http/ and config."""
    above = [f"{module_name(p)} imports {target}"
             for p in (ROOT / PACKAGE / "http").rglob("*.py")
             for _line, target in imports_of(p)
             if target.startswith(PACKAGE + ".") and not target.startswith(
                 (f"{PACKAGE}.http", f"{PACKAGE}.config"))]
    assert above == []


def test_no_import_cycle() -> None:
    """No circle of imports that run (one module naming another's class for a type, under
    `if TYPE_CHECKING:`, inside one layer, is no circle: it never executes)."""
    edges = graph(runtime=True)
    state: dict[str, int] = {}  # 1 on the path, 2 done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if nxt not in edges:  # a name imported from a module, not a module
                continue
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    # A package's __init__ importing its submodules is no cycle of layers.
    real = [c for c in cycles if not any(a.startswith(b + ".") or b.startswith(a + ".")
                                         for a, b in zip(c, c[1:], strict=False))]
    assert real == []


@pytest.mark.parametrize("module,layer", [
    (f"{PACKAGE}.http.protocol", 5),
    (f"{PACKAGE}.asgi.bridge", 3),
    (f"{PACKAGE}.wsgi.bridge", 3),
    (f"{PACKAGE}.server", 2),
    ("gaw", 0),
])
def test_layers_are_as_documented(module: str, layer: int) -> None:
    assert layer_of(module) == layer


def test_the_check_sees_an_upward_import_under_type_checking() -> None:
    """The form the old circle took: http/protocol.py importing the server for a type."""
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from ..server import Server\n"
              "def late():\n    from .. import server\n")
    found = [target for _line, target in imports_in(source, f"{PACKAGE}.http")]
    assert found == ["typing", f"{PACKAGE}.server", f"{PACKAGE}.server"]
    assert all(layer_of(t) == 2 for t in found[1:])  # above http's layer (5)
    runtime = [target for _line, target in imports_in(source, f"{PACKAGE}.http", runtime=True)]
    assert runtime == ["typing", f"{PACKAGE}.server"]


if __name__ == "__main__":
    # The graph of imports between our modules (all of them; `--runtime`: not type-only).
    for source, targets in sorted(graph(runtime="--runtime" in sys.argv).items()):
        sys.stdout.write(f"{source} -> {', '.join(sorted(targets)) or '-'}\n")
