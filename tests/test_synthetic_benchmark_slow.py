"""The synthetic world as a benchmark, end to end with the default preset (slow: run with -m slow).

The quality bar of the synthetic world: cross-area R@1 well above chance and
well below 100%, same-area easier than cross-area, and a colour-histogram
matcher far below the trained network.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from cvbench.metrics import recall
from cvbench_plugins.datasets.synthetic import Synthetic
from test_synthetic_baseline import colour_histograms

from cvbench.runs.runner import run
from cvbench.spec import RunSpec

pytestmark = pytest.mark.slow


def default_run(tmp_path, split: str) -> dict:
    run_dir = run(RunSpec(preset="default", pretrainer="none", split=split), tmp_path / split, quiet=True)
    return json.loads((run_dir / "result.json").read_text())["metrics"]


def test_default_preset_learns_cross_view_matching_and_histograms_do_not(tmp_path):
    cross = default_run(tmp_path, "cross_area")
    same = default_run(tmp_path, "same_area")
    chance_r1 = 100 / 1000
    assert 50 * chance_r1 < cross["R@1"] < 90
    assert same["R@1"] > cross["R@1"]
    pairs = Synthetic().load("cross_area", "val")
    histogram = recall(colour_histograms(np.asarray(pairs.ground.array)),
                       colour_histograms(np.asarray(pairs.aerial.array)), pairs.positives)
    assert histogram["R@1"] < cross["R@1"] / 5
