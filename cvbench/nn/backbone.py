"""Backbones: any timm model name, as a module mapping images to one of its feature maps.

No backbone registry of our own: ``vgg16``, ``resnet50.a1_in1k``,
``convnext_tiny``, ``vit_small_patch14_dinov2.lvd142m``, ``hf-hub:...`` all
come from timm with ``features_only=True``. A vision transformer's patch
tokens come back as a ``(B, C, H/p, W/p)`` map (timm's feature wrapper), built
with ``dynamic_img_size`` so any image size the patch size p divides works.
Pretrained weights come from timm's cache (Hugging Face) or a file given
explicitly, since many machines cannot download at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CvbenchError, SpecError
from .memory import meta_forward


class FeatureExtractor(nn.Module):
    """A timm model reduced to one feature map: ``(B, 3, H, W) -> (B, C, h, w)``.

    ``patch`` is a transformer's patch size (0 for a CNN); ``frozen`` keeps
    the weights and the normalisation statistics as they started (the
    module stays in eval mode and its parameters need no gradient).
    """

    def __init__(self, model: nn.Module, name: str, patch: int = 0) -> None:
        super().__init__()
        self.model = model
        self.name = name
        self.patch = patch
        self.out_channels = int(model.feature_info.channels()[-1])
        self.reduction = int(model.feature_info.reduction()[-1])
        self.frozen = False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)[-1]

    def freeze(self) -> "FeatureExtractor":
        """Keep the start weights: no gradient, normalisation statistics untouched (eval mode for good)."""
        self.frozen = True
        self.requires_grad_(False)
        return self.train(False)

    def train(self, mode: bool = True) -> "FeatureExtractor":
        return super().train(mode and not self.frozen)

    def feature_hw(self, image_size: tuple[int, int], option: str = "--ground-size") -> tuple[int, int]:
        """The feature map's (h, w) for an input of ``image_size``, measured by a dry run on the meta device.

        The meta device computes shapes only, so a large size costs no memory
        here; the memory a batch needs is checked later (:mod:`cvbench.training.batch_memory`).

        A size the model cannot take is a :class:`SpecError` naming ``option``
        and, for a transformer, the sizes its patches fit.
        """
        height, width = (int(side) for side in image_size)
        if self.patch and (height % self.patch or width % self.patch):
            fit = "x".join(str(max(self.patch, side // self.patch * self.patch)) for side in (height, width))
            raise SpecError(f"{option} {height}x{width}: {self.name} cuts images into {self.patch}x{self.patch} "
                            f"patches, so both sides must be multiples of {self.patch} (e.g. {fit})")
        was_training = self.training
        self.eval()
        try:
            shape = self._probe(height, width)
        except (RuntimeError, AssertionError, ValueError) as exc:
            raise SpecError(f"{option} {height}x{width}: backbone {self.name} cannot take this size "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); try a larger image or an "
                            "earlier --backbone-stage") from None
        finally:
            self.train(was_training)
        return int(shape[-2]), int(shape[-1])

    def _probe(self, height: int, width: int) -> torch.Size:
        """The output shape for one image, from shapes alone (the meta device), else from a real zero image.

        A model the meta device cannot run (an operation without a meta kernel,
        a value read with ``.item()``) gets the real image, whose error, if any,
        is the one reported.
        """
        try:
            return meta_forward(self, (1, 3, height, width)).shape
        except Exception:  # noqa: BLE001 - any failure on the meta device is settled by the real image below
            with torch.no_grad():
                return self.forward(torch.zeros(1, 3, height, width, device=next(self.parameters()).device)).shape


def check_name(name: str) -> None:
    """Refuse a ``--backbone`` timm does not know, with similar names; ``hf-hub:`` names are checked on creation."""
    import timm
    from timm.models import split_model_name_tag

    if name.startswith("hf-hub:"):
        return
    architecture, _ = split_model_name_tag(name)
    if timm.is_model(architecture):
        return
    close = timm.list_models(f"*{architecture}*")[:8]
    hint = f"; similar timm models: {', '.join(close)}" if close else ""
    raise SpecError(f"--backbone {name!r} is not a timm model name{hint}")


def _create(name: str, pretrained: bool, kwargs: dict[str, Any]) -> nn.Module:
    """``timm.create_model`` with ``dynamic_img_size`` for a transformer (retried without it for other models)."""
    import timm

    if "dynamic_img_size" not in kwargs:
        try:
            return timm.create_model(name, pretrained=pretrained, dynamic_img_size=True, **kwargs)
        except TypeError as exc:  # a CNN takes no such argument
            if "dynamic_img_size" not in str(exc):
                raise
    return timm.create_model(name, pretrained=pretrained, **kwargs)


def _download_hint(name: str) -> str:
    """Where the pretrained weights of ``name`` live on the Hugging Face hub, when timm says."""
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except Exception:  # an hf-hub: name, or a tag timm does not list
        cfg = None
    hub = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    return (f"download model.safetensors from https://huggingface.co/{hub} and pass it as --pretrained-weights FILE"
            if hub else "pass the model's .safetensors/.pth state dict as --pretrained-weights FILE")


def create_backbone(name: str, init: str = "random", weights: str | None = None, stage: int = -1,
                    options: dict[str, Any] | None = None) -> FeatureExtractor:
    """Build a timm backbone initialised ``random`` or with its pretrained (``imagenet``) weights.

    ``stage`` picks the feature stage whose map the head aggregates (timm's
    ``out_indices``): -1 is the last (VGG16's conv5 after pooling, stride 32);
    an earlier stage keeps more spatial resolution on small images.
    ``options`` go to ``timm.create_model`` (``--backbone-option``).
    """
    check_name(name)
    kwargs = {"features_only": True, "out_indices": (stage,), **(options or {})}
    if init == "imagenet":
        if weights:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise CvbenchError(f"--pretrained-weights {path}: no such file")
            kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
        try:
            model = _create(name, True, kwargs)
        except Exception as exc:  # no network, no cache: say what to fetch and where to put it
            raise CvbenchError(
                f"pretrained weights for backbone {name!r} could not be loaded ({type(exc).__name__}: {exc}). "
                f"On a machine with internet, `python -c \"import timm; timm.create_model('{name}', "
                "pretrained=True)\"` caches them under ~/.cache/huggingface/hub (copy that folder here, or set "
                f"HF_HOME); or {_download_hint(name)}; or choose --base-init random. Offline, set "
                "HF_HUB_OFFLINE=1 so this fails at once.") from None
    else:
        try:
            model = _create(name, False, kwargs)
        except (IndexError, ValueError) as exc:
            raise SpecError(f"--backbone-stage {stage}: backbone {name!r} has no such feature stage ({exc})") from None
        except (TypeError, RuntimeError, AssertionError) as exc:
            raise SpecError(f"--backbone {name} with --backbone-option {options or {}}: timm refused it "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    patch = getattr(getattr(getattr(model, "model", model), "patch_embed", None), "patch_size", 0)
    patch = int(patch[0] if isinstance(patch, (tuple, list)) else patch or 0)
    return FeatureExtractor(model, name, patch)
