"""Backbones: any timm model name, as a module mapping images to its last feature map.

No backbone registry of our own: ``vgg16``, ``resnet50``, ``convnext_tiny``...
all come from timm with ``features_only=True``. ImageNet weights come from
timm's pretrained weights (Hugging Face cache) or a file given explicitly,
since many machines cannot download at run time.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import CvbenchError, SpecError


class FeatureExtractor(nn.Module):
    """A timm model reduced to its last feature map: ``(B, 3, H, W) -> (B, C, h, w)``."""

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        self.model = model
        self.name = name
        self.out_channels = int(model.feature_info.channels()[-1])
        self.reduction = int(model.feature_info.reduction()[-1])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)[-1]

    def feature_hw(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """The feature map's (h, w) for an input of ``image_size``, measured by a dry run."""
        was_training = self.training
        self.eval()
        with torch.no_grad():
            probe = torch.zeros(1, 3, *image_size, device=next(self.parameters()).device)
            shape = self.forward(probe).shape
        self.train(was_training)
        return int(shape[-2]), int(shape[-1])


def create_backbone(name: str, init: str = "random", imagenet_weights: str | None = None,
                    stage: int = -1) -> FeatureExtractor:
    """Build a timm backbone initialised ``random`` or with ``imagenet`` weights.

    ``stage`` picks the feature stage whose map the head aggregates (timm's
    ``out_indices``): -1 is the last (VGG16's conv5 after pooling, stride 32);
    an earlier stage keeps more spatial resolution on small images.
    """
    import timm

    if not timm.list_models(name) and name not in timm.list_models(pretrained=False):
        close = timm.list_models(f"*{name}*")[:8]
        hint = f"; similar timm models: {', '.join(close)}" if close else ""
        raise SpecError(f"--backbone {name!r} is not a timm model name{hint}")
    kwargs = {"features_only": True, "out_indices": (stage,)}
    if init == "imagenet":
        if imagenet_weights:
            path = Path(imagenet_weights)
            if not path.is_file():
                raise CvbenchError(f"--imagenet-weights {path}: no such file")
            kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
        try:
            model = timm.create_model(name, pretrained=True, **kwargs)
        except Exception as exc:  # no network, no cache: say what to fetch and where to put it
            raise CvbenchError(
                f"ImageNet weights for backbone {name!r} could not be loaded ({type(exc).__name__}: {exc}). "
                f"Download them on a machine with internet, e.g. `python -c \"import timm; "
                f"timm.create_model('{name}', pretrained=True)\"`, which caches them under "
                "~/.cache/huggingface/hub (copy that folder to this machine, or set HF_HOME), or pass "
                "--imagenet-weights FILE with the model's .safetensors/.pth state dict; "
                "or choose --base-init random. Offline, set HF_HUB_OFFLINE=1 so this fails at once.") from None
    else:
        try:
            model = timm.create_model(name, pretrained=False, **kwargs)
        except (IndexError, ValueError) as exc:
            raise SpecError(f"--backbone-stage {stage}: backbone {name!r} has no such feature stage ({exc})") from None
    return FeatureExtractor(model, name)
