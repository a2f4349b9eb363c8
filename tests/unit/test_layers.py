"""Imports in `app/` run one way: no module imports a layer above its own, and nothing under the HTTP layer
imports FastAPI (the layer order is the README's "How it is built")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"

# Lowest first; a module may import its own layer and those below it.
LAYERS: list[tuple[str, ...]] = [
    ("app", "app.config", "app.errors", "app.text", "app.identifiers", "app.documents", "app.metrics", "app.network"),
    ("app.models", "app.schemas"),
    ("app.db", "app.reads", "app.db_errors", "app.caching"),
    ("app.services",),
    ("app.runtime",),
    (
        "app.http_errors",
        "app.middleware",
        "app.observe",
        "app.openapi",
        "app.deps",
        "app.routers",
        "app.mcp_server",
        "app.mcp_exchange",
        "app.main",
        "app.cli",
        "app.cli_failures",
    ),
]
HTTP_LAYER = len(LAYERS) - 1


def layer_of(module: str) -> int | None:
    """The layer of the longest prefix naming `module` (or a package above it)."""
    best: tuple[int, int] | None = None
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (rank, len(prefix))
    return None if best is None else best[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = sorted(APP.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    assert [module_name(path) for path in MODULES if layer_of(module_name(path)) is None] == []


@pytest.mark.parametrize("path", MODULES, ids=lambda path: module_name(path))
def test_imports_run_downward(path: Path) -> None:
    module = module_name(path)
    own = layer_of(module)
    assert own is not None
    names = imported(ast.parse(path.read_text(encoding="utf-8")))
    upward = sorted(name for name in names if name.startswith("app") and (layer_of(name) or 0) > own)
    assert upward == [], f"{module} imports a layer above its own"
    if own < HTTP_LAYER - 1:  # the runtime may know FastAPI's types; nothing below it does
        frameworks = sorted(name for name in names if name.split(".")[0] in {"fastapi", "starlette"})
        assert frameworks == [], f"{module} imports the HTTP framework"


def test_the_check_sees_an_upward_import() -> None:
    """The rule is not vacuous: a service importing the runtime, or a model importing a service, is caught."""
    assert layer_of("app.runtime") > layer_of("app.services.plugins.writes")  # type: ignore[operator]
    assert layer_of("app.services.cache") is not None
    assert layer_of("app.services.plugins") > layer_of("app.models.plugin")  # type: ignore[operator]
    assert imported(ast.parse("from app.runtime import Runtime")) >= {"app.runtime", "app.runtime.Runtime"}
