"""BYOL and SimSiam do not collapse on the synthetic world's satellite tiles.

Chen & He (2021, section 3) monitor the per-dimension standard deviation of
the L2-normalised outputs: about 1/sqrt(d) when they spread, 0 when every
image maps to the same point. Here it is measured on the backbone's pooled
features of held-out tiles (which every pretrainer shares) before and after
training through the harness' own loaders: a collapse drives it towards 0,
healthy training keeps it near where it started.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import cvbench
from cvbench.data.loaders import Reader, TwoViews, Views, normalize
from cvbench.nn.backbone import create_backbone


def spread(features: torch.Tensor) -> float:
    z = F.normalize(features, dim=1)
    return z.std(dim=0).mean().item() * math.sqrt(z.shape[1])


@pytest.fixture(scope="module")
def tiles():
    return cvbench.create("dataset", "synthetic", None).load("cross_area", "val").aerial


@pytest.mark.parametrize("name, options", [("byol", {"momentum": 0.99, "proj_hidden": 256, "pred_hidden": 256}),
                                           ("simsiam", {"proj_hidden": 256, "proj_dim": 256, "pred_hidden": 64})])
def test_pretrainer_keeps_features_spread_on_synthetic_tiles(tiles, name, options):
    torch.manual_seed(0)
    backbone = create_backbone("resnet10t", stage=2)
    pretrainer = cvbench.create("pretrainer", name, backbone, backbone.out_channels, **options)
    reader = Reader((32, 32))
    held_out = torch.cat([normalize(batch) for batch in DataLoader(Views(tiles, reader, np.arange(640, 896)), 128)])

    def measure() -> float:
        backbone.eval()
        with torch.no_grad():
            value = spread(backbone(held_out).mean(dim=(2, 3)))
        backbone.train()
        return value

    initial = measure()
    train = DataLoader(TwoViews(tiles, reader, pretrainer.augmentations((32, 32)), np.arange(0, 640)),
                       batch_size=32, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0))
    params = [p for p in pretrainer.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-4)
    losses = []
    for view1, view2 in train:
        loss = pretrainer(normalize(view1), normalize(view2))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        pretrainer.after_step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses) and np.mean(losses[-5:]) < np.mean(losses[:5])
    trained = measure()
    assert trained > 0.5 * initial, f"{name} collapsed: spread {initial:.3f} at start, {trained:.3f} after training"
