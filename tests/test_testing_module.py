"""cvbench.testing: the built-in plugins pass its checks, and a toy plugin broken in one way fails the check
that covers it, with a message naming the plugin, the check and what was expected."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import torch
from torch import nn
from toy_dataset import Toy

import cvbench
from cvbench import testing
from cvbench.testing import ConformanceError

OPTIONS = {("head", "salad"): {"dim": 80},  # salad's dim is token_dim + clusters x cluster_dim
           # the pretrainers' projection MLPs and queues at toy size (the defaults take seconds to build)
           ("pretrainer", "byol"): {"proj_hidden": 64, "proj_dim": 32, "pred_hidden": 64},
           ("pretrainer", "simsiam"): {"proj_hidden": 64, "proj_dim": 64, "pred_hidden": 32},
           ("pretrainer", "mocov2"): {"queue_size": 256, "proj_hidden": 64, "proj_dim": 32}}
SLOW = {("dataset", name) for name in ("synthetic", "shapes")}  # generate worlds: their own tests cover them
ON_DISK = {"vigor", "cvact", "cvusa", "pairs", "university1652"}  # need a folder: their tests build one


def _builtins() -> list[tuple[str, str]]:
    names = cvbench.plugins()
    return [(kind, name) for kind in testing.CHECKS for name in names[kind]
            if (kind, name) not in SLOW and not (kind == "dataset" and name in ON_DISK)]


@pytest.mark.parametrize(("kind", "name"), _builtins())
def test_every_builtin_plugin_passes_its_kinds_checks(kind, name):
    testing.CHECKS[kind](name, **OPTIONS.get((kind, name), {}))


def test_a_dataset_plugin_written_outside_cvbench_passes():
    testing.check_dataset(Toy, size=8)


# --- toy plugins, each broken in one way -----------------------------------------------------------------------

class GoodHead(nn.Module):
    def __init__(self, in_channels, feature_hw, dim):
        super().__init__()
        self.linear = nn.Linear(in_channels, dim)

    def forward(self, fmap):
        return self.linear(fmap.mean(dim=(2, 3)))


class WideHead(GoodHead):
    def forward(self, fmap):
        return torch.cat([super().forward(fmap), fmap[:, :1, 0, 0]], dim=1)


class NanHead(GoodHead):
    def forward(self, fmap):
        return super().forward(fmap) * float("nan")


_calls = itertools.count()


class CountingHead(GoodHead):
    def forward(self, fmap):
        return super().forward(fmap) + next(_calls)  # a different output on every call


class AttributeStateHead(GoodHead):
    def __init__(self, in_channels, feature_hw, dim):
        super().__init__(in_channels, feature_hw, dim)
        self.scale = torch.rand(dim)  # a plain attribute: not in state_dict, lost on --resume

    def forward(self, fmap):
        return super().forward(fmap) * self.scale


class GoodLoss(nn.Module):
    def forward(self, z_ground, z_aerial):
        return (1 - (z_ground * z_aerial).sum(dim=1)).mean()


class VectorLoss(GoodLoss):
    def forward(self, z_ground, z_aerial):
        return 1 - (z_ground * z_aerial).sum(dim=1)


class DetachedLoss(GoodLoss):
    def forward(self, z_ground, z_aerial):
        return super().forward(z_ground, z_aerial).detach()


class GoodPretrainer(nn.Module):
    def __init__(self, backbone, feature_dim):
        super().__init__()
        self.backbone = backbone

    def forward(self, view1, view2):
        return (self.backbone(view1) - self.backbone(view2)).pow(2).mean()

    def augmentations(self, image_size):
        return (lambda image: image.float() / 255,) * 2


class CopyingPretrainer(GoodPretrainer):
    def __init__(self, backbone, feature_dim):
        super().__init__(nn.Sequential(backbone), feature_dim)


class OneViewPretrainer(GoodPretrainer):
    def augmentations(self, image_size):
        return lambda image: image.float() / 255


class Uint8Augmentation:
    def __init__(self, ground_size, aerial_size):
        pass

    def __call__(self, panorama, tile):
        return panorama, tile


class RepeatingSampler(cvbench.Sampler):
    def plan(self, batching):
        return [[0, 1], [1, 2]]


class ConflictSampler(cvbench.Sampler):
    def plan(self, batching):
        return [[i, i + 1] for i in range(0, len(batching.tiles), 2)]  # items 2k and 2k+1 share a tile


class GlobalRandomSampler(cvbench.Sampler):
    def plan(self, batching):
        order = list(range(0, len(batching.tiles), 2))
        random.shuffle(order)  # Python's generator, not batching.generator
        return [order[i:i + 4] for i in range(0, len(order), 4)]


class NoSplits(Toy):
    def splits(self):
        return []


class DictDataset(Toy):
    def load(self, split, subset):
        return {"ground": [], "aerial": []}


class ReseededDataset(Toy):
    def __init__(self, root=None, size=8):
        super().__init__(root, size, seed=int(np.random.default_rng().integers(1 << 30)))


BROKEN = [
    (testing.check_head, WideHead, r"head 'WideHead' returned shape \(4, 33\).*expected \(batch, dim\) = \(4, 32\)"),
    (testing.check_head, NanHead, r"head 'NanHead' output had NaN/inf"),
    (testing.check_head, CountingHead, r"head 'CountingHead' failed determinism \(same seed, same output\)"),
    (testing.check_head, AttributeStateHead, r"head 'AttributeStateHead' failed state round-trip"),
    (testing.check_loss, VectorLoss,
     r"loss 'VectorLoss' failed output shape: expected a finite scalar, got shape \(6,\)"),
    (testing.check_loss, DetachedLoss, r"loss 'DetachedLoss' failed gradient: expected a loss that is differentiable"),
    (testing.check_pretrainer, CopyingPretrainer, r"'CopyingPretrainer' .*`.backbone`"),
    (testing.check_pretrainer, OneViewPretrainer,
     r"'OneViewPretrainer' failed augmentations: expected .* two callables"),
    (testing.check_augmentation, Uint8Augmentation,
     r"augmentation 'Uint8Augmentation' failed output shape: expected the panorama as float in \[0, 1\]"),
    (testing.check_sampler, RepeatingSampler, r"sampler 'RepeatingSampler': batch 1 holds item 1, .*already used"),
    (testing.check_sampler, ConflictSampler,
     r"sampler 'ConflictSampler' failed plan: expected no batch to hold conflicting"),
    (testing.check_sampler, GlobalRandomSampler, r"sampler 'GlobalRandomSampler' failed determinism"),
    (testing.check_dataset, NoSplits, r"dataset 'NoSplits' failed splits: expected splits\(\) to list protocol names"),
    (testing.check_dataset, DictDataset, r"dataset 'DictDataset' failed load\('toy', 'train'\): expected a "
                                         r"cvbench.data.CrossViewPairs"),
    (testing.check_dataset, ReseededDataset, r"dataset 'ReseededDataset' failed determinism"),
]


@pytest.mark.parametrize(("check", "factory", "message"), BROKEN, ids=[f.__name__ for _, f, _ in BROKEN])
def test_a_broken_toy_plugin_fails_the_check_that_covers_it(check, factory, message):
    with pytest.raises(ConformanceError, match=message) as info:
        check(factory)
    assert "\n" not in str(info.value)  # one line, as pytest shows it


def test_the_good_toys_pass_so_each_failure_above_is_the_break_alone():
    testing.check_head(GoodHead)
    testing.check_loss(GoodLoss)
    testing.check_pretrainer(GoodPretrainer)
