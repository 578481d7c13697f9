"""Limited field of view and unknown orientation: the view cut from a panorama, its heading, and a run with both."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import SMALL_WORLD

from cvbench.data.field_of_view import FieldOfView
from cvbench.data.loaders import Reader, Views
from cvbench.errors import SpecError
from cvbench.runs.assemble import resolve_spec
from cvbench.runs.reevaluate import evaluate_run
from cvbench.runs.runner import run
from cvbench.spec import RunSpec

PANORAMA = torch.arange(12).view(1, 1, 12)  # column c faces azimuth 30 c degrees


def columns(view: torch.Tensor) -> list[int]:
    return view.flatten().tolist()


def test_a_view_is_the_window_of_columns_centred_on_its_heading():
    quarter = FieldOfView(90)
    assert columns(quarter.cut(PANORAMA, 0.0)) == [11, 0, 1]  # north in the middle
    assert columns(quarter.cut(PANORAMA, 90.0)) == [2, 3, 4]  # east: column 3 in the middle
    assert columns(FieldOfView(180).cut(PANORAMA, 180.0)) == [3, 4, 5, 6, 7, 8]
    assert columns(FieldOfView(70).cut(PANORAMA, 0.0)) == [11, 0]  # 70 degrees of 12 columns: round(2.33) = 2
    assert FieldOfView(360).for_evaluation(PANORAMA, 7) is PANORAMA  # the whole panorama, north at column 0


def test_random_headings_are_seeded_per_query_and_training_draws_anew():
    view = FieldOfView(360, "random", seed=4)
    headings = [view.heading(i) for i in range(400)]
    assert headings == [FieldOfView(360, "random", seed=4).heading(i) for i in range(400)]  # evaluated twice
    assert headings != [FieldOfView(360, "random", seed=5).heading(i) for i in range(400)]
    assert 0 <= min(headings) and max(headings) < 360 and abs(np.mean(headings) - 180) < 20
    rolled = view.for_evaluation(PANORAMA, 3)
    assert sorted(columns(rolled)) == list(range(12)) and columns(rolled) != columns(PANORAMA)
    torch.manual_seed(0)
    first = [columns(view.for_training(PANORAMA)) for _ in range(5)]
    torch.manual_seed(0)
    assert first == [columns(view.for_training(PANORAMA)) for _ in range(5)]  # the seeded generator decides
    assert len({tuple(c) for c in first}) > 1
    assert FieldOfView(90).heading(3) == 0.0 and columns(FieldOfView(90).for_training(PANORAMA)) == [11, 0, 1]


def test_evaluation_views_come_out_at_the_view_width_and_are_the_same_every_time():
    images = np.random.default_rng(0).integers(0, 255, size=(4, 8, 32, 3), dtype=np.uint8)
    reader = Reader((8, 32), view=FieldOfView(90, "random", seed=1))
    assert reader.output_size == (8, 8) and Reader((8, 32)).output_size == (8, 32)
    views = Views(images, reader)
    assert views[2].shape == (3, 8, 8)
    torch.testing.assert_close(views[2], views[2])
    assert not torch.equal(views[1], views[2])


@pytest.mark.parametrize(("options", "message"), [
    ({"fov": 0.0}, r"--fov 0.0: the field of view must be a number of degrees in \(0, 360\]"),
    ({"fov": 400.0}, r"--fov 400.0"),
    ({"fov": float("nan")}, r"--fov nan"),
    ({"orientation": "north"}, "--orientation 'north': expected one of known, random"),
    ({"fov": 10.0}, "--fov 10 leaves 4 of the 128 columns"),
])
def test_bad_views_fail_before_any_work(options, message, registry):
    with pytest.raises(SpecError, match=message):
        resolve_spec(RunSpec(preset="smoke", **options))


def test_a_dataset_of_photos_refuses_a_field_of_view(registry):
    class Photos:
        ground_view = "image"

        def __init__(self, root, **options):
            pass

    class Plugin:
        from cvbench.contract.hookspecs import hookimpl

        @hookimpl
        def register_datasets(self, register):
            register("photos", Photos)

    registry.add(Plugin(), source="photos-tests")
    with pytest.raises(SpecError, match="ground images of dataset 'photos' are images"):
        resolve_spec(RunSpec(preset="smoke", dataset="photos", fov=90.0))


def test_a_quarter_view_facing_anywhere_is_recorded_and_evaluates_the_same_twice(tmp_path):
    """The mechanics at smoke size; that such a view matches worse is tests/test_synthetic_quality_bar.py's."""
    spec = RunSpec(preset="smoke", data_options=SMALL_WORLD, fov=90.0, orientation="random")
    quarter_dir = run(spec, tmp_path, quiet=True)
    quarter = json.loads((quarter_dir / "result.json").read_text())
    assert quarter["conventions"]["fov"] == 90.0 and quarter["conventions"]["orientation"] == "random"
    assert quarter["spec"]["fov"] == 90.0 and quarter["spec"]["orientation"] == "random"
    first, second = evaluate_run(quarter_dir, quiet=True), evaluate_run(quarter_dir, quiet=True)
    assert first["metrics"] == second["metrics"] == quarter["metrics"]
