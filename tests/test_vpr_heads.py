"""The place-recognition aggregators against hand computations on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import cvbench
from cvbench.errors import SpecError
from cvbench_plugins.heads.gem import GeMHead
from cvbench_plugins.heads.mixvpr import MixVPRHead
from cvbench_plugins.heads.netvlad import NetVLADHead
from cvbench_plugins.heads.salad import SALADHead, log_optimal_transport

torch.manual_seed(0)
MAP = torch.rand(2, 3, 2, 3) + 0.05  # (B, C, H, W), positive


def test_gem_is_average_pooling_at_p_1_and_approaches_max_pooling_as_p_grows():
    mean = GeMHead(3, 3, p=1.0, learn_p=False, project=False)
    torch.testing.assert_close(mean(MAP), MAP.mean(dim=(2, 3)))
    gaps = [(GeMHead(3, 3, p=p, learn_p=False, project=False)(MAP) - MAP.amax(dim=(2, 3))).abs().max().item()
            for p in (10.0, 100.0, 1000.0)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.005
    x = MAP[0, 0]  # by hand at p = 3
    assert GeMHead(3, 3, learn_p=False, project=False).pool(MAP)[0, 0].item() == pytest.approx(
        float(x.pow(3).mean() ** (1 / 3)), rel=1e-6)
    assert sum(p.numel() for p in GeMHead(3, 3, learn_p=False, project=False).parameters() if p.requires_grad) == 0


def test_gem_at_a_fixed_p_1_averages_features_of_either_sign():
    signed = MAP - 0.5  # ConvNeXt and ViT features are not clamped at zero by a ReLU
    torch.testing.assert_close(GeMHead(3, 3, p=1.0, learn_p=False, project=False)(signed), signed.mean(dim=(2, 3)))
    learned = GeMHead(3, 3, p=1.0, learn_p=True, project=False)(signed)  # GeM proper clamps at eps
    torch.testing.assert_close(learned, signed.clamp(min=1e-6).mean(dim=(2, 3)))


def test_netvlad_with_one_cluster_is_the_normalised_sum_of_residuals():
    head = NetVLADHead(3, (2, 3), dim=3, clusters=1, init="random", project=False)
    centre = head.centroids.detach()[0]
    descriptors = F.normalize(MAP, dim=1).flatten(2).transpose(1, 2)  # (B, N, C), each L2-normalised
    by_hand = F.normalize((descriptors - centre).sum(dim=1), dim=1)  # the one cluster takes every descriptor
    torch.testing.assert_close(head.descriptor(MAP), by_hand)


def test_netvlad_assigns_to_the_nearest_cluster_when_alpha_is_large():
    head = NetVLADHead(3, (2, 3), dim=6, clusters=2, alpha=1e4, init="random", project=False)
    descriptors = F.normalize(MAP, dim=1).flatten(2).transpose(1, 2)
    centroids = head.centroids.detach()
    nearest = torch.cdist(descriptors, centroids[None].expand(2, -1, -1)).argmin(dim=2)  # (B, N)
    by_hand = torch.stack([torch.stack([(descriptors[b][nearest[b] == k] - centroids[k]).sum(dim=0)
                                        for k in range(2)]) for b in range(2)])
    by_hand = F.normalize(F.normalize(by_hand, dim=2).flatten(1), dim=1)
    torch.testing.assert_close(head.descriptor(MAP), by_hand, atol=1e-5, rtol=1e-4)


def test_netvlad_starts_its_clusters_by_kmeans_on_the_first_training_batch():
    torch.manual_seed(3)
    head = NetVLADHead(3, (2, 3), dim=8, clusters=2)
    assert not bool(head.initialised)
    head.train()
    head(MAP)
    assert bool(head.initialised)
    descriptors = F.normalize(MAP, dim=1).permute(0, 2, 3, 1).reshape(-1, 3)
    nearest = torch.cdist(descriptors, head.centroids.detach()).argmin(dim=1)
    for k in range(2):  # a fixed point of Lloyd's iterations: each centroid the mean of its members
        torch.testing.assert_close(head.centroids.detach()[k], descriptors[nearest == k].mean(dim=0))
    torch.testing.assert_close(head.assign.weight.detach()[:, :, 0, 0], 2 * 100.0 * head.centroids.detach())


def test_netvlad_refuses_more_clusters_than_descriptors():
    with pytest.raises(SpecError, match="netvlad: 7 clusters for a 2x3 feature map"):
        NetVLADHead(3, (2, 3), dim=8, clusters=7)


def test_mixvpr_without_mixers_is_two_projections_and_a_mixer_adds_an_mlp_of_the_normalised_rows():
    plain = MixVPRHead(3, (2, 3), dim=8, depth=0, rows=4)
    channel, row = plain.channel_proj, plain.row_proj
    x = MAP.flatten(2)  # (B, C, HW)
    by_hand = torch.einsum("oc,bcp,rp->bor", channel.weight, x, row.weight) + \
        torch.einsum("o,rp->or", channel.bias, row.weight)[None]
    torch.testing.assert_close(plain(MAP), by_hand.flatten(1), atol=1e-6, rtol=1e-5)
    mixed = MixVPRHead(3, (2, 3), dim=8, depth=1, rows=4)
    layer_norm, first, _, second = mixed.mix[0].mix
    normed = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    normed = normed * layer_norm.weight + layer_norm.bias
    mixed_rows = x + (torch.relu(normed @ first.weight.T + first.bias) @ second.weight.T + second.bias)
    by_hand = torch.einsum("oc,bcp,rp->bor", mixed.channel_proj.weight, mixed_rows, mixed.row_proj.weight) + \
        torch.einsum("o,rp->or", mixed.channel_proj.bias, mixed.row_proj.weight)[None]
    torch.testing.assert_close(mixed(MAP), by_hand.flatten(1), atol=1e-5, rtol=1e-4)
    with pytest.raises(SpecError, match="multiple of rows = 4"):
        MixVPRHead(3, (2, 3), dim=10)


def sinkhorn_by_hand(scores: np.ndarray, dustbin: float, iterations: int) -> np.ndarray:
    """SuperGlue's log-domain optimal transport written out with numpy, one batch element."""
    m, n = scores.shape
    couplings = np.vstack([scores, np.full((1, n), dustbin)])
    norm = -math.log(m + n)
    log_mu = np.array([norm] * m + [math.log(n - m) + norm])
    log_nu = np.full(n, norm)
    u, v = np.zeros(m + 1), np.zeros(n)
    for _ in range(iterations):
        u = log_mu - np.log(np.exp(couplings + v[None, :]).sum(axis=1))
        v = log_nu - np.log(np.exp(couplings + u[:, None]).sum(axis=0))
    return np.exp(couplings + u[:, None] + v[None, :] - norm)


def test_salad_transport_plan_matches_the_sinkhorn_iterations_and_its_marginals():
    scores = torch.tensor([[[0.3, -1.0, 2.0, 0.5], [1.5, 0.2, -0.4, 0.0]]])  # m = 2 clusters, n = 4 features
    plan = log_optimal_transport(scores, torch.tensor(0.7), 3).exp()[0].double().numpy()
    np.testing.assert_allclose(plan, sinkhorn_by_hand(scores[0].double().numpy(), 0.7, 3), rtol=1e-5)
    converged = log_optimal_transport(scores, torch.tensor(0.7), 200).exp()[0].double().numpy()
    np.testing.assert_allclose(converged.sum(axis=0), np.ones(4), atol=1e-4)  # each feature sends mass 1
    np.testing.assert_allclose(converged.sum(axis=1), [1, 1, 2], atol=1e-4)  # clusters 1 each, the dustbin n - m


def test_salad_aggregates_the_assigned_mass_of_the_reduced_features():
    head = SALADHead(3, (2, 3), dim=4 + 2 * 5, clusters=2, token_dim=4)
    head.eval()
    local = head.features(MAP).flatten(2)
    by_hand = F.normalize(torch.einsum("bkn,bln->bkl", head.assignment(MAP), local), dim=2).flatten(1)
    token = F.normalize(head.token(MAP.mean(dim=(2, 3))), dim=1)
    torch.testing.assert_close(head(MAP), torch.cat([token, by_hand], dim=1))
    with pytest.raises(SpecError, match="salad: 6 clusters need more than 6 local features"):
        SALADHead(3, (2, 3), dim=70, clusters=6)
    with pytest.raises(SpecError, match="not a positive multiple of 2 clusters"):
        SALADHead(3, (2, 3), dim=9, clusters=2, token_dim=4)


@pytest.mark.parametrize("name", ["gem", "netvlad", "mixvpr", "salad"])
def test_each_head_is_registered_and_declares_its_natural_size(name, registry):
    plugin = registry.get("head", name)
    natural = plugin.factory.natural_dim(3, (2, 3), clusters=2)
    head = cvbench.create("head", name, 3, (2, 3), natural, **({"clusters": 2} if name in ("netvlad", "salad") else {}))
    assert head(MAP).shape == (2, natural)
