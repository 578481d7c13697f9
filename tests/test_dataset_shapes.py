"""The ``shapes`` dataset: drawn objects and textures, the out-of-domain ImageNet stand-in."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from cvbench_plugins.datasets.shapes import Shapes
from cvbench_plugins.datasets.shapes.draw import CLASS_NAMES
from safetensors.torch import load_file

from cvbench.contract.registry import create
from cvbench.errors import SpecError
from cvbench.runs.runner import run
from cvbench.spec import RunSpec

TOY = dict(train_images=60, val_images=30, ground_size=(16, 64), aerial_size=(32, 32))


def _images(pairs) -> tuple[np.ndarray, np.ndarray]:
    return pairs.ground.array, pairs.aerial.array


def test_the_plugin_builds_pairs_of_the_sizes_asked(registry):
    dataset = create("dataset", "shapes", None, **TOY)
    assert dataset.splits() == ["objects"]
    assert dataset.image_sizes() == {"ground": (16, 64), "aerial": (32, 32)}
    for subset, count in (("train", 60), ("val", 30)):
        pairs = dataset.load("objects", subset)
        ground, aerial = _images(pairs)
        assert ground.shape == (count, 16, 64, 3) and aerial.shape == (count, 32, 32, 3)
        assert ground.dtype == aerial.dtype == np.uint8
        assert pairs.ground[0].shape == (16, 64, 3)
        assert np.array_equal(pairs.positives, np.arange(count)) and pairs.semi_positives is None
        for meta in (pairs.ground_meta, pairs.aerial_meta):
            assert list(meta.columns) == ["category", "item"] and len(meta) == count
            assert meta["item"].tolist() == list(range(count))
            assert meta["category"].tolist() == [CLASS_NAMES[i % len(CLASS_NAMES)] for i in range(count)]
        counts = pairs.ground_meta["category"].value_counts()  # the classes cycle: balanced to one item
        assert sorted(counts.index) == sorted(CLASS_NAMES) and counts.max() - counts.min() <= 1
    assert len(CLASS_NAMES) >= 10 and len(set(CLASS_NAMES)) == len(CLASS_NAMES)


def test_classes_option_takes_a_prefix_and_stays_balanced():
    pairs = Shapes(None, **{**TOY, "classes": 3}).load("objects", "train")
    assert pairs.ground_meta["category"].value_counts().to_dict() == {"disc": 20, "stripes": 20, "square": 20}


def test_same_seed_same_bytes_other_seed_other_images():
    first = _images(Shapes(None, **TOY, seed=3).load("objects", "val"))
    again = _images(Shapes(None, **TOY, seed=3).load("objects", "val"))
    other = _images(Shapes(None, **TOY, seed=4).load("objects", "val"))
    train = _images(Shapes(None, **TOY, seed=3).load("objects", "train"))
    for view in range(2):
        assert first[view].tobytes() == again[view].tobytes()
        assert not np.array_equal(first[view], other[view])
        assert not np.array_equal(first[view], train[view][:30])
    # an item does not depend on the subset's size
    longer = Shapes(None, **{**TOY, "val_images": 45}, seed=3).load("objects", "val")
    assert np.array_equal(longer.aerial.array[:30], first[1])


def test_the_bytes_are_pinned():
    """Every machine must draw these very bytes (IEEE arithmetic only, per-item streams); a deliberate change
    to the generator updates this hash."""
    pairs = Shapes(None, **TOY, seed=3).load("objects", "val")
    digest = hashlib.sha256(pairs.ground.array.tobytes() + pairs.aerial.array.tobytes()).hexdigest()
    assert digest == "150417a7a374a6c0a3a2135a3ee7c39eecf4c82e2ef08df3a36787e68b28d701"


def test_the_two_views_of_an_item_are_independent_renderings():
    ground, aerial = _images(Shapes(None, **{**TOY, "aerial_size": (16, 64)}).load("objects", "train"))
    assert not any(np.array_equal(ground[i], aerial[i]) for i in range(len(ground)))
    # foreground/background colours differ between the views: mean colours are unrelated
    assert np.abs(ground.mean((1, 2)) - aerial.mean((1, 2))).mean() > 20


def test_options_from_strings_and_bad_options():
    dataset = Shapes(None, train_images="60", val_images="30", ground_size="32x128", aerial_size="48",
                     seed="7", classes="12")
    assert dataset.options.train_images == 60 and dataset.options.seed == 7
    assert dataset.image_sizes() == {"ground": (32, 128), "aerial": (48, 48)}
    for options, named in (({"ground_size": "32by128"}, "ground_size.*HxW"), ({"classes": 1}, "classes.*from 2"),
                           ({"classes": 13}, "classes.*to 12"), ({"train_images": "many"}, "train_images"),
                           ({"seed": -1}, "seed"), ({"aerial_size": "4x4"}, "aerial_size"),
                           ({"colour": "red"}, "unknown shapes dataset option 'colour'")):
        with pytest.raises(SpecError, match=named):
            Shapes(None, **options)
    with pytest.raises(SpecError, match="no split 'cross_area'.*objects"):
        dataset.load("cross_area", "train")


def _nearest_class_mean(train_x, train_y, test_x, test_y) -> float:
    mean, std = train_x.mean(0), train_x.std(0) + 1e-9
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    classes = np.unique(train_y)
    centres = np.stack([train_x[train_y == c].mean(0) for c in classes])
    predicted = classes[((test_x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)]
    return float((predicted == test_y).mean())


def test_colour_does_not_tell_the_class_but_shape_does():
    """Nearest class mean on mean RGB is near chance (1/12); on a shape feature it is far above."""
    dataset = Shapes(None, train_images=360, val_images=240, ground_size=(16, 64), aerial_size=(32, 32))
    train, val = dataset.load("objects", "train"), dataset.load("objects", "val")
    labels = train.ground_meta["category"].to_numpy(), val.ground_meta["category"].to_numpy()
    chance = 1 / len(CLASS_NAMES)
    for view in ("ground", "aerial"):
        colour = [getattr(p, view).array.mean((1, 2)) for p in (train, val)]
        assert _nearest_class_mean(colour[0], labels[0], colour[1], labels[1]) < 2.5 * chance

    def spectrum(pairs) -> np.ndarray:  # low-frequency amplitude spectrum of the contrast-normalised grey image
        grey = pairs.aerial.array.astype(np.float64).mean(-1)
        grey -= grey.mean((1, 2), keepdims=True)
        grey /= np.abs(grey).mean((1, 2), keepdims=True) + 1e-3
        return np.log1p(np.abs(np.fft.fft2(grey))[:, :8, :8]).reshape(len(grey), -1)

    assert _nearest_class_mean(spectrum(train), labels[0], spectrum(val), labels[1]) > 3 * chance


SMOKE = dict(preset="smoke", backbone="resnet10t", ground_size=(16, 64), aerial_size=(32, 32), dim=64,
             head="siamese_vgg", batch_size=8, epochs=1, max_train_pairs=32, max_val_queries=16)


@pytest.fixture
def one_thread():
    """One intra-op thread while the test runs: on a busy 2-core machine torch's thread pool stalls on tiny
    batches (measured: this test's pre-training 25 s with 2 threads under load, 3 s with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_supervised_pretraining_on_shapes_starts_a_synthetic_run(registry, tmp_path, one_thread):
    """`cvbench pretrain` of both branches on shapes' categories, then fine-tuning on synthetic from it."""
    shapes = {**TOY, "train_images": 24, "val_images": 12, "ground_size": "16x64"}  # strings as from the CLI
    stage = run(RunSpec(**SMOKE, dataset="shapes", data_options=shapes,
                        pretrainer="supervised", pretrain_options={"label_column": "category"},
                        pretrain_branches="both", pretrain_data="all", pretrain_batch_size=12, pretrain_epochs=1,
                        base_init="random"),
                tmp_path / "stage", quiet=True, stage="pretrain", finetune_stage=False)
    record = json.loads((stage / "result.json").read_text())
    assert record["status"] == "finished"
    for branch in ("ground", "aerial"):
        assert (stage / "checkpoints" / f"pretrained_{branch}.safetensors").is_file()
        assert record["pretraining"][branch]["images"] == 36  # train and val ("all")
        assert np.isfinite(record["pretraining"][branch]["loss"])
    finetuned = run(RunSpec(**SMOKE, dataset="synthetic", base_init=str(stage),
                            data_options={"train_pairs": 32, "val_pairs": 16, "num_train_cities": 1,
                                          "num_val_cities": 1, "city_size": 384, "pano_size": "16x64",
                                          "tile_size": 32, "styles": "downtown"}),
                    tmp_path / "runs", quiet=True)
    assert json.loads((finetuned / "result.json").read_text())["status"] == "finished"
    initial = load_file(str(finetuned / "checkpoints" / "initial.safetensors"))
    for branch in ("ground", "aerial"):
        pretrained = load_file(str(stage / "checkpoints" / f"pretrained_{branch}.safetensors"))
        assert all(np.array_equal(initial[f"{branch}.backbone.{key}"].numpy(), value.numpy())
                   for key, value in pretrained.items())
