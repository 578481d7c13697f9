"""Options of the synthetic dataset: defaults, coercion of CLI strings, and SpecErrors that name the option."""

from __future__ import annotations

import pytest

from cvbench.errors import SpecError
from cvbench_plugins.datasets.synthetic import Synthetic
from cvbench_plugins.datasets.synthetic.options import GENERATOR_VERSION, SyntheticOptions
from cvbench_plugins.datasets.synthetic.styles import STYLE_NAMES


def test_defaults_match_the_documented_benchmark_size():
    options = SyntheticOptions.parse({})
    assert (options.layout, options.tile_size, options.tile_metres) == ("aligned", 64, 64.0)
    assert options.pano_size == (32, 128) and options.city_size == 768
    assert (options.num_train_cities, options.num_val_cities) == (5, 2)
    assert (options.train_pairs, options.val_pairs) == (2000, 1000)
    assert options.styles == STYLE_NAMES == ("downtown", "suburb", "old_town", "industrial", "garden_city")
    assert options.temporal_change == 0.5 and options.unknown_orientation is False


def test_strings_from_the_command_line_are_coerced_to_the_same_options():
    from_cli = SyntheticOptions.parse({
        "seed": "7", "layout": "offset", "tile_size": " 32", "pano_size": "64x256", "tile_metres": "48",
        "temporal_change": "0.25", "unknown_orientation": "true", "styles": "suburb, downtown",
        "num_train_cities": "2", "city_size": "512"})
    from_python = SyntheticOptions.parse({
        "seed": 7, "layout": "offset", "tile_size": 32, "pano_size": (64, 256), "tile_metres": 48.0,
        "temporal_change": 0.25, "unknown_orientation": True, "styles": ["suburb", "downtown"],
        "num_train_cities": 2, "city_size": 512})
    assert from_cli == from_python
    assert from_cli.cache_key() == from_python.cache_key()
    assert SyntheticOptions.parse({"unknown_orientation": "No"}).unknown_orientation is False


def test_the_cache_key_changes_with_every_option_and_the_generator_version(monkeypatch):
    base = SyntheticOptions.parse({}).cache_key()
    changed = [{"seed": 1}, {"layout": "offset"}, {"tile_size": 32}, {"pano_size": "64x256"},
               {"temporal_change": 0.4}, {"unknown_orientation": True}, {"styles": "suburb"}, {"city_size": 512},
               {"num_train_cities": 2}, {"num_val_cities": 3}, {"train_pairs": 10}, {"val_pairs": 10},
               {"tile_metres": 70}]
    keys = {SyntheticOptions.parse(change).cache_key() for change in changed}
    assert base not in keys and len(keys) == len(changed)
    import cvbench_plugins.datasets.synthetic.options as module
    monkeypatch.setattr(module, "GENERATOR_VERSION", GENERATOR_VERSION + 1)
    assert SyntheticOptions.parse({}).cache_key() != base


@pytest.mark.parametrize("name, value, expected", [
    ("tile_size", "sixty-four", "integer"),
    ("tile_size", 4, "from 8"),
    ("tile_size", True, "integer"),
    ("seed", -1, "integer"),
    ("train_pairs", 0, "from 1"),
    ("layout", "grid", "aligned, offset"),
    ("pano_size", "32x130", "divisible by 4"),
    ("pano_size", "32by128", "HxW"),
    ("pano_size", (32, 128, 3), "HxW"),
    ("temporal_change", 1.5, "from 0 to 1"),
    ("temporal_change", "nan", "from 0 to 1"),
    ("unknown_orientation", "maybe", "true or false"),
    ("styles", "suburb,moon_base", "downtown"),
    ("styles", "", "downtown"),
    ("styles", "suburb,suburb", "distinct"),
    ("styles", None, "distinct"),
    ("tile_size", None, "integer"),
    ("tile_metres", "wide", "number"),
])
def test_bad_values_raise_spec_errors_naming_the_option_and_what_it_expects(name, value, expected):
    with pytest.raises(SpecError) as error:
        Synthetic(**{name: value})
    assert repr(name) in str(error.value) and expected in str(error.value)


def test_unknown_option_names_are_refused_with_the_list_of_options():
    with pytest.raises(SpecError, match="'tilesize'.*tile_size"):
        Synthetic(tilesize=64)


def test_options_that_cannot_fit_together_are_refused():
    with pytest.raises(SpecError, match="'city_size'.*'tile_metres'"):
        Synthetic(city_size=100, tile_metres=64)


def test_bad_split_and_subset_names_are_refused(tmp_path):
    dataset = Synthetic(tmp_path)
    assert dataset.splits() == ["cross_area", "same_area"]
    with pytest.raises(SpecError, match="cross_area, same_area"):
        dataset.load("downtown", "train")
    with pytest.raises(SpecError, match="train, val"):
        dataset.load("cross_area", "test")
