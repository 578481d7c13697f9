"""How much memory a batch needs, estimated before any compute, and how much the device has.

The estimate runs the network once on PyTorch's ``meta`` device: tensors
with shapes and no storage, so it costs no memory and under a second
whatever the image size. Every leaf layer's output is counted: training
keeps (about) each of them for the backward pass, inference holds about
the largest two at once. In-place layers (``ReLU(inplace=True)``) add
nothing. Measured on the CPU against the peak resident memory of one
forward and backward pass, the count is 0.6 to 1.8 times the truth for
resnet10t/18/50, vgg16, convnext_atto and ViT-S/T: an estimate, good to
tell a run that cannot fit from one that can, not a budget to the byte.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

GIB = 2**30


@dataclass(frozen=True)
class Footprint:
    """Values one image leaves in a network at one size: every layer's output (``stored``) and the largest one."""

    stored: int
    largest: int

    def training_bytes(self, batch: int, value_bytes: int) -> int:
        """Activations a training batch keeps for its backward pass."""
        return batch * self.stored * value_bytes

    def inference_bytes(self, batch: int, value_bytes: int) -> int:
        """Activations an inference batch holds at its peak: a layer's input and output, about the largest twice."""
        return batch * 2 * self.largest * value_bytes


def meta_forward(module: nn.Module, shape: tuple[int, ...],
                 on_output: Callable[[nn.Module, torch.Tensor], None] | None = None) -> object:
    """Run ``module`` on a ``meta`` tensor of ``shape`` (no storage, no arithmetic) and return its output.

    Parameters and buffers are swapped for meta copies for this call only;
    ``on_output(layer, tensor)`` sees every tensor each leaf layer returns.
    An operation without a meta kernel makes torch raise here; the callers
    settle that themselves: ``FeatureExtractor._probe`` measures the shape on
    a real image, and ``check_batch_memory`` skips its estimate.
    """
    state = {name: torch.empty_like(value, device="meta")
             for name, value in [*module.named_parameters(), *module.named_buffers()]}
    hooks = []
    if on_output is not None:
        def hook(layer: nn.Module, inputs: object, output: object) -> None:
            for value in output if isinstance(output, (list, tuple)) else (output,):
                if isinstance(value, torch.Tensor):
                    on_output(layer, value)
        hooks = [layer.register_forward_hook(hook) for layer in module.modules() if not any(layer.children())]
    try:
        with torch.no_grad():
            return torch.func.functional_call(module, state, (torch.empty(shape, device="meta"),))
    finally:
        for handle in hooks:
            handle.remove()


def footprint(module: nn.Module, image_size: tuple[int, int], channels: int = 3) -> Footprint:
    """The :class:`Footprint` of one ``channels x H x W`` image through ``module``, counted on the meta device."""
    sizes: list[int] = []

    def count(layer: nn.Module, value: torch.Tensor) -> None:
        if not getattr(layer, "inplace", False):  # an in-place layer writes into its input's storage
            sizes.append(value.numel())

    meta_forward(module, (1, channels, *image_size), count)
    image = channels * image_size[0] * image_size[1]
    return Footprint(stored=image + sum(sizes), largest=max([image, *sizes]))


def parameter_bytes(module: nn.Module, training: bool) -> int:
    """Bytes of ``module``'s weights; while training each trainable one also has a gradient and Adam's two moments."""
    total = 0
    for param in module.parameters():
        copies = 4 if training and param.requires_grad else 1
        total += copies * param.numel() * param.element_size()
    return total


def available_bytes(device: torch.device) -> int | None:
    """Memory free for this process on ``device``: CUDA's free memory, or the machine's available RAM on the CPU.

    None where it cannot be told (MPS shares RAM with the system; a platform
    without ``/proc/meminfo`` or ``sysconf``).
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():  # MemAvailable counts the page cache the kernel would give back; free pages do not
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def activation_value_bytes(device: torch.device) -> int:
    """Bytes per activation value: CUDA runs under bf16 autocast (:func:`cvbench.nn.device.autocast`), else float32."""
    return 2 if device.type == "cuda" else 4


def size_text(count: int) -> str:
    """``count`` bytes for messages: in GiB, or MiB below one GiB."""
    return f"{count / GIB:.1f} GiB" if count >= GIB else f"{count / 2**20:.0f} MiB"
