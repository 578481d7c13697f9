"""`cvbench index` and `cvbench localize` with the shared trained run, on the small world's exported val split.

`cvbench data synth` writes the tiles and queries as PNG files with tiles.csv and queries.csv beside them;
the index is built once per module from them and every test below searches it.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import SMALL_WORLD_ARGS, cli

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """The trained run's small world exported by `cvbench data synth`: val/{ground,aerial}, tiles.csv, queries.csv."""
    out = tmp_path_factory.mktemp("world")
    result = cli("data", "synth", "--out", str(out), *SMALL_WORLD_ARGS)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def index_dir(trained_run, world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("index") / "val"
    result = cli("index", str(trained_run), "--tiles", str(world / "val" / "tiles.csv"), "--out", str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert f"coordinates from the CSV file {world / 'val' / 'tiles.csv'}" in result.stderr
    return out


def _localize(run: Path, index: Path, queries: Path, *extra: str):
    return cli("localize", str(run), "--index", str(index), "--queries", str(queries), "-q", *extra)


def test_synth_writes_the_tile_and_query_files_index_and_localize_read(world):
    """Per subset: tiles.csv lists every tile at its position; queries.csv each query's position and true tile."""
    pairs = pd.read_csv(world / "pairs.csv")
    val = pairs[pairs["split"] == "val"]
    tiles = pd.read_csv(world / "val" / "tiles.csv")
    queries = pd.read_csv(world / "val" / "queries.csv")
    assert list(tiles.columns) == ["path", "x", "y"] and len(tiles) == 160
    assert list(queries.columns) == ["path", "x", "y", "tile"] and len(queries) == 160
    assert all((world / "val" / path).is_file() for path in [*tiles["path"], *queries["path"], *queries["tile"]])
    # pairs.csv (the pairs dataset's own file) says the same pairs and positions
    expected = val[val["ground"].notna()].reset_index(drop=True)
    assert ("val/" + queries["path"]).tolist() == expected["ground"].tolist()
    assert ("val/" + queries["tile"]).tolist() == expected["aerial"].tolist()
    np.testing.assert_allclose(queries[["x", "y"]].to_numpy(), expected[["x", "y"]].to_numpy())
    assert (world / "train" / "tiles.csv").is_file() and (world / "train" / "queries.csv").is_file()


def test_localize_puts_the_true_tile_first_as_often_as_the_runs_recall(trained_run, world, index_dir, tmp_path):
    """The done-when check: index + localize on the exported val split reproduce the run's own evaluation.

    The run evaluated a seeded subset of 128 of the 160 val queries against all 160 tiles; the same
    subset is read back here (``load_data`` draws it from the seed alone). Its R@k (percent, ties
    "random": the expected count over random orders of exactly tied tiles) is compared with the
    number of those queries whose true tile localize lists within its top k. With no two equal
    scores among any query's top 10 (checked), the random-ties expectation, the optimistic count
    and the strict count are one number, so the comparison is exact. The run's own top-1
    localisation error (its ``error_median_m``, ``error_mean_m``) is compared the same way.
    """
    from cvbench.runs.assemble import resolve_spec
    from cvbench.runs.folder import RunFolder
    from cvbench.runs.subsets import load_data, open_dataset

    out = tmp_path / "top.csv"
    result = _localize(trained_run, index_dir, world / "val" / "ground", "--truth", str(world / "val" / "queries.csv"),
                       "--top-k", "10", "--out", str(out))
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    assert len(table) == 160 * 10
    assert table.groupby("query")["score"].apply(lambda scores: scores.is_unique).all()

    spec = resolve_spec(RunFolder(trained_run).read_spec())
    evaluated = load_data(spec, *open_dataset(spec)).val_queries
    names = [str((world / "val" / "ground" / f"{query:06d}.png").resolve()) for query in evaluated]
    mine = table[table["query"].isin(names)]
    assert mine["query"].nunique() == len(evaluated) == 128
    true_rank = mine[mine["is_true_tile"]].set_index("query")["rank"].reindex(names, fill_value=99)
    record = json.loads((trained_run / "result.json").read_text())
    assert record["num_queries"] == 128 and record["num_references"] == 160
    one_percent = 160 // 100 + 1  # R@1%'s k under the run's "floor+1"
    for name, k in (("R@1", 1), ("R@5", 5), ("R@10", 10), ("R@1%", one_percent)):
        assert int((true_rank <= k).sum()) == round(record["metrics"][name] * 128 / 100), name
    top1 = mine[mine["rank"] == 1]
    assert top1["error_m"].median() == pytest.approx(record["metrics"]["error_median_m"], rel=1e-6)
    assert top1["error_m"].mean() == pytest.approx(record["metrics"]["error_mean_m"], rel=1e-6)

    # the line printed for all 160 queries says what the table says
    best = table[table["rank"] == 1]
    assert f"median {best['error_m'].median():.1f} m, mean {best['error_m'].mean():.1f} m" in result.stdout
    assert f"true tile at rank 1 for {int(best['is_true_tile'].sum())}" in result.stdout


def test_geojson_and_json_outputs_place_each_top_tile_at_its_coordinates(trained_run, world, index_dir, tmp_path):
    tiles = pd.read_csv(world / "val" / "tiles.csv")
    where = {str((world / "val" / path).resolve()): (x, y) for path, x, y in tiles.itertuples(index=False)}
    out = tmp_path / "top.geojson"
    result = _localize(trained_run, index_dir, world / "val" / "ground", "--top-k", "2", "--format", "geojson",
                       "--out", str(out))
    assert result.returncode == 0, result.stderr
    collection = json.loads(out.read_text())
    assert collection["type"] == "FeatureCollection" and collection["cvbench:coordinates"] == "xy metres"
    assert len(collection["features"]) == 160 * 2
    for feature in collection["features"][:10]:
        assert feature["geometry"]["type"] == "Point"
        assert feature["geometry"]["coordinates"] == pytest.approx(where[feature["properties"]["tile"]])
        assert feature["properties"]["rank"] in (1, 2) and -1 <= feature["properties"]["score"] <= 1

    listed = _localize(trained_run, index_dir, world / "val" / "ground", "--top-k", "3", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert document["run"] == trained_run.name and document["summary"]["queries"] == 160
    first = document["queries"][0]
    assert [entry["rank"] for entry in first["top"]] == [1, 2, 3]
    assert first["top"][0]["score"] >= first["top"][1]["score"] >= first["top"][2]["score"]


def test_vigor_named_tiles_give_latitude_and_longitude_and_the_error_in_metres(trained_run, world, tmp_path):
    """Coordinates from satellite_<lat>_<lon>.png; a query 0.001 degrees north of the only tile is 111.2 m off."""
    folder = tmp_path / "tiles"
    folder.mkdir()
    shutil.copy(world / "val" / "aerial" / "000000.png", folder / "satellite_40.7_-74.0.png")
    result = cli("index", str(trained_run), "--tiles", str(folder), "--out", str(tmp_path / "index"), "-q")
    assert result.returncode == 0, result.stderr
    assert "VIGOR-style file names" in result.stderr
    truth = tmp_path / "truth.csv"
    truth.write_text(f"path,lat,lon\n{world / 'val' / 'ground' / '000000.png'},40.701,-74.0\n")
    out = tmp_path / "top.geojson"
    located = _localize(trained_run, tmp_path / "index", world / "val" / "ground", "--truth", str(truth),
                        "--format", "geojson", "--top-k", "1", "--out", str(out))
    assert located.returncode == 0, located.stderr
    features = json.loads(out.read_text())["features"]
    assert features[0]["geometry"]["coordinates"] == [-74.0, 40.7]  # GeoJSON's order: longitude, latitude
    by_query = {feature["properties"]["query"]: feature["properties"] for feature in features}
    known = by_query[str((world / "val" / "ground" / "000000.png").resolve())]
    assert known["error_m"] == pytest.approx(0.001 * math.pi / 180 * 6_371_008.8, rel=1e-6)  # 111.195 m
    assert all(props["error_m"] is None for name, props in by_query.items() if not name.endswith("000000.png"))


def test_an_index_of_another_run_is_refused_naming_both_runs(trained_run, world, index_dir, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    other = tmp_path / "other-run"
    shutil.copytree(trained_run, other)
    weights = other / "checkpoints" / "model.safetensors"
    with safe_open(str(weights), "pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(weights))
    name = next(key for key, value in tensors.items() if value.is_floating_point())
    tensors[name] = tensors[name] + 1.0
    save_file(tensors, str(weights), metadata=metadata)
    result = _localize(other, index_dir, world / "val" / "ground")
    assert result.returncode == 2
    assert "other-run" in result.stderr and trained_run.name in result.stderr and "Traceback" not in result.stderr


def test_an_index_is_accepted_for_another_run_with_identical_weights(trained_run, index_dir, tmp_path):
    """Two runs of one spec and seed train identical weights on the CPU, but each checkpoint's metadata names its
    own run: the index must compare the weights, not the file's bytes (it said "other weights")."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    import cvbench

    twin = tmp_path / "20261206-000000-run-twin-synthetic-none-safa-s0"
    shutil.copytree(trained_run, twin)
    weights = twin / "checkpoints" / "model.safetensors"
    with safe_open(str(weights), "pt") as handle:
        metadata = {**handle.metadata(), "run": json.dumps(twin.name)}
    save_file(load_file(str(weights)), str(weights), metadata=metadata)
    assert weights.read_bytes() != (trained_run / "checkpoints" / "model.safetensors").read_bytes()
    cvbench.load_tile_index(index_dir).check_run(cvbench.load_run(twin, device="cpu"))  # no IndexMismatchError


def test_an_index_with_another_embedding_size_is_refused_naming_both(trained_run, world, tmp_path):
    from cvbench.evaluation.localisation import Positions
    from cvbench.evaluation.retrieval import build_index
    from cvbench.inference import TileIndex

    vectors = np.eye(3, 8, dtype=np.float32)
    meta = {"format": "cvbench tile index", "run": "small-run", "fingerprint": "0" * 64, "dim": 8, "tiles": 3,
            "coordinates": "xy"}
    TileIndex(build_index(vectors), ["a.png", "b.png", "c.png"], Positions("xy", np.zeros((3, 2))), meta).save(
        tmp_path / "small")
    result = _localize(trained_run, tmp_path / "small", world / "val" / "ground")
    assert result.returncode == 2
    message = result.stderr
    assert "small-run" in message and "embedding size 8" in message
    assert trained_run.name in message and "embedding size 1024" in message


def test_an_index_whose_embedding_fields_differ_from_the_runs_is_refused_naming_them(trained_run, world, index_dir,
                                                                                      tmp_path):
    copy = tmp_path / "index"
    shutil.copytree(index_dir, copy)
    meta = json.loads((copy / "index.json").read_text())
    assert meta["embedding"]["aerial_size"] == [64, 64] and meta["dim"] == 1024 and meta["run"] == trained_run.name
    meta["embedding"]["aerial_size"] = [32, 32]
    (copy / "index.json").write_text(json.dumps(meta))
    result = _localize(trained_run, copy, world / "val" / "ground")
    assert result.returncode == 2 and "other aerial_size" in result.stderr


def test_unreadable_queries_are_each_reported_and_the_rest_localised(trained_run, world, index_dir, tmp_path):
    queries = tmp_path / "queries"
    queries.mkdir()
    for name in ("000000.png", "000001.png"):
        shutil.copy(world / "val" / "ground" / name, queries / name)
    (queries / "broken.png").write_bytes(b"not an image")
    (queries / "cut.png").write_bytes((world / "val" / "ground" / "000002.png").read_bytes()[:60])
    result = _localize(trained_run, index_dir, queries, "--top-k", "1")
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert any("broken.png" in line for line in warned) and any("cut.png" in line for line in warned)
    located = pd.read_csv(io.StringIO(result.stdout))
    assert sorted(Path(name).name for name in located["query"]) == ["000000.png", "000001.png"]
    assert "2 unreadable left out" in result.stderr

    for name in ("000000.png", "000001.png"):
        (queries / name).unlink()
    nothing = _localize(trained_run, index_dir, queries, "--out", str(tmp_path / "top.csv"))
    assert nothing.returncode == 2 and "no query image" in nothing.stderr and not (tmp_path / "top.csv").exists()


def test_a_bad_tile_csv_row_names_the_file_and_line(trained_run, world, tmp_path):
    csv = tmp_path / "tiles.csv"
    tile = world / "val" / "aerial" / "000000.png"
    csv.write_text(f"path,lat,lon\n{tile},40.7,-74.0\n{tile},north,-74.0\n")
    result = cli("index", str(trained_run), "--tiles", str(csv), "--out", str(tmp_path / "index"))
    assert result.returncode == 2
    assert f"{csv}:3: lat 'north' is not a number" in result.stderr.replace("\n", "")
    assert not (tmp_path / "index").exists()


def test_missing_index_tiles_and_queries_say_what_was_expected(trained_run, world, index_dir, tmp_path):
    missing = cli("localize", str(trained_run), "--index", str(tmp_path / "nowhere"), "--queries",
                  str(world / "val" / "ground"))
    assert missing.returncode == 2
    assert "--index" in missing.stderr and "nowhere does not exist" in missing.stderr
    assert "a folder made by `cvbench index`" in missing.stderr.replace("\n", " ")
    tiles = cli("index", str(trained_run), "--tiles", str(tmp_path / "no-tiles"), "--out", str(tmp_path / "i"))
    assert tiles.returncode == 2 and "no-tiles does not exist" in tiles.stderr and "path,lat,lon" in tiles.stderr
    queries = _localize(trained_run, index_dir, tmp_path / "no-queries")
    assert queries.returncode == 2 and "--queries" in queries.stderr and "no-queries does not exist" in queries.stderr


def test_index_out_refuses_a_folder_that_is_not_an_index(trained_run, world, tmp_path):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("precious")
    result = cli("index", str(trained_run), "--tiles", str(world / "val" / "tiles.csv"), "--out", str(keep), "-q")
    assert result.returncode == 2 and "is not a tile index" in result.stderr
    assert (keep / "notes.txt").read_text() == "precious"


def test_fov_cuts_queries_as_the_runs_fov_does(trained_run, world, index_dir):
    """--fov 90 cuts 32x128 panoramas to 32 columns; the smoke run's SAFA head, built for 360, refuses that by name."""
    import cvbench

    run = cvbench.load_run(trained_run, device="cpu")
    assert run.reader("ground").output_size == (32, 128)
    assert run.reader("ground", fov=90).output_size == (32, 32)
    result = _localize(trained_run, index_dir, world / "val" / "ground", "--fov", "90")
    assert result.returncode == 2
    assert "--fov 90" in result.stderr and "360-degree views" in result.stderr and "Traceback" not in result.stderr


def test_embed_takes_paths_pil_images_arrays_and_tensors_alike(trained_run, world):
    import torch
    from PIL import Image

    import cvbench

    run = cvbench.load_run(trained_run, device="cpu")
    paths = sorted((world / "val" / "ground").glob("*.png"))[:3]
    arrays = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
    from_paths = run.embed(paths)
    assert from_paths.shape == (3, run.dim) and from_paths.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(from_paths, axis=1), 1.0, atol=1e-5)
    for other in ([Image.open(path) for path in paths], arrays, np.stack(arrays),
                  torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)):
        np.testing.assert_allclose(run.embed(other), from_paths, atol=1e-6)


def test_the_readme_example_runs(trained_run, world, tmp_path, monkeypatch):
    """The README's "Use a trained model" block, run as written, from a folder where its paths exist."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Use a trained model"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "RUN").symlink_to(trained_run)
    (tmp_path / "synth").symlink_to(world)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)
    assert scope["result"].summary()["queries"] == 160
    assert (tmp_path / "tiles-index" / "index.json").is_file()
