"""The harness is layered: each package imports only itself and the packages below it.

The order is the one ``cvbench/__init__.py`` states, bottom first; a new
module that reaches up (``data`` importing ``runs``, say) fails here, naming
the import, instead of growing a cycle that a reader has to untangle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cvbench

HARNESS = Path(cvbench.__file__).parent
LAYERS = [
    {"errors", "atomic", "progress"},
    {"nn"},
    {"data"},
    {"contract"},
    {"spec"},
    {"evaluation"},
    {"training"},
    {"runs"},
    {"inference"},
    {"bench"},
    {"analysis"},
    {"html_report"},
    {"cli"},
    # cvbench.testing builds and feeds plugins as the engine does (contract, data, nn); it is public API for plugin
    # authors' tests, which nothing in the harness imports, so it sits at the top with the package itself.
    {"__init__", "__main__", "testing"},
]


def layer_of(part: str) -> int:
    for level, names in enumerate(LAYERS):
        if part in names:
            return level
    raise AssertionError(f"cvbench/{part} is in no layer of this test; add it to LAYERS (and to cvbench/__init__.py)")


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every cvbench import in ``path``, relative ones resolved; nested ones too."""
    parts = ["cvbench", *path.relative_to(HARNESS).with_suffix("").parts]
    package = parts if path.name == "__init__.py" else parts[:-1]
    if path.name == "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names = [f"{module}.{alias.name}" for alias in node.names]  # a name may be a module of that package
            found += [(node.lineno, name) for name in names if name.startswith("cvbench.")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("cvbench.")]
    return found


def test_the_scanner_resolves_relative_imports():
    found = {name for _, name in imports(HARNESS / "runs" / "runner.py")}
    assert {"cvbench.training.finetune.finetune", "cvbench.runs.folder.RunFolder", "cvbench.nn.distributed"} <= found


def test_every_import_points_down_or_stays_in_its_package():
    wrong = []
    for path in sorted(HARNESS.rglob("*.py")):
        own = path.relative_to(HARNESS).with_suffix("").parts[0]
        for line, name in imports(path):
            target = name.split(".")[1]
            if target == own or target == "__init__":
                continue
            if layer_of(target) > layer_of(own) or (layer_of(target) == layer_of(own) and own not in LAYERS[0]):
                wrong.append(f"cvbench/{path.relative_to(HARNESS)}:{line} imports {name}")
    assert not wrong, "imports that point up the layers:\n" + "\n".join(wrong)


def test_the_import_paths_of_the_flat_layout_are_the_moved_modules():
    """A plugin written against cvbench 0.1 imports ``cvbench.layout`` and friends; they are the grouped modules."""
    import importlib
    import subprocess
    import sys

    for old, new in cvbench.MOVED_MODULES.items():
        assert importlib.import_module(f"cvbench.{old}") is importlib.import_module(f"cvbench.{new}"), old
    # in a fresh interpreter, the old paths as a plugin module's first imports
    code = ("from cvbench.layout import require_layout\nfrom cvbench.problems import report_problem\n"
            "from cvbench.hookspecs import hookimpl\nfrom cvbench.options import require_int\n"
            "import cvbench.distributed, cvbench.augment\nimport cvbench.data.layout as new\n"
            "assert require_layout is new.require_layout and cvbench.distributed.concat_all_gather")
    subprocess.run([sys.executable, "-c", code], check=True)
