"""The packages' import graph (issue 24): no two packages import each other, but for the loops
still listed in KNOWN_LOOPS, which only shrink. A new loop fails here; a loop removed fails here
too until it leaves the list, so the list always says what is left."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("orchestrator_service", "store_service", "clients")
# Left by issue 24's restructuring (run kinds, one write path), each named once, in order.
KNOWN_LOOPS = {
    ("orchestrator_service.agents", "orchestrator_service.git"),
    ("orchestrator_service.controllers", "orchestrator_service.review"),
    ("orchestrator_service.conversations", "orchestrator_service.review"),
}


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


def test_no_package_loop_but_the_known_ones() -> None:
    assert package_loops(package_edges()) == KNOWN_LOOPS


def test_a_loop_is_seen() -> None:
    edges = {("x.a", "x.b"), ("x.b", "x.a"), ("x.a", "x.c")}
    assert package_loops(edges) == {("x.a", "x.b")}
