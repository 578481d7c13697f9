"""Model FLOPs utilisation: the FLOPs a step does, as torch counts them, over the time it takes, against the peak.

The FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (matrix
products and convolutions, forward and backward, as PyTorch's own formulas
count them: 2 per multiply-add), never from a hand count. The peak is the
vendor's dense (no sparsity) figure for the device's name; a CPU has no
such table, so its reference is a square matrix product measured on it
(:func:`gemm_tflops`), the rate a step could reach if it were all GEMM.
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

# Dense peak TFLOP/s (bf16 tensor cores, fp32 without TF32) by a fragment of torch.cuda.get_device_name; the first
# fragment found in the name wins, so the more specific ones come first.
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H200", {"bf16": 989.0, "fp32": 67.0}),
    ("H100 PCIe", {"bf16": 756.0, "fp32": 51.0}),
    ("H100", {"bf16": 989.0, "fp32": 67.0}),  # SXM (the name says "HBM3")
    ("A100", {"bf16": 312.0, "fp32": 19.5}),
    ("L40S", {"bf16": 362.0, "fp32": 91.6}),
    ("A10G", {"bf16": 70.0, "fp32": 31.2}),
)


def count_flops(function: Callable[[], object]) -> int:
    """The FLOPs of one call of ``function`` (forward and, if it calls backward, backward), by FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    with counter:
        function()
    return int(counter.get_total_flops())


def peak_tflops(device_name: str, precision: str = "bf16") -> float | None:
    """The dense peak of a GPU by its name (``torch.cuda.get_device_name``), or None for an unknown one."""
    for fragment, peaks in PEAK_TFLOPS:
        if fragment.lower() in device_name.lower():
            return peaks.get(precision)
    return None


def gemm_tflops(device: torch.device, size: int = 2048, dtype: torch.dtype = torch.float32, repeats: int = 5) -> float:
    """The best rate of a ``size`` square matrix product on ``device``, in TFLOP/s (2 size^3 FLOPs each)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e12


def reference_peak(device: torch.device) -> tuple[float | None, str]:
    """The peak MFU is measured against on ``device`` and where it comes from.

    On CUDA: the table's dense bf16 peak (the steps run under bf16 autocast),
    or None for a GPU the table does not know. Elsewhere: a measured fp32
    square GEMM, as vendors publish no peak for a CPU.
    """
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = peak_tflops(name, "bf16")
        return peak, f"dense bf16 peak of {name}" if peak else f"unknown peak ({name} is not in the table)"
    return gemm_tflops(device), "measured fp32 square GEMM (2048^3) on this CPU, best of before and after the steps"
