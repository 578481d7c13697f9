"""Blur strengths given in pixels of 224 px crops scale with the benchmark's image size."""

from __future__ import annotations

import pytest
import torch
from cvbench_plugins.augmentations.mocov2 import MoCoV2PairAugmentation, mocov2_augmentation
from cvbench_plugins.pretrainers.byol import byol_augmentation
from cvbench_plugins.pretrainers.simsiam import SimSiam
from torch import nn
from torchvision.transforms import v2

from cvbench.data.augment import gaussian_blur


def blur_of(transform: v2.Compose) -> v2.GaussianBlur:
    """The GaussianBlur inside a recipe's RandomApply."""
    (blur,) = [step.transforms[0] for step in transform.transforms
               if isinstance(step, v2.RandomApply) and isinstance(step.transforms[0], v2.GaussianBlur)]
    return blur


def test_at_the_reference_size_the_sigma_range_is_the_papers() -> None:
    blur = gaussian_blur((224, 224))
    assert tuple(blur.sigma) == (0.1, 2.0)
    assert tuple(blur.kernel_size) == (13, 13)  # 3 sigma_max = 6 px each side of the centre


def test_a_64_px_tile_blurs_64_224ths_as_much() -> None:
    blur = gaussian_blur((64, 64))
    assert tuple(blur.sigma) == pytest.approx((0.1 * 64 / 224, 2.0 * 64 / 224))
    assert tuple(blur.kernel_size) == (5, 5)  # 3 x 0.571 = 1.7 -> 2 px each side


def test_a_panorama_scales_by_its_shorter_side() -> None:
    blur = gaussian_blur((32, 128))
    assert tuple(blur.sigma) == pytest.approx((0.1 * 32 / 224, 2.0 * 32 / 224))
    assert tuple(blur.kernel_size) == (3, 3)


@pytest.mark.parametrize("size", [(3, 3), (4, 50), (8, 8), (17, 17), (32, 128), (64, 64), (224, 224), (512, 1024)])
@pytest.mark.parametrize("sigma", [(0.1, 2.0), (1.0, 40.0)])
def test_the_kernel_is_odd_and_fits_the_image(size, sigma) -> None:
    blur = gaussian_blur(size, sigma=sigma)
    kernel = blur.kernel_size[0]
    side = min(size)
    assert kernel % 2 == 1 and 3 <= kernel <= side
    if side <= 64:  # torchvision accepts it (a reflect pad needs kernel // 2 < side)
        image = torch.randint(0, 256, (3, *size), dtype=torch.uint8)
        assert blur(image).shape == image.shape


def test_a_kernel_fraction_keeps_byols_rule() -> None:
    assert gaussian_blur((224, 224), kernel_fraction=0.1).kernel_size[0] == 23  # the BYOL paper's kernel
    assert gaussian_blur((64, 64), kernel_fraction=0.1).kernel_size[0] == 7  # 6.4 px -> odd


def test_byol_blurs_with_scaled_sigma_and_its_10_percent_kernel() -> None:
    at_224, at_64 = (blur_of(byol_augmentation(s, blur_p=1.0, solarize_p=0.0)) for s in ((224, 224), (64, 64)))
    assert tuple(at_224.sigma) == (0.1, 2.0) and at_224.kernel_size[0] == 23
    assert tuple(at_64.sigma) == pytest.approx((0.1 * 64 / 224, 2.0 * 64 / 224)) and at_64.kernel_size[0] == 7


def test_mocov2_and_simsiam_recipes_scale_their_blur() -> None:
    expected = pytest.approx((0.1 * 64 / 224, 2.0 * 64 / 224))
    assert tuple(blur_of(mocov2_augmentation((64, 64))).sigma) == expected
    simsiam = SimSiam(nn.Conv2d(3, 8, 1), 8, proj_hidden=8, proj_dim=4, pred_hidden=2)
    assert all(tuple(blur_of(t).sigma) == expected for t in simsiam.augmentations((64, 64)))
    pair = MoCoV2PairAugmentation((32, 128), (64, 64))
    assert tuple(blur_of(pair.ground).sigma) == pytest.approx((0.1 * 32 / 224, 2.0 * 32 / 224))
    assert tuple(blur_of(pair.aerial).sigma) == expected


def test_crops_of_a_panorama_vary_and_keep_its_shape():
    """torchvision's square-relative aspect range leaves a 32x128 panorama one fixed centre crop; ours varies."""
    from cvbench.data.augment import resized_crop

    image = torch.zeros(3, 32, 128)
    boxes, default_boxes = set(), []
    for seed in range(20):
        torch.manual_seed(seed)
        params = resized_crop((32, 128), (0.2, 1.0)).make_params([image])
        boxes.add((params["top"], params["left"], params["height"], params["width"]))
        assert 3 / 4 * 4 - 0.2 <= params["width"] / params["height"] <= 4 / 3 * 4 + 0.2  # about the image's 4:1
        torch.manual_seed(seed)
        params = v2.RandomResizedCrop((32, 128), scale=(0.2, 1.0)).make_params([image])
        default_boxes.append((params["top"], params["left"], params["height"], params["width"]))
    centre = (0, 42, 32, 43)  # torchvision's fallback: the largest crop of ratio 4/3 in the middle
    assert default_boxes.count(centre) >= 10 and centre not in boxes and len(boxes) == 20
    assert resized_crop((64, 64), (0.2, 1.0)).ratio == pytest.approx((3 / 4, 4 / 3))  # a square keeps the default
