"""The floor plan holds: every module imports only its own layer or the layers below it, and
everything imports under the one name ``dealersync`` (docs/architecture.md, "Layers").

Layers, lowest first: ``dealersync`` (ground: errors, config, privacy, runtime) -> ``schemas`` ->
``connectors`` and ``store`` (siblings, neither imports the other) -> ``resolution`` ->
``services`` -> ``flows`` -> ``cli``. ``sandbox`` stands apart: it imports the ground at most, so a bug
shared by the product's clients or store and the sandbox cannot hide on both sides. Function-local
imports count as much as module-level ones.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# folder on disk -> subpackage of dealersync ("" for the ground)
FOLDERS = {"dealersync": "", "schemas": "schemas", "connectors": "connectors", "store": "store",
           "resolution": "resolution", "services": "services", "flows": "flows", "cli": "cli",
           "sandbox": "sandbox"}

ALLOWED = {
    "": set(),
    "schemas": {""},
    "connectors": {"", "schemas"},
    "store": {"", "schemas"},
    "resolution": {"", "schemas", "store"},
    "services": {"", "schemas", "connectors", "store", "resolution"},
    "flows": {"", "schemas", "connectors", "store", "resolution", "services"},
    "cli": {"", "schemas", "connectors", "store", "resolution", "services", "flows", "sandbox"},
    "sandbox": {""},
}
OLD_NAMES = {name for name in FOLDERS if name != "dealersync"}


def _layer_of_module(dotted: str) -> str | None:
    """``dealersync.store.db`` -> ``store``; ``dealersync.errors`` -> ``""``; other packages -> None."""
    parts = dotted.split(".")
    if parts[0] != "dealersync":
        return None
    if len(parts) > 1 and parts[1] in ALLOWED and parts[1] != "":
        return parts[1]
    return ""


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # ``from dealersync import services`` names a subpackage: count it as that layer
            names = [f"{mod}.{a.name}" for a in node.names] if mod == "dealersync" else [mod]
            out += [(node.lineno, n) for n in names]
    return out


def _product_modules():
    for folder, sub in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            rel = path.relative_to(ROOT / folder).with_suffix("")
            package = ".".join(["dealersync"] + ([sub] if sub else []) + list(rel.parts[:-1]))
            yield path, sub, package


def test_every_layer_imports_only_downward():
    wrong = []
    for path, layer, package in _product_modules():
        for line, mod in _imports(path, package):
            target = _layer_of_module(mod)
            if target is None or target == layer:
                continue
            if target not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({layer or 'ground'}) imports {mod} "
                             f"({target or 'ground'})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


@pytest.mark.parametrize("tree", ["product", "tests", "bench"])
def test_one_import_name(tree):
    """No module imports a folder by its old top-level name (``from store.db import ...``)."""
    if tree == "product":
        files = [p for p, _, _ in _product_modules()]
    else:
        files = sorted((ROOT / tree).rglob("*.py"))
    wrong = []
    for path in files:
        for line, mod in _imports(path, "tests" if tree == "tests" else "bench"):
            if mod.split(".")[0] in OLD_NAMES and not (tree == "tests" and mod.startswith("tests")):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not wrong, "old top-level import names:\n" + "\n".join(wrong)


def test_the_check_catches_an_upward_import(tmp_path):
    """The walker itself: a schemas module importing a service is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from dealersync.services.ingest import ingest_file\n", encoding="utf-8")
    (line, mod), = _imports(bad, "dealersync.schemas")
    assert (line, mod) == (2, "dealersync.services.ingest")
    assert _layer_of_module(mod) not in ALLOWED["schemas"]
    rel = tmp_path / "rel.py"
    rel.write_text("from ..store import db\n", encoding="utf-8")
    assert _imports(rel, "dealersync.flows") == [(1, "dealersync.store")]
