"""Checkpoints: atomic safetensors, strict loading that lists every offending key, a run's model made by that run."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch
from conftest import cli, cli_spec
from torch import nn

from cvbench.atomic import write_json
from cvbench.errors import CheckpointError
from cvbench.runs.assemble import build_model, load_run_model, resolve_spec
from cvbench.runs.folder import MODEL_CHECKPOINT, RunFolder
from cvbench.spec import RunSpec
from cvbench.training.checkpoint import load_weights, read_metadata, save_weights


def test_round_trip_keeps_weights_and_metadata(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    path = save_weights(tmp_path / "m.safetensors", model, {"spec": {"head": "safa"}})
    other = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    meta = load_weights(other, path)
    assert meta == {"spec": {"head": "safa"}}
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    assert read_metadata(path)["spec"]["head"] == "safa"


def test_mismatch_lists_missing_unexpected_and_shapes(tmp_path):
    path = save_weights(tmp_path / "m.safetensors", nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)),
                        {"spec": {"backbone": "vgg16"}})
    with pytest.raises(CheckpointError) as info:
        load_weights(nn.Sequential(nn.Linear(4, 5)), path, what="aerial backbone")
    message = str(info.value)
    assert "unexpected: 1.weight" in message and "unexpected: 1.bias" in message
    assert "shape: 0.weight: checkpoint (3, 4) vs aerial backbone (5, 4)" in message
    assert "vgg16" in message  # says what the checkpoint was made with
    with pytest.raises(CheckpointError, match="missing: 1.weight"):
        load_weights(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2), nn.Linear(2, 2)),
                     save_weights(tmp_path / "short.safetensors", nn.Sequential(nn.Linear(4, 3))))


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_weights(nn.Linear(2, 2), tmp_path / "none.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_weights(nn.Linear(2, 2), bad)


def test_a_truncated_checkpoint_is_named_when_its_metadata_is_read(tmp_path):
    whole = save_weights(tmp_path / "model.safetensors", nn.Linear(64, 64), {"spec": {"dim": 64}})
    data = whole.read_bytes()
    whole.write_bytes(data[: len(data) // 2])  # an interrupted copy
    for read in (read_metadata, lambda path: load_weights(nn.Linear(64, 64), path)):
        with pytest.raises(CheckpointError, match="cannot read checkpoint .*model.safetensors.*truncated"):
            read(whole)


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "result.json"
    write_json(target, {"a": 1})
    with pytest.raises(ValueError):
        write_json(target, {"a": float("nan")})  # not valid JSON: refused before replacing
    assert target.read_text().strip().startswith("{")
    assert '"a": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp files left
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # the mode a plain open() gives



def _run_folder(path, spec, checkpoint_spec, run=None):
    """A run folder as `cvbench run` leaves it, whose model.safetensors was made with ``checkpoint_spec``
    (by run ``run``, where given): the tiny smoke model, saved directly, nothing trained."""
    folder = RunFolder(path)
    folder.write_spec(spec)
    metadata = {"spec": checkpoint_spec.to_dict(), **({"run": run} if run else {})}
    folder.save_weights(MODEL_CHECKPOINT, build_model(checkpoint_spec), metadata)
    return folder


def test_eval_refuses_a_model_made_by_another_run_naming_both_and_the_fields(tmp_path):
    spec = resolve_spec(cli_spec(preset="smoke", dim="1024"))
    other = resolve_spec(cli_spec(preset="smoke", dim="256", seed=3))
    folder = _run_folder(tmp_path / "mine", spec, other, run="20261205-100000-run-other")
    result = cli("eval", str(folder.path), "--quiet")
    assert result.returncode == 2 and not result.stdout, result.stdout
    message = " ".join(result.stderr.split())
    assert message.startswith("error: ") and "Traceback" not in message
    assert f"{folder.checkpoint(MODEL_CHECKPOINT)} was made by run 20261205-100000-run-other" in message
    assert f"with --dim 256, --seed 3, but {folder.spec_file} says --dim 1024, --seed 0" in message
    assert "not the model of run mine" in message


def test_a_run_model_with_the_runs_own_spec_loads_whatever_machine_it_was_resumed_on(tmp_path):
    """--device and --workers may change on --resume; evaluation options and the data's location do not
    define the weights."""
    spec = resolve_spec(RunSpec(preset="smoke"))
    resumed = dataclasses.replace(spec, device="cpu", workers=2, eval_batch_size=7, data_root="/elsewhere")
    folder = _run_folder(tmp_path / "run", spec, resumed)
    loaded, _ = load_run_model(folder.path)
    assert loaded.to_dict() == resumed.to_dict()


def test_a_checkpoint_without_a_spec_is_not_taken_for_the_runs_model(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.write_spec(resolve_spec(RunSpec(preset="smoke")))
    save_weights(folder.checkpoint(MODEL_CHECKPOINT), nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match="model.safetensors records no spec in its metadata"):
        folder.checkpoint_spec()


def test_the_refusal_names_fields_by_the_flags_a_user_types():
    from cvbench.training.checkpoint import check_made_with

    spec = resolve_spec(cli_spec(preset="smoke"))
    other = dataclasses.replace(spec, head_options={"p": 4.0})
    with pytest.raises(CheckpointError) as info:
        check_made_with("model.safetensors", {"spec": other.to_dict()}, spec, "spec.json", "mine")
    assert "with --head-option {'p': 4.0}, but spec.json says --head-option {}" in str(info.value)  # no --head-options
