"""`cvbench data info | preview | synth` on a small synthetic world, and the leaderboard command."""

from __future__ import annotations

import pandas as pd
from PIL import Image

from conftest import cli

SMALL = ["--data-option", "train_pairs=12", "--data-option", "val_pairs=8", "--data-option", "num_train_cities=1",
         "--data-option", "num_val_cities=1", "--data-option", "city_size=256"]


def test_info_preview_and_export(tmp_path):
    info = cli("data", "info", *SMALL)
    assert info.returncode == 0, info.stderr
    assert "cross_area" in info.stdout and "same_area" in info.stdout

    sheet = tmp_path / "preview.png"
    preview = cli("data", "preview", "--out", str(sheet), "--count", "3", *SMALL)
    assert preview.returncode == 0, preview.stderr
    with Image.open(sheet) as image:
        pixels = image.convert("L")
        assert pixels.getextrema()[1] - pixels.getextrema()[0] > 100  # not blank

    out = tmp_path / "export"
    export = cli("data", "synth", "--out", str(out), *SMALL)
    assert export.returncode == 0, export.stderr
    index = pd.read_csv(out / "pairs.csv")
    assert list(index.columns) == ["ground", "aerial", "x", "y", "split", "city"]
    assert sorted(index["split"].unique()) == ["train", "val"] and len(index) == 20
    for column in ("ground", "aerial"):
        assert all((out / path).is_file() for path in index[column])


def test_bad_data_option_names_the_option():
    result = cli("data", "info", "--data-option", "tile_size=huge")
    assert result.returncode == 2 and "tile_size" in result.stderr
