"""Third-party packages against the contract: a new metric kind, and a package that subclasses nothing.

Both are installed as pip leaves a distribution (a module and its
``.dist-info`` with a ``cvbench`` entry point) and driven through the CLI in
a fresh interpreter, as a user would.
"""

from __future__ import annotations

import json

from conftest import cli, make_distribution, run_cli

METRIC_PACKAGE = """
import numpy as np
import cvbench
from cvbench.hookspecs import hookimpl


class MedianRank(cvbench.Metric):
    '''Median rank of the true match, counted from 1 (lower is better).'''

    def __call__(self, retrieval):
        ranks = cvbench.metrics.ranks(retrieval.query, retrieval.reference, retrieval.positives)
        return {"MedR": float(np.median(ranks) + 1), "queries_seen": float(len(retrieval.query))}


@hookimpl
def register_metrics(register):
    register("median_rank", MedianRank)
"""

GRID = """
[bench]
title = "a metric from a plugin"
seeds = [0]

[defaults]
preset = "smoke"
metrics = ["recall", "uniformity", "median_rank"]
data_options = { train_pairs = 160, val_pairs = 160 }

[[rows]]
name = "plain"
"""


def test_a_third_party_metric_is_recorded_and_becomes_a_column(tmp_path):
    site = make_distribution(tmp_path / "site", "acme-metrics", "acme_metrics", METRIC_PACKAGE,
                             {"acme_metrics": "acme_metrics"})
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    runs, report = tmp_path / "runs", tmp_path / "report.md"
    result = run_cli("bench", str(grid), "--runs-dir", str(runs), "--report", str(report), "--quiet", site=site)
    assert result.returncode == 0, result.stderr
    (record_path,) = runs.rglob("result.json")
    record = json.loads(record_path.read_text())
    assert record["status"] == "finished" and record["spec"]["metrics"] == ["recall", "uniformity", "median_rank"]
    assert record["metrics"]["queries_seen"] == record["num_queries"]
    assert 1 <= record["metrics"]["MedR"] <= record["num_references"]
    assert set(record["uniformity"]["after"]) == {"ground", "satellite", "all"}

    board = cli("leaderboard", str(runs), "--format", "csv", site=site)
    assert board.returncode == 0, board.stderr
    header, row = board.stdout.strip().splitlines()[:2]
    columns = header.split(",")
    assert columns.index("R@1") < columns.index("MedR")  # built-in recall first, in the selected order
    assert float(row.split(",")[columns.index("MedR")]) == record["metrics"]["MedR"]

    header, _, *cells = next(block for block in _tables(report.read_text()) if "MedR" in block[0])
    (cell,) = cells  # one row, one seed: the mean is the run's value
    assert float(cell[header.index("MedR")]) == record["metrics"]["MedR"]
    assert header.index("R@1") < header.index("MedR")


def _tables(markdown: str) -> list[list[list[str]]]:
    """Each markdown table of a page as rows of stripped cells (the separator row included)."""
    tables, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            current.append([cell.strip() for cell in line.strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


def test_an_unknown_metric_fails_before_any_work(tmp_path):
    result = cli("run", "--preset", "smoke", "--metric", "recal", "--runs-dir", str(tmp_path / "runs"), "-q")
    assert result.returncode != 0
    assert "unknown metric 'recal'" in result.stderr and "did you mean 'recall'" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


OLD_CONTRACT_PACKAGE = """
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cvbench.data import ArrayImages, CrossViewPairs
from cvbench.hookspecs import hookimpl


def log(event):
    with open(os.environ["ACME_LOG"], "a") as handle:
        handle.write(event + "\\n")


class GridPairs:
    '''48 pairs of random colour grids: the tile from above, the panorama unrolled.'''

    def __init__(self, root=None, size=48):
        self.size = int(size)

    def splits(self):
        return ["grid"]

    def load(self, split, subset):
        if split != "grid" or subset not in ("train", "val"):
            raise ValueError(f"no {split}/{subset}")
        rng = np.random.default_rng(subset == "val")
        grids = rng.integers(0, 256, (self.size, 4, 4, 3), dtype=np.uint8)
        tiles = grids.repeat(16, axis=1).repeat(16, axis=2)
        panos = grids.reshape(self.size, 1, 16, 3).repeat(32, axis=1).repeat(8, axis=2)
        return CrossViewPairs(ArrayImages(panos), ArrayImages(tiles), np.arange(self.size))


class MeanHead(nn.Module):
    def __init__(self, in_channels, feature_hw, dim):
        super().__init__()
        self.linear = nn.Linear(in_channels, dim)

    def forward(self, fmap):
        return self.linear(fmap.mean(dim=(2, 3)))


class CountingTriplet(nn.Module):
    '''Soft-margin triplet over in-batch negatives, with every optional extension of the old contract.'''

    needs_images = False

    def __init__(self):
        super().__init__()
        self.model = None

    def attach(self, model):
        self.model = model
        log("attach")

    def forward(self, z_ground, z_aerial):
        if self.model is None:
            raise RuntimeError("forward before attach")
        scores = z_ground @ z_aerial.T
        return F.softplus(10 * (scores - scores.diag()[:, None])).mean()

    def after_step(self):
        log("loss step")


class PlainSiamese(nn.Module):
    '''Negative cosine of two views' pooled features: a pretrainer that subclasses nothing.'''

    def __init__(self, backbone, feature_dim):
        super().__init__()
        self.backbone = backbone
        self.predictor = nn.Linear(feature_dim, feature_dim)

    def forward(self, view1, view2):
        z1, z2 = (self.backbone(v).mean(dim=(2, 3)) for v in (view1, view2))
        return -F.cosine_similarity(self.predictor(z1), z2.detach()).mean()

    def after_step(self):
        log("pretrain step")

    def augmentations(self, image_size):
        def view(image):
            return torch.flip(image, dims=[-1]).float() / 255 if torch.rand(()) < 0.5 else image.float() / 255
        return view, view


class Mirror:
    def __init__(self, ground_size, aerial_size):
        pass

    def __call__(self, pano, tile):
        log("augment")
        return pano.float() / 255, tile.float() / 255


@hookimpl
def register_datasets(register):
    register("gridpairs", GridPairs)

@hookimpl
def register_heads(register):
    register("meanhead", MeanHead)

@hookimpl
def register_losses(register):
    register("counting_triplet", CountingTriplet)

@hookimpl
def register_pretrainers(register):
    register("plain_siamese", PlainSiamese)

@hookimpl
def register_augmentations(register):
    register("plain_mirror", Mirror)
"""


def test_a_package_written_to_the_duck_typed_contract_runs_every_kind(tmp_path):
    site = make_distribution(tmp_path / "site", "acme-old", "acme_old", OLD_CONTRACT_PACKAGE, {"old": "acme_old"})
    events = tmp_path / "events.log"
    runs = tmp_path / "runs"
    result = cli("run", "--preset", "smoke", "--dataset", "gridpairs", "--ground-size", "32x128",
                     "--aerial-size", "64x64", "--head", "meanhead", "--dim", "32", "--loss", "counting_triplet",
                     "--pretrainer", "plain_siamese", "--pretrain-epochs", "1", "--pretrain-batch-size", "16",
                     "--finetune-aug", "plain_mirror", "--epochs", "1", "--batch-size", "16", "--runs-dir", str(runs),
                     "--quiet", site=site, env={"ACME_LOG": str(events)})
    assert result.returncode == 0, result.stderr
    (record_path,) = runs.glob("*/result.json")
    record = json.loads(record_path.read_text())
    assert record["status"] == "finished"
    pretraining = record["pretraining"]["aerial"]
    lines = events.read_text().splitlines()
    assert lines.count("attach") == 1
    assert lines.count("pretrain step") == pretraining["steps"] == 96 // 16  # train and val tiles, whole batches
    assert lines.count("loss step") == 48 // 16  # one epoch of conflict-free batches of 16 distinct tiles
    assert lines.count("augment") == 48
    assert set(record["metrics"]) >= {"R@1", "R@5", "R@10", "R@1%"}
