"""The loss monitor: device-side sums read every few steps, NaN named at its own epoch and batch."""

from __future__ import annotations

import math

import pytest
import torch

from cvbench.errors import TrainingDivergedError
from cvbench.nn.device import prepare_module, to_device, use_channels_last
from cvbench.training.loop import LossMonitor


def test_means_over_deferred_reads_equal_the_arithmetic_means():
    monitor = LossMonitor("fine-tuning", every=3)
    losses = [0.5, 1.5, 2.0, 4.0, 0.25]
    due = [monitor.add((1, b), torch.tensor(v), {"triplet": torch.tensor(2 * v)}) for b, v in enumerate(losses, 1)]
    assert due == [False, False, True, True, True]  # nothing read until the third step
    means = monitor.means()
    assert means["loss"] == pytest.approx(sum(losses) / 5)
    assert means["triplet"] == pytest.approx(2 * sum(losses) / 5)
    monitor.reset()
    assert monitor.means() == {}


def test_a_non_finite_loss_read_late_is_named_by_its_own_epoch_and_batch():
    monitor = LossMonitor("pre-training the aerial branch", every=25)
    for batch, value in enumerate([1.0, 2.0, math.inf, math.nan, 3.0], start=1):
        monitor.add((4, batch), torch.tensor(value))
    with pytest.raises(TrainingDivergedError, match=r"pre-training the aerial branch: the loss became inf at epoch 4, batch 3"):
        monitor.flush()


def test_cpu_checks_every_step_and_gpus_every_25():
    assert LossMonitor.for_device("x", torch.device("cpu")).every == 1
    assert LossMonitor.for_device("x", torch.device("cuda")).every == 25


def test_channels_last_is_on_for_cuda_only_unless_forced():
    assert use_channels_last(torch.device("cuda")) and not use_channels_last(torch.device("cpu"))
    assert use_channels_last(torch.device("cpu"), "on") and not use_channels_last(torch.device("cuda"), "off")
    conv = prepare_module(torch.nn.Conv2d(3, 4, 3), torch.device("cpu"), channels_last=True)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batch = to_device(torch.rand(2, 3, 5, 5), torch.device("cpu"), channels_last=True)
    assert batch.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(conv(batch), torch.nn.functional.conv2d(batch.contiguous(), conv.weight, conv.bias))


def test_grad_clip_bounds_the_update_and_keeps_its_direction():
    from cvbench.training.loop import step

    weight = torch.nn.Parameter(torch.tensor([3.0, -4.0]))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    step(optimizer, (weight ** 2).sum() / 2, [weight], grad_clip=1.0)  # gradient (3, -4), norm 5
    torch.testing.assert_close(weight.detach(), torch.tensor([3.0 - 0.6, -4.0 + 0.8]))
