"""Run spec: presets, explicit overrides, validation before compute, CLI parsing."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from conftest import cli_spec as cli

from cvbench.errors import SpecError
from cvbench.runs.assemble import resolve_spec
from cvbench.spec import RunSpec, branch_init, parse_loss, parse_size


def test_explicit_options_override_the_preset(registry):
    spec = resolve_spec(cli(preset="smoke", epochs=3, loss=["soft_triplet", "uniformity:0.001"]))
    assert spec.epochs == 3
    assert spec.batch_size == 32  # from the preset
    assert spec.loss == [("soft_triplet", 1.0), ("uniformity", 0.001)]


def test_table_3_1_rows_resolve_to_branch_inits(registry):
    row1 = resolve_spec(cli(preset="smoke", base_init="random"))
    assert (branch_init(row1, "ground"), branch_init(row1, "aerial")) == ("random", "random")
    row7 = resolve_spec(cli(preset="smoke", pretrainer="mocov2", pretrain_branches="both",
                            pretrain_data="all", pretrain_from="imagenet", base_init="imagenet"))
    assert (branch_init(row7, "ground"), branch_init(row7, "aerial")) == ("pretrained", "pretrained")
    row4 = resolve_spec(cli(preset="smoke", pretrainer="mocov2", pretrain_data="train", base_init="imagenet"))
    assert (branch_init(row4, "ground"), branch_init(row4, "aerial")) == ("imagenet", "pretrained")


@pytest.mark.parametrize("values, culprit", [
    ({"pretrain_data": "test"}, "--pretrain-data"),
    ({"pretrain_branches": "left"}, "--pretrain-branches"),
    ({"aerial_init": "pretrained"}, "--aerial-init"),
    ({"batch_size": 1}, "--batch-size"),
    ({"device": "tpu"}, "--device"),
    ({"head": "saffa"}, "did you mean 'safa'"),
    ({"loss": ["soft_triplet", "uniform:0.1"]}, "did you mean 'uniformity'"),
    ({"pretrainer": "moco"}, "mocov2"),
    ({"preset": "fast"}, "preset"),
])
def test_bad_options_fail_before_any_work_naming_the_option(registry, values, culprit):
    with pytest.raises(Exception) as info:
        resolve_spec(cli(preset=values.pop("preset", "smoke"), **values))
    assert culprit in str(info.value)


def test_parsers():
    assert parse_size("32x128") == (32, 128)
    assert parse_size("64") == (64, 64)
    assert parse_loss("uniformity:0.001") == ("uniformity", 0.001)
    assert parse_loss("soft_triplet") == ("soft_triplet", 1.0)
    with pytest.raises(SpecError):
        parse_size("wide")
    with pytest.raises(SpecError):
        parse_loss("soft_triplet:heavy")
    spec = cli(data_option=["layout=offset", "train_pairs=100"], loss_option=["soft_triplet.gamma=5"])
    assert spec.data_options == {"layout": "offset", "train_pairs": "100"}  # text until the plugin is known
    assert spec.loss_options == {"soft_triplet": {"gamma": "5"}}


def test_resolving_types_plugin_options_by_the_factory_signature(registry):
    spec = resolve_spec(cli(preset="smoke", data_option=["layout=offset", "train_pairs=100"],
                            loss_option=["soft_triplet.gamma=5"]))
    assert spec.data_options["train_pairs"] == 100  # synthetic takes **options: read from the text
    assert spec.loss_options == {"soft_triplet": {"gamma": 5.0}}
    assert type(spec.loss_options["soft_triplet"]["gamma"]) is float


def test_spec_round_trips_through_a_dict():
    spec = cli(ground_size="32x128", loss=["infonce"])
    again = RunSpec.from_dict(spec.to_dict())
    assert again == spec
    with pytest.raises(SpecError, match="unknown option"):
        RunSpec.from_dict({"epochz": 3})


def test_gpu_path_options_are_validated_and_default_to_auto_channels_last_without_compile(registry):
    spec = resolve_spec(cli(preset="smoke"))
    assert (spec.channels_last, spec.compile) == ("auto", False)
    assert resolve_spec(cli(preset="smoke", channels_last="off", compile=True)).compile
    with pytest.raises(SpecError, match="channels.last.*auto, on, off"):
        resolve_spec(cli(preset="smoke", channels_last="sometimes"))


def test_a_record_from_before_an_option_existed_reads_with_todays_default(tmp_path):
    """Runs recorded before --ties, --fov or --eval-dataset existed evaluate again under today's defaults."""
    from cvbench.runs.folder import RunFolder
    from cvbench.spec import FALLBACKS, from_record

    stored = resolve_spec(cli(preset="smoke")).to_dict()
    for name in ("ties", "one_percent", "hit_rate", "fov", "orientation", "eval_dataset", "eval_split"):
        stored.pop(name)
    (tmp_path / "spec.json").write_text(json.dumps(stored))
    spec = RunFolder(tmp_path).read_spec()
    assert (spec.ties, spec.one_percent, spec.hit_rate) == (FALLBACKS["ties"], "floor+1", "paper")
    assert spec.field_of_view().is_identity and spec.eval_dataset is None
    assert spec.conventions().ties == "random"
    assert from_record({**stored, "ties": "optimistic"}).ties == "optimistic"  # what a record says stays


def test_a_presets_plugin_options_apply_only_while_the_run_keeps_its_plugins(registry):
    recipe = resolve_spec(cli(preset="sample4geo"))
    assert recipe.shared_backbone is True and recipe.dim == 160  # convnext_atto, stage 2: GeM pools its 160 channels
    assert resolve_spec(cli(preset="sample4geo", shared_backbone=False)).shared_backbone is False  # --no-shared-...
    assert resolve_spec(cli(preset="smoke")).shared_backbone is False
    assert recipe.head_options == {"p": 1.0, "learn_p": False, "project": False}
    assert recipe.loss_options["infonce"]["label_smoothing"] == 0.1
    assert recipe.sampler_options["first_epoch"] == "gps_neighbours"
    merged = resolve_spec(cli(preset="sample4geo", head_option=["p=3"], sampler_option=["count=4"]))
    assert merged.head_options == {"p": 3, "learn_p": False, "project": False}  # the user's value wins
    assert merged.sampler_options["count"] == 4 and merged.sampler_options["pool"] == 32
    swapped = resolve_spec(cli(preset="sample4geo", head="safa", loss=["soft_triplet"], sampler="conflict_free"))
    assert swapped.head_options == {} and swapped.loss_options == {} and swapped.sampler_options == {}


@pytest.mark.parametrize("values, culprit", [
    ({"loss_option": ["infonce.temperature=0.1"]}, "--loss-option 'infonce'.KEY=VALUE: the run uses no such loss"),
    ({"metric_option": ["recal.ks=1"]}, "--metric-option 'recal'.KEY=VALUE: the run uses no such metric"),
])
def test_options_for_a_loss_or_metric_the_run_does_not_use_are_refused(registry, values, culprit):
    with pytest.raises(SpecError) as info:
        resolve_spec(cli(preset="smoke", **values))
    assert culprit in str(info.value)


@pytest.mark.parametrize("options, message", [
    ({"lr": float("nan")}, "--lr nan: expected a finite number"),
    ({"weight_decay": float("inf")}, "--weight-decay inf: expected a finite number"),
    ({"lr": 0.0}, "--lr 0: expected a number above 0"),
    ({"pretrain_lr": -0.1}, "--pretrain-lr -0.1: expected a number above 0"),
    ({"weight_decay": -1e-4}, "--weight-decay -0.0001: expected 0 or more"),
    ({"loss": ["soft_triplet:-1"]}, "--loss soft_triplet:-1: a loss weight must be a finite number above 0"),
    ({"loss": ["soft_triplet", "uniformity:nan"]}, "--loss 'uniformity:nan': the weight after ':' must be a finite"),
])
def test_numbers_that_cannot_train_are_refused_naming_the_option(options, message, registry):
    with pytest.raises(SpecError, match=re.escape(message)):
        resolve_spec(cli(preset="smoke", **options))


def test_a_nan_learning_rate_fails_before_a_run_folder_is_made(tmp_path):
    from conftest import cli as run_cli_in_process

    result = run_cli_in_process("run", "--preset", "smoke", "--lr", "nan", "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode != 0 and "--lr nan: expected a finite number" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_runs_dir_that_is_a_file_is_one_line_naming_the_option(tmp_path):
    from conftest import cli as run_cli_in_process

    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    for runs_dir in (taken, taken / "below"):
        result = run_cli_in_process("run", "--preset", "smoke", "--runs-dir", str(runs_dir), "--quiet")
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert f"--runs-dir {runs_dir}: it, or a folder above it, is a file" in result.stderr
    assert taken.read_text() == "not a folder"


def test_resume_followed_by_an_option_says_the_folder_goes_first(tmp_path):
    from conftest import cli as run_cli_in_process

    result = run_cli_in_process("run", "--resume", "-q")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "--resume -q: expected the run folder to continue, not an option" in result.stderr


def test_the_spec_choices_are_those_of_the_modules_that_use_them():
    """The spec writes out the conventions' and the query view's values (the CLI lists them without importing
    torch); they stay those cvbench.contract.metric and cvbench.data.field_of_view accept."""
    from cvbench.contract import metric
    from cvbench.data import field_of_view
    from cvbench.spec import run_spec

    assert (run_spec.TIES, run_spec.ONE_PERCENT, run_spec.HIT_RATES) == (metric.TIES, metric.ONE_PERCENT,
                                                                          metric.HIT_RATES)
    assert (run_spec.ORIENTATIONS, run_spec.FULL_CIRCLE) == (field_of_view.ORIENTATIONS, field_of_view.FULL_CIRCLE)


@pytest.mark.parametrize("name, value", [("orientation", "sideways"), ("ties", "pessimistic"), ("optimizer", "sgd"),
                                         ("schedule", "step"), ("channels_last", "maybe"), ("gpu_decode", "yes"),
                                         ("gpu_augment", "maybe")])
def test_a_choice_outside_the_list_is_named_from_a_toml_row_too(registry, name, value):
    """A grid row bypasses the CLI's choice check; validation names the option and the choices."""
    choices = next(f.metadata["choices"] for f in dataclasses.fields(RunSpec) if f.name == name)
    with pytest.raises(SpecError, match=rf"--{name.replace('_', '-')} '{value}': expected one of "
                                        + re.escape(", ".join(choices))):
        resolve_spec(RunSpec.from_dict({"preset": "smoke", name: value}))
