"""The FLOP count behind benchmarks/perf/throughput.py's MFU, against hand counts on tiny models, and the tables
gpu_check.sh prints from the benchmarks' JSON (benchmarks/perf/tables.py)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from conftest import PERF_SCRIPTS, perf_script


@pytest.fixture(scope="module")
def flops():
    return perf_script("flops")


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


def test_the_ranking_table_shows_the_figures_recall_py_wrote():
    """The committed 100k x 1M CPU run: the figures docs/performance.md quotes for it."""
    report = json.loads((PERF_SCRIPTS / "results" / "recall_100k_1m.json").read_text())
    table = perf_script("tables").recall_table({"recall_100k_1m": report})
    header, rule, row = table.splitlines()
    assert header.count("|") == rule.count("|") == row.count("|")
    assert row == ("| recall_100k_1m | 100,000 x 1,000,000 x 256 | cpu | 263.51 s | 186.21 s (275 GFLOP/s) | 1.42 | "
                   "313.03 s | 0.84 | 1,219 / 258 MiB | 2.03 |")
