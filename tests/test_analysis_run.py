"""`cvbench analyze` on real run folders: the figures, the runs compared, and uniformity against eq 3.5."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
import torch
from conftest import cli
from cvbench_plugins.metrics.uniformity import Uniformity
from PIL import Image
from toy_dataset import ToyPlugin

from cvbench.analysis.run_analysis import AnalysisOptions, analyze_run, compare_runs
from cvbench.contract.registry import create
from cvbench.data.loaders import readers
from cvbench.errors import CvbenchError
from cvbench.evaluation.evaluate import embed
from cvbench.runs.assemble import load_run_model
from cvbench.runs.runner import run
from cvbench.spec import RunSpec

FAST = dict(preset="smoke", dataset="toy", backbone="resnet10t", ground_size=(16, 64), aerial_size=(32, 32),
            dim=256, batch_size=8, epochs=2, head="siamese_vgg", eval_batch_size=16)
OPTIONS = AnalysisOptions(sample=40, queries=2, images=2, neighbourhood=20)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished toy runs that differ in learning rate, made once for this module."""
    from cvbench.contract.registry import get_registry, reset_registry

    reset_registry()
    get_registry().add(ToyPlugin(), source="toy-analysis")
    folder = tmp_path_factory.mktemp("runs")
    try:
        yield run(RunSpec(**FAST), folder, quiet=True), run(RunSpec(**{**FAST, "lr": 3e-3}), folder, quiet=True)
    finally:
        reset_registry()


@pytest.fixture
def toy(registry):
    registry.add(ToyPlugin(), source="toy-tests")
    return registry


@pytest.fixture
def toy_cli(monkeypatch):
    """:func:`conftest.cli` with the toy dataset registered (the in-process CLI reloads the registry)."""
    import cvbench.contract.registry as registry_module

    reload = registry_module.reset_registry

    def reload_with_toy() -> None:
        reload()
        registry_module.get_registry().add(ToyPlugin(), source="toy-cli")

    monkeypatch.setattr(registry_module, "reset_registry", reload_with_toy)
    yield cli
    reload()


SMALL = ("--sample", "40", "--queries", "2", "--images", "2", "--neighbourhood", "20", "--quiet")
READABLE_SVG = {"svg.fonttype": "none"}  # text stays text in the SVG, so a test can read titles and legends


def not_blank(path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 200 and image.height > 100
        grey = np.asarray(image.convert("L"))
        assert grey.std() > 10, f"{path} looks blank"


def eq_3_5(z: np.ndarray, t: float = 2.0) -> float:
    """log of the mean over pairs i != j of exp(-t ||z_i - z_j||^2), by a double loop (thesis eq 3.5)."""
    total, count = 0.0, 0
    for i in range(len(z)):
        for j in range(len(z)):
            if i != j:
                total += np.exp(-t * np.sum((z[i] - z[j]) ** 2))
                count += 1
    return float(np.log(total / count))


def test_recorded_uniformity_is_eq_3_5_of_the_final_embeddings(toy, runs):
    run_dir = runs[0]
    record = json.loads((run_dir / "result.json").read_text())
    spec, model = load_run_model(run_dir)
    pairs = create("dataset", "toy", None).load("toy", "val")
    assert pairs.num_queries < Uniformity().sample  # every query is in the measured sample
    views = readers(spec)
    cpu = torch.device("cpu")
    ground = embed(model.eval(), "ground", pairs.ground, views["ground"], cpu, 16).astype(np.float64)
    aerial = embed(model, "aerial", pairs.aerial, views["aerial"], cpu, 16)[pairs.positives].astype(np.float64)
    after = record["uniformity"]["after"]
    assert after["ground"] == pytest.approx(eq_3_5(ground), abs=1e-4)
    assert after["satellite"] == pytest.approx(eq_3_5(aerial), abs=1e-4)
    assert after["all"] == pytest.approx(eq_3_5(np.concatenate([ground, aerial])), abs=1e-4)
    before = record["uniformity"]["before"]
    assert before != after
    csv = (run_dir / "metrics.csv").read_text().splitlines()
    assert "uniformity_all" in csv[0] and len(csv) == 1 + 1 + FAST["epochs"]  # epoch 0 = before


def test_analyze_writes_four_figures_that_are_not_blank(toy, runs, tmp_path):
    written = analyze_run(runs[0], tmp_path / "figures", OPTIONS, quiet=True)
    assert [p.name for p in written] == ["embeddings.png", "heatmaps.png", "feature_maps.png", "curves.png"]
    for path in written:
        not_blank(path)
    with Image.open(written[0]) as embeddings:
        assert embeddings.height > embeddings.width / 3 * 1.5  # two rows: before and after


def test_a_run_without_the_initial_checkpoint_gets_the_after_figures(toy, runs, tmp_path):
    import shutil

    copy = tmp_path / "old-run"
    shutil.copytree(runs[0], copy)
    (copy / "checkpoints" / "initial.safetensors").unlink()
    written = analyze_run(copy, None, OPTIONS, quiet=True)
    assert all(path.parent == copy / "analysis" for path in written)
    with pytest.raises(CvbenchError, match="initial.safetensors"):
        compare_runs([runs[0], copy], tmp_path / "cmp", "before", OPTIONS, quiet=True)


def test_compare_puts_runs_side_by_side(toy, runs, tmp_path):
    written = compare_runs(list(runs), tmp_path / "cmp", "before", OPTIONS, quiet=True)
    assert [p.name for p in written] == ["embeddings_before.png", "curves.png"]
    for path in written:
        not_blank(path)
    with pytest.raises(CvbenchError, match="at least two"):
        compare_runs([runs[0]], tmp_path / "cmp", "before", OPTIONS, quiet=True)
    with pytest.raises(CvbenchError, match="--state"):
        compare_runs(list(runs), tmp_path / "cmp", "during", OPTIONS, quiet=True)


def test_analyze_cli_errors(tmp_path):
    wide = {"COLUMNS": "1000"}  # rich wraps at the terminal width
    result = cli("analyze", str(tmp_path), env=wide)
    assert result.returncode == 2 and "not a finished cvbench run" in result.stderr
    result = cli("analyze", str(tmp_path), str(tmp_path), env=wide)
    assert result.returncode == 2 and "--compare" in result.stderr


def test_compare_labels_name_the_runs_in_titles_and_legends(toy_cli, runs, tmp_path):
    out = tmp_path / "cmp"
    with matplotlib.rc_context(READABLE_SVG):
        result = toy_cli("analyze", "--compare", str(runs[0]), str(runs[1]), "--label", "baseline", "--label",
                         "higher lr", "--fig-format", "svg", "--out", str(out), *SMALL)
    assert result.returncode == 0, result.stderr
    curves = (out / "curves.svg").read_text()
    assert ">baseline<" in curves and ">higher lr<" in curves
    assert runs[0].name not in curves and runs[1].name not in curves
    embeddings = (out / "embeddings_before.svg").read_text()
    assert "higher lr (before fine-tuning)" in embeddings and runs[1].name not in embeddings


def test_compare_label_count_must_match_the_runs(toy_cli, runs, tmp_path):
    out = tmp_path / "cmp"
    result = toy_cli("analyze", "--compare", str(runs[0]), str(runs[1]), "--label", "baseline", "--out", str(out),
                     env={"COLUMNS": "1000"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --label: 1 given for 2 run folder(s); give one per run, in the order of the runs"]
    assert not out.exists()
    result = toy_cli("analyze", str(runs[0]), "--label", "a", "--label", "b", "--out", str(out))
    assert result.returncode == 2 and "--label: 2 given for 1 run folder(s)" in result.stderr


def test_analyze_writes_the_chosen_format_with_the_rank_caption(toy_cli, runs, tmp_path):
    with matplotlib.rc_context(READABLE_SVG):
        result = toy_cli("analyze", str(runs[0]), "--fig-format", "svg", "--out", str(tmp_path), *SMALL)
    assert result.returncode == 0, result.stderr
    names = ["embeddings.svg", "heatmaps.svg", "feature_maps.svg", "curves.svg"]
    assert result.stdout.splitlines() == [f"wrote {tmp_path / name}" for name in names]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    # The toy validation split has 48 tiles on one street; a panel draws the 20 nearest its query.
    assert "rank r of the true tile among the 20 gallery tiles nearest the query" in \
        (tmp_path / "heatmaps.svg").read_text()
    result = toy_cli("analyze", str(runs[0]), "--fig-format", "jpg", "--out", str(tmp_path))
    assert result.returncode == 2 and all(f"'{fmt}'" in result.stderr for fmt in ("png", "pdf", "svg"))


def test_analyze_dpi_sets_the_size_in_pixels(toy_cli, runs, tmp_path):
    result = toy_cli("analyze", str(runs[0]), "--dpi", "60", "--out", str(tmp_path), *SMALL)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "curves.png") as image:
        assert image.size == (16 * 60, round(4.4 * 60))  # the curves figure is 16 x 4.4 inches
    result = toy_cli("analyze", str(runs[0]), "--dpi", "0", "--out", str(tmp_path / "none"))
    assert result.returncode == 2 and "--dpi 0: expected a whole number from 20 to 1200" in result.stderr
