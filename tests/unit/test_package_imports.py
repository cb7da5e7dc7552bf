"""The packages' import graph: no two packages import each other (`make lint` runs this), so
each package's place in the layers stays clear."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("orchestrator_service", "store_service", "clients")


def _package_of(path: Path) -> str:
    """`service.package` for a module inside a package, `service` for one at the service's top."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


def _imported(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _package_named(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] not in SERVICES or len(parts) < 2 or not (ROOT / parts[0] / parts[1]).is_dir():
        return None
    return ".".join(parts[:2])


def package_edges() -> set[tuple[str, str]]:
    """(importer, imported) for every import between two packages of the services."""
    edges = set()
    for service in SERVICES:
        for path in (ROOT / service).rglob("*.py"):
            source = _package_of(path)
            for module in _imported(ast.parse(path.read_text(), str(path))):
                target = _package_named(module)
                if target is not None and target != source:
                    edges.add((source, target))
    return edges


def package_loops(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, b in edges if a < b and (b, a) in edges}


def test_no_two_packages_import_each_other() -> None:
    assert package_loops(package_edges()) == set()


def test_a_loop_is_seen() -> None:
    edges = {("x.a", "x.b"), ("x.b", "x.a"), ("x.a", "x.c")}
    assert package_loops(edges) == {("x.a", "x.b")}
