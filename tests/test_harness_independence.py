"""The harness never names a built-in method or dataset: they are plugins like any other."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import cvbench
import cvbench.nn

HARNESS = Path(cvbench.__file__).parent


def harness_sources() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in HARNESS.rglob("*.py")}


def test_harness_imports_no_plugin_module():
    for path, text in harness_sources().items():
        assert not re.search(r"^\s*(from|import)\s+cvbench_plugins", text, re.M), path


def test_harness_names_no_built_in_method_or_dataset(registry):
    names = cvbench.plugins()
    built_in = {name for kind in ("pretrainer", "head", "loss", "dataset") for name in names[kind]}
    # harness API that shares a plugin's name: metrics.uniformity, nn.infonce (the MoCo loss the plugins build on)
    built_in -= {name for name in built_in if hasattr(cvbench.metrics, name) or hasattr(cvbench.nn, name)}
    for path, text in harness_sources().items():
        for name in built_in:
            assert not re.search(rf"""["']{re.escape(name)}["']""", text), f"{path} names {name!r}"


PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports, relative imports resolved against its package."""
    package = ["cvbench_plugins", *path.relative_to(PLUGINS).with_suffix("").parts]
    package = package if path.name == "__init__.py" else package[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            names.add(".".join([*base, *([node.module] if node.module else [])]))
    return names


def test_the_imports_scanner_resolves_relative_imports():
    assert _imported_modules(PLUGINS / "pretrainers" / "mocov2.py") >= {"cvbench.nn", "cvbench_plugins.pretrainers.projection"}


def test_plugins_import_no_other_plugin_package():
    """Built-in plugins share code only through the harness (``cvbench.nn``, ``cvbench.contract.options``, ...), as a third
    party's package must: a kind's package (pretrainers, losses, ...) imports no other kind's."""
    sources = sorted(PLUGINS.rglob("*.py"))
    assert len(sources) > 20
    for path in sources:
        kind = path.relative_to(PLUGINS).parts[0]
        own = f"cvbench_plugins.{kind.removesuffix('.py')}"
        for name in _imported_modules(path):
            if name.startswith("cvbench_plugins.") or name == "cvbench_plugins":
                assert name == own or name.startswith(own + "."), f"{path.relative_to(PLUGINS)} imports {name}"
