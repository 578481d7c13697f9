"""The device input pipeline (JPEG decoding and pre-training views a batch at a time), run on the CPU.

The code is the one CUDA runs: ``decode_jpeg`` and the batched recipes take
the device as an argument, and here it is ``torch.device("cpu")``.
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from cvbench.data import FileImages
from cvbench.data.augment import mocov2_augmentation
from cvbench.data.batch_augment import batched
from cvbench.data.gpu_decode import decode_batch, jpeg_only, read_bytes
from cvbench.data.images import ArrayImages, ConcatImages, IndexedImages
from cvbench.data.loaders import EncodedPairs, Images, Pairs, Reader, collate_encoded, load_image, on_device
from cvbench.errors import CvbenchError
from cvbench.training.pretrain import DeviceViews
from cvbench.training.stage_stats import StageMeter

CPU = torch.device("cpu")


def photo(seed: int, shape: tuple[int, int] = (48, 96)) -> Image.Image:
    """A smooth seeded image (compresses like a photo, not like noise)."""
    small = np.random.default_rng(seed).integers(0, 256, (shape[0] // 8, shape[1] // 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(shape[::-1], Image.BILINEAR).filter(ImageFilter.GaussianBlur(1))


@pytest.fixture
def jpegs(tmp_path) -> FileImages:
    paths = []
    for seed in range(4):
        path = tmp_path / f"image_{seed}.jpg"
        photo(seed).save(path, quality=90)
        paths.append(path)
    return FileImages(paths)


def test_device_decoding_gives_the_pixels_of_the_pillow_path(jpegs):
    data = [read_bytes(jpegs, i) for i in range(len(jpegs))]
    native = decode_batch(data, (48, 96), CPU)
    pillow = torch.stack([load_image(jpegs, i, (48, 96)) for i in range(len(jpegs))])
    assert native.shape == (4, 3, 48, 96) and native.dtype == torch.uint8
    assert (native.int() - pillow.int()).abs().max() <= 1  # both libjpeg: the same pixels at the file's size

    smaller = decode_batch(data, (24, 48), CPU)
    full_then_resized = torch.stack([v2.functional.resize(torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1),
                                                          [24, 48], antialias=True) for path in jpegs.paths])
    assert (smaller.int() - full_then_resized.int()).abs().max() <= 1
    host = torch.stack([load_image(jpegs, i, (24, 48)) for i in range(len(jpegs))])  # decodes at 1/2 scale (draft)
    assert (smaller.float() - host.float()).abs().mean() < 4  # DCT-domain scaling differs by a few levels only


def test_a_corrupt_jpeg_in_a_loaders_batch_is_named_by_its_file(jpegs, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    images = FileImages([*jpegs.paths, bad])
    (batch,) = next(iter(DataLoader(Images(images, Reader((48, 96)), encoded=True), batch_size=5,
                                    collate_fn=collate_encoded)))
    with pytest.raises(CvbenchError, match=f"cannot decode image {re.escape(str(bad))} as a JPEG"):
        on_device(batch, Reader((48, 96)), CPU)


def test_only_lists_of_jpeg_files_are_decoded_on_the_device(jpegs, tmp_path):
    png = tmp_path / "tile.png"
    photo(9).save(png)
    assert jpeg_only(jpegs) and jpeg_only(IndexedImages(jpegs, [2, 0]))
    assert jpeg_only(ConcatImages(jpegs, jpegs.take([1])))
    assert not jpeg_only(ConcatImages(jpegs, FileImages([png])))
    assert jpeg_only(ConcatImages(jpegs, FileImages([png])), indices=[0, 3])
    assert not jpeg_only(ArrayImages(np.zeros((2, 8, 8, 3), dtype=np.uint8)))


def test_batched_views_are_valid_seeded_and_drawn_per_image():
    recipe = batched(mocov2_augmentation((32, 64)))
    image = torch.from_numpy(np.array(photo(1, (40, 80)))).permute(2, 0, 1)
    batch = image.expand(8, -1, -1, -1)  # one image eight times: per-image draws make eight different views
    first = recipe(batch, torch.Generator().manual_seed(5))
    again = recipe(batch, torch.Generator().manual_seed(5))
    other = recipe(batch, torch.Generator().manual_seed(6))
    assert first.shape == (8, 3, 32, 64) and first.dtype == torch.float32
    assert 0 <= float(first.min()) and float(first.max()) <= 1
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert len({tuple(view.flatten()[:64].tolist()) for view in first}) == 8


def test_batched_crop_and_flip_match_torchvision_on_a_known_box():
    """Scale (1, 1) and the image's own aspect leave one box, the whole image: the crop is a plain resize."""
    recipe = batched(v2.Compose([v2.RandomResizedCrop([16, 32], scale=(1.0, 1.0), ratio=(2.0, 2.0), antialias=True),
                                 v2.RandomHorizontalFlip(p=1.0), v2.ToDtype(torch.float32, scale=True)]))
    image = torch.from_numpy(np.array(photo(2, (32, 64)))).permute(2, 0, 1)
    expected = v2.functional.resize(image.float() / 255, [16, 32], antialias=True).flip(-1)
    assert (recipe(image[None])[0] - expected).abs().max() < 0.06


def test_a_recipe_with_an_unknown_transform_stays_per_image():
    assert batched(v2.Compose([v2.RandomRotation(10), v2.ToDtype(torch.float32, scale=True)])) is None


def test_pretraining_views_from_jpeg_bytes_on_the_device(jpegs):
    spec = type("Spec", (), {"gpu_decode": "on", "gpu_augment": "on"})()
    reader = Reader((32, 64))
    views = DeviceViews.choose(spec, CPU, jpegs, reader, None, (mocov2_augmentation((32, 64)),) * 2)
    assert views.decode and views.recipes is not None
    loader = DataLoader(views.dataset(jpegs, reader, None, None), batch_size=3, collate_fn=collate_encoded)
    (data,) = next(iter(loader))
    assert isinstance(data, list) and data[0].data.dtype == torch.uint8 and data[0].data.dim() == 1
    assert [item.file for item in data] == jpegs.paths[:3]
    view1, view2 = views(data, reader, CPU)
    assert view1.shape == view2.shape == (3, 3, 32, 64) and not torch.equal(view1, view2)
    off = DeviceViews.choose(type("Spec", (), {"gpu_decode": "off", "gpu_augment": "off"})(), CPU, jpegs, reader,
                             None, (mocov2_augmentation((32, 64)),) * 2)
    assert off is None
    decoded = Images(jpegs, reader)[0][0]  # augmentation alone on the device: the loader decodes on the host
    assert decoded.shape == (3, 32, 64) and decoded.dtype == torch.uint8


def test_fine_tuning_pairs_decoded_on_the_device_match_the_host_pairs(jpegs):
    readers = {"ground": Reader((48, 96)), "aerial": Reader((48, 96))}
    positives = np.array([1, 2, 3, 0])
    host = Pairs(jpegs, jpegs, positives, [0, 2], readers)
    encoded = EncodedPairs(jpegs, jpegs, positives, [0, 2], readers)
    ground, aerial = collate_encoded([encoded[0], encoded[1]])
    pano, tile = encoded.on_device(ground, aerial, CPU)
    expected = [host[0], host[1]]
    assert pano.shape == tile.shape == (2, 3, 48, 96) and pano.dtype == torch.float32
    assert (pano - torch.stack([p for p, _ in expected])).abs().max() <= 1 / 255 + 1e-6
    assert (tile - torch.stack([t for _, t in expected])).abs().max() <= 1 / 255 + 1e-6


def test_the_record_says_how_long_each_stage_waited_for_data_and_its_peak_gpu_memory(trained_run):
    record = json.loads((trained_run / "result.json").read_text())
    stage = record["finetuning"]
    assert 0 <= stage["data_wait_fraction"] <= 1
    assert 0 <= stage["data_wait_s"] <= record["timings"]["finetune_s"] + 1
    assert stage["peak_gpu_memory_bytes"] is None  # a CPU run: no GPU memory to report
    assert stage["gpu_decode"] is False  # the synthetic world is rendered, not read from JPEG files


class _Slow(torch.utils.data.Dataset):
    """Each item takes 20 ms to load: the step waits 20 ms per batch of one."""

    def __len__(self) -> int:
        return 5

    def __getitem__(self, item: int) -> int:
        time.sleep(0.02)
        return item


def test_the_time_blocked_on_the_loader_is_measured():
    # Bounds that hold however busy the machine is: no upper limit on any sleep.
    started = time.perf_counter()
    meter = StageMeter(CPU)
    loader = meter.wrap(DataLoader(_Slow(), batch_size=1))
    assert len(loader) == 5 and loader.batch_sampler is loader.loader.batch_sampler
    loop_started = time.perf_counter()
    items = [int(batch) for batch in loader]
    looping = time.perf_counter() - loop_started
    time.sleep(0.1)  # a "step" that does not wait for data
    record = meter.record()
    elapsed = time.perf_counter() - started
    assert items == [0, 1, 2, 3, 4]
    waited = record["data_wait_s"]
    assert 0.1 <= waited <= looping  # at least five sleeps of 20 ms, and not the "step" after the loop
    # The stage lasted at least the waits and the step, and at most what this test saw.
    assert waited / elapsed <= record["data_wait_fraction"] <= waited / (waited + 0.1)
    assert record["peak_gpu_memory_bytes"] is None
