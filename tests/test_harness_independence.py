"""The harness never names a built-in method or dataset: they are plugins like any other."""

from __future__ import annotations

import re
from pathlib import Path

import cvbench

HARNESS = Path(cvbench.__file__).parent


def harness_sources() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in HARNESS.rglob("*.py")}


def test_harness_imports_no_plugin_module():
    for path, text in harness_sources().items():
        assert not re.search(r"^\s*(from|import)\s+cvbench_plugins", text, re.M), path


def test_harness_names_no_built_in_method_or_dataset(registry):
    names = cvbench.plugins()
    built_in = {name for kind in ("pretrainer", "head", "loss", "dataset") for name in names[kind]}
    built_in -= {name for name in built_in if hasattr(cvbench.metrics, name)}  # metrics.uniformity is the API
    for path, text in harness_sources().items():
        for name in built_in:
            assert not re.search(rf"""["']{re.escape(name)}["']""", text), f"{path} names {name!r}"
