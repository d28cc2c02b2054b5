"""The floor plan holds: every module imports only its own layer or the layers below it, and
everything imports under the one name ``dealersync`` (docs/architecture.md, "Layers").

Layers, lowest first: ``dealersync`` (ground: errors, config, privacy, runtime) -> ``schemas`` ->
``connectors`` and ``store`` (siblings, neither imports the other) -> ``resolution`` ->
``services`` -> ``flows`` -> ``cli``. ``sandbox`` stands apart: it imports the ground at most, so a bug
shared by the product's clients or store and the sandbox cannot hide on both sides. Function-local
imports count as much as module-level ones, and so do imports by a string literal
(``__import__("x")``, ``importlib.import_module("x")``).

Prefect (``prefect``, ``prefect_*``) is imported only by ``flows`` and ``cli`` (``dealersync serve``):
the ground, schemas, connectors, store, resolution, services and the sandbox run without it.
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
PREFECT_LAYERS = {"flows", "cli"}   # the only layers that may import prefect or a prefect_* package


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
        dynamic = _dynamic_import(node)
        if dynamic is not None:
            level = len(dynamic) - len(dynamic.lstrip("."))
            if level:   # import_module(".x", package): relative to this module's package
                base = package.split(".")
                dynamic = ".".join(base[: len(base) - (level - 1)] + [p for p in [dynamic[level:]] if p])
            out.append((node.lineno, dynamic))
        elif isinstance(node, ast.Import):
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


def _dynamic_import(node) -> str | None:
    """The module named by a string literal in ``__import__("m")`` or ``importlib.import_module("m")``
    (also ``import_module("m")`` imported by name); None for anything else."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)):
        return None
    f = node.func
    name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
    return node.args[0].value if name in ("__import__", "import_module") else None


def _is_prefect(mod: str) -> bool:
    top = mod.split(".")[0]
    return top == "prefect" or top.startswith("prefect_")


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


def test_prefect_only_in_flows_and_cli():
    """Services, store, schemas, connectors, resolution, the ground and the sandbox are Prefect-free."""
    wrong = [f"{path.relative_to(ROOT)}:{line} ({layer or 'ground'}) imports {mod}"
             for path, layer, package in _product_modules()
             for line, mod in _imports(path, package)
             if _is_prefect(mod) and layer not in PREFECT_LAYERS]
    assert not wrong, "Prefect outside flows/ and cli/:\n" + "\n".join(wrong)


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


def test_the_check_catches_prefect_below_the_flows(tmp_path):
    """The walker itself: prefect and a prefect_* package, statically or by a string, are reported
    outside flows/ and cli/ (a service is not), and allowed in the flows."""
    bad = tmp_path / "bad.py"
    bad.write_text("import prefect\nfrom prefect.states import Failed\n"
                   "def f():\n    from prefect_sqlalchemy import SqlAlchemyConnector\n"
                   "    import importlib\n    importlib.import_module('prefect.blocks')\n"
                   "    __import__('prefect_shell')\n", encoding="utf-8")
    got = [(line, mod) for line, mod in _imports(bad, "dealersync.services") if _is_prefect(mod)]
    assert sorted(got) == [(1, "prefect"), (2, "prefect.states"), (4, "prefect_sqlalchemy"),
                           (6, "prefect.blocks"), (7, "prefect_shell")]
    assert "services" not in PREFECT_LAYERS and "flows" in PREFECT_LAYERS and "cli" in PREFECT_LAYERS
    assert not _is_prefect("prefectural") and not _is_prefect("dealersync.flows.prefect_server")


def test_the_check_catches_a_string_import(tmp_path):
    """The walker itself: ``__import__`` and ``importlib.import_module`` with a literal are imports
    (absolute and relative); a computed name is not guessed at."""
    bad = tmp_path / "bad.py"
    bad.write_text("import importlib\nfrom importlib import import_module\n"
                   "m = __import__('dealersync.services.ingest')\n"
                   "n = importlib.import_module('dealersync.flows.common')\n"
                   "o = import_module('..store.db', __package__)\n"
                   "p = importlib.import_module(name)\n", encoding="utf-8")
    got = sorted(_imports(bad, "dealersync.schemas"))
    assert got == [(1, "importlib"), (2, "importlib"), (3, "dealersync.services.ingest"),
                   (4, "dealersync.flows.common"), (5, "dealersync.store.db")]
    assert all(_layer_of_module(m) not in ALLOWED["schemas"] for _, m in got[2:4])
