"""The synthetic generator's output is byte-identical to the record made before it was sped up.

``tests/data/synthetic_hashes.json`` holds the SHA-256 of every array and
metadata table of a few option sets, written by ``tests/data/synthetic_hashes.py``
from the generator as committed before issue 20 (see that script). A faster
generator must reproduce each byte; one that cannot must bump
``GENERATOR_VERSION`` and rewrite the record.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from cvbench_plugins.datasets.synthetic.options import GENERATOR_VERSION

DATA = Path(__file__).parent / "data"
PACKAGE = "cvbench_plugins.datasets.synthetic"


def _hashes_module():
    spec = importlib.util.spec_from_file_location("synthetic_hashes", DATA / "synthetic_hashes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HASHES = _hashes_module()
RECORD = json.loads((DATA / "synthetic_hashes.json").read_text())
FAST = [name for name, case in HASHES.CASES.items() if not case.get("slow")]
SLOW = [name for name, case in HASHES.CASES.items() if case.get("slow")]


def test_record_is_of_this_generator_version():
    assert RECORD["generator_version"] == GENERATOR_VERSION
    assert set(RECORD["cases"]) == set(HASHES.CASES)


@pytest.mark.parametrize("name", FAST)
def test_small_worlds_are_byte_identical_to_the_record(name):
    assert HASHES.case_hashes(PACKAGE, HASHES.CASES[name], workers=2) == RECORD["cases"][name]


def test_output_does_not_depend_on_the_number_of_workers():
    # The test above builds the cities in two worker processes; here all in this one.
    case = HASHES.CASES["five_styles_small"]
    assert HASHES.case_hashes(PACKAGE, case, workers=1) == RECORD["cases"]["five_styles_small"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_full_size_worlds_are_byte_identical_to_the_record(name):
    assert HASHES.case_hashes(PACKAGE, HASHES.CASES[name]) == RECORD["cases"][name]
