"""`cvbench --help` starts without the heavy libraries: they load only inside the commands that use them.

Typer builds every command's options to show any help, so one module-level
``import torch`` anywhere under ``cvbench.cli`` costs every ``--help`` about
3 s. The time itself is measured by ``benchmarks/perf/startup.py`` (recorded in
docs/performance.md), not asserted here; what is asserted is the cause.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "timm", "faiss", "sklearn", "torchvision", "matplotlib", "pandas", "numba")

PROBE = """
import json, sys
import cvbench.cli
heavy = {heavy!r}
after_import = sorted(name for name in heavy if name in sys.modules)
try:
    cvbench.cli.main({args!r})
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps({{"import": after_import, "command": sorted(name for name in heavy if name in sys.modules)}}))
"""


@pytest.mark.parametrize("args", [("--help",), ("plugins", "--help"), ("run", "--help"), ("data", "check", "--help")])
def test_help_imports_no_heavy_library(args):
    """In a fresh interpreter: neither ``import cvbench.cli`` nor ``cvbench ARGS`` loads torch, timm, faiss, ..."""
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args), heavy=HEAVY)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"import": [], "command": []}


def test_the_public_api_still_loads_on_first_use():
    """``cvbench.create``, ``cvbench.Pretrainer``, ``cvbench.metrics`` are imported lazily (PEP 562), as the same
    objects the modules define, and ``import cvbench`` alone stays light."""
    probe = """
import sys
import cvbench
assert "torch" not in sys.modules, "import cvbench imported torch"
from cvbench.contract.pretrainer import Pretrainer
from cvbench.contract.registry import create
from cvbench.evaluation import metrics
import cvbench.metrics as moved
assert cvbench.Pretrainer is Pretrainer and cvbench.create is create
assert cvbench.metrics is metrics is moved and cvbench.metrics.recall is metrics.recall
assert {"create", "metrics", "Pretrainer", "__version__"} <= set(dir(cvbench)) and "Dataset" in cvbench.__all__
try:
    cvbench.no_such_name
except AttributeError as error:
    assert "no_such_name" in str(error)
else:
    raise AssertionError("cvbench.no_such_name resolved")
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
