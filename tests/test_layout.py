"""The shape of the core, as docs/architecture.md describes it: packages whose names say where a change
goes, imports in one direction, small modules and functions, no private name used outside its module,
and an engine that names no feature. Pure: reads the source files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parent.parent / "shared"
# the one import direction: a package may import its own layer and the ones below, never above
LAYERS = {"__init__": 0, "model": 0, "config": 0, "clock": 0, "site_settings": 0, "site_credentials": 0, "clients": 1, "storage": 1, "services": 1, "context": 1,
          "intake": 2, "features": 2, "sync": 3, "subscriptions": 4, "jobs": 5, "ops": 5}
FEATURE_WORDS = ("teams", "agenda", "answers", "sensitivity", "join_url", "recognisable")
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 300, 50


def modules() -> list[Path]:
    return sorted(p for p in SHARED.rglob("*.py") if "__pycache__" not in p.parts)


def package_of(path: Path) -> str:
    return path.relative_to(SHARED).parts[0].removesuffix(".py")


def imported(path: Path) -> list[tuple[str, list[str]]]:
    """(the `shared` module each import names, its names) for every import in the file, lazy ones too."""
    tree, here = ast.parse(path.read_text()), path.relative_to(SHARED.parent).with_suffix("").parts
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[:len(here) - node.level])
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return [(m, names) for m, names in found if m == "shared" or m.startswith("shared.")]


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SHARED)))
def test_each_module_is_small_and_imports_downwards_only(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{lines} lines"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{node.name} is {length} lines"
    layer = LAYERS[package_of(path)]
    for module, names in imported(path):
        parts = module.split(".")
        if len(parts) > 1:
            assert LAYERS[parts[1]] <= layer, f"imports {module} from a higher layer"
        if parts[1:] and module != ".".join(path.relative_to(SHARED.parent).with_suffix("").parts):
            private = [n for n in names if n.startswith("_")]
            assert not private, f"imports private {private} from {module}"


@pytest.mark.parametrize("path", sorted((SHARED / "sync").glob("*.py")), ids=lambda p: p.name)
def test_the_engine_names_no_feature(path):
    for module, _ in imported(path):
        assert module in ("shared.features.base", "shared.features.registry") or not module.startswith(
            "shared.features"), f"imports {module}"
    words = set(re.findall(r"[a-z_]+", path.read_text().lower()))
    assert not words & set(FEATURE_WORDS)
