"""The FLOP count behind benchmarks/perf/throughput.py's MFU, against hand counts on tiny models."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

FLOPS = Path(__file__).resolve().parents[1] / "benchmarks" / "perf" / "flops.py"


@pytest.fixture(scope="module")
def flops():
    spec = importlib.util.spec_from_file_location("perf_flops", FLOPS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_linear_layer_costs_two_flops_per_multiply_add(flops):
    layer, x = nn.Linear(5, 3), torch.randn(4, 5, requires_grad=True)
    assert flops.count_flops(lambda: layer(x)) == 2 * 4 * 5 * 3
    # backward: the input's gradient (B x out x in) and the weight's (in x B x out), as many again each
    assert flops.count_flops(lambda: layer(x).sum().backward()) == 3 * 2 * 4 * 5 * 3


def test_a_convolution_costs_two_flops_per_output_and_kernel_tap(flops):
    conv, x = nn.Conv2d(2, 4, 3), torch.randn(1, 2, 5, 5)
    assert flops.count_flops(lambda: conv(x)) == 2 * (4 * 3 * 3) * (2 * 3 * 3)


@pytest.mark.parametrize("name, peak", [("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0),
                                        ("NVIDIA H200", 989.0), ("NVIDIA A100-SXM4-80GB", 312.0),
                                        ("Tesla T4", None)])
def test_the_peak_is_looked_up_by_the_device_name(flops, name, peak):
    assert flops.peak_tflops(name) == peak


def test_a_cpu_reference_is_a_measured_gemm(flops):
    peak, source = flops.reference_peak(torch.device("cpu"))
    assert peak > 0 and "measured" in source
