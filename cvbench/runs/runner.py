"""The pipeline: optional pre-training of each branch -> fine-tuning -> evaluation -> record.

Everything that can fail without compute is checked first: option values,
plugin names, the head's fit to the backbone, the split. Then the run folder
is created and every stage writes into it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from rich.progress import Progress

from ..contract.registry import create
from ..data.loaders import readers
from ..errors import CvbenchError, SpecError, error_message
from ..evaluation.evaluate import Evaluation, build_metrics, evaluate
from ..nn import distributed
from ..nn.device import describe, prepare_module, seed_everything, select_device, use_channels_last
from ..progress import log, make_progress
from ..spec import BRANCHES, NO_AUGMENTATION, NO_PRETRAINER, RunSpec, pretrains
from ..training.batch_memory import check_batch_memory
from ..training.checkpoint import check_fit
from ..training.finetune import STAGE as FINETUNE_STAGE
from ..training.finetune import Objective, check_sampler, finetune
from ..training.pretrain import pretrain_backbone, pretraining_summary
from ..training.resume import Checkpointer, RunInterrupted, load_state, random_state_kept
from .assemble import build_model, resolve_spec
from .expected_time import evaluated_epochs, expected_line, measure_rates, plan_run
from .folder import INITIAL_CHECKPOINT, MODEL_CHECKPOINT, RunFolder
from .liveness import ALIVE, RUNNING, Heartbeat, liveness, resume_command
from .records import RunRecorder
from .state import RunState
from .subsets import Data, load_data, open_dataset, pretraining_set
from .trackers import FINETUNE, Trackers, pretrain_stage

T = TypeVar("T")


def run(spec: RunSpec, runs_dir: str | Path = "runs", quiet: bool = False, stage: str = "run",
        finetune_stage: bool = True) -> Path:
    """Run the pipeline for ``spec``; returns the run folder (its ``result.json`` holds the numbers).

    Started by ``torchrun`` with several processes, the ranks share the work
    (:mod:`cvbench.nn.distributed`) and rank 0 alone writes the run folder.
    """
    spec = resolve_spec(spec)
    if not finetune_stage and spec.pretrainer == NO_PRETRAINER:
        raise SpecError("`cvbench pretrain` needs --pretrainer")
    with distributed.setup(select_device(spec.device)) as device:
        return _run(spec, device, runs_dir, quiet or not distributed.is_main(), stage, finetune_stage)


def resume_run(run_dir: str | Path, quiet: bool = False, device_name: str | None = None,
               workers: int | None = None) -> Path:
    """Continue an interrupted run in its own folder from ``checkpoints/state.pt``.

    The spec comes from the run folder; only the device and the number of
    loader workers may change (the numbers then may differ from an
    uninterrupted run's). A finished run is refused, and so is one whose
    process still runs (:mod:`cvbench.runs.liveness`): two writers would corrupt it.
    """
    folder = RunFolder(run_dir)
    record = folder.record()  # lenient: the saved training state, not the record, is what a resume needs
    if record.get("status") == "finished":
        raise CvbenchError(f"{folder.path} already finished; there is nothing to resume")
    if record.get("status") == RUNNING and liveness(record) == ALIVE:  # two writers would corrupt the run
        owner = record.get("owner") or {}
        raise CvbenchError(f"{folder.path} is still running (pid {owner.get('pid')} on {owner.get('host')}, "
                           f"heartbeat {record.get('heartbeat')}); resume it only once that process has ended")
    state = load_state(folder.state_file)
    spec = folder.read_spec()
    folder.remove_partial_writes()
    if device_name is not None:
        spec.device = device_name
    if workers is not None:
        spec.workers = workers
    stage = record.get("stage", "run")
    with distributed.setup(select_device(spec.device)) as device:
        return _run(spec, device, folder.path.parent, quiet or not distributed.is_main(), stage, stage != "pretrain",
                    resume=(folder, record, state))


def _run(spec: RunSpec, device: torch.device, runs_dir: str | Path, quiet: bool, stage: str,
         finetune_stage: bool, resume: tuple[RunFolder, dict[str, Any], dict[str, Any]] | None = None) -> Path:
    started = time.perf_counter()
    trackers = Trackers.from_spec(spec)  # a bad --logger-option fails before any work
    dataset, split = open_dataset(spec)  # first: a wrong --data-root is named before any weights are downloaded
    generator = seed_everything(spec.seed)
    model = build_model(spec)
    check_batch_memory(spec, model, device)
    if distributed.active():  # same weights everywhere, different augmentation draws per rank
        seed_everything(spec.seed + 1000 * distributed.rank())
    where = f", {distributed.world_size()} processes" if distributed.active() else ""
    verb = f"resuming {resume[0].name} at {_position(resume[2])}" if resume else f"cvbench {stage}"
    with make_progress(quiet) as progress:
        data = load_data(spec, dataset, split, progress)
    if finetune_stage:
        check_sampler(spec, data.train, data.train_indices)
    if not quiet and resume is None and not distributed.active():  # the first line: how long to wait
        plan = plan_run(spec, data, finetune_stage)
        rates = measure_rates(spec, model, data, device, plan)
        log(expected_line(plan, rates, time.perf_counter() - started), quiet)
    log(f"[bold]{verb}[/]: dataset {spec.dataset} ({split}), backbone {spec.backbone}, head {spec.head}, "
        f"pretrainer {spec.pretrainer}, device {describe(device)}{where}", quiet)
    if spec.polar and data.val.semi_positives is not None:
        log(f"[yellow]warning:[/] --polar assumes queries at the tile centre, but {spec.dataset}/{split} places "
            "them anywhere on the tile (it has semi-positives); the transform will misalign the views", quiet)
    if resume is None:
        folder = distributed.broadcast_object(RunFolder.create(runs_dir, spec, stage) if distributed.is_main()
                                              else None)
        recorder = RunRecorder(folder, spec, stage, write=distributed.is_main())
        saved = None
        state = RunState(spec, model, recorder, split, dict(zip(("dataset", "split"), data.evaluated_on)))
    else:
        folder, record, saved = resume
        recorder = RunRecorder(folder, spec, stage, write=distributed.is_main(), resumed=(record, saved["rows"]))
        state = RunState.resumed(spec, model, recorder, saved)
    checkpointer = Checkpointer(folder.state_file, saved, write=distributed.is_main())
    state.device = describe(device)
    if distributed.active():
        state.processes = distributed.world_size()
    trackers.start(spec, folder.path)
    try:
        # the heartbeat keeps the running record fresh while the run works (cvbench.runs.liveness)
        with make_progress(quiet) as progress, checkpointer.stop.installed(), Heartbeat(recorder.beat):
            parts = [part for b in BRANCHES for part in (model.branch(b).backbone, model.branch(b).head)]
            prepare_module(model, device, use_channels_last(device, spec.channels_last), parts if spec.compile else ())
            if saved is not None:
                check_fit(model, saved["model"], f"the saved training state of {folder.name}", "two-branch model",
                          {"spec": saved.get("spec")})
                model.load_state_dict(saved["model"])
            for branch in BRANCHES:
                if pretrains(spec, branch) and not checkpointer.stage_done(f"pretrain:{branch}"):
                    images, meta, indices = pretraining_set(spec, data, branch)
                    state.pretraining[branch] = pretrain_backbone(
                        spec, branch, model.branch(branch).backbone, images, readers(spec)[branch], device, generator,
                        progress, folder.pretrained(branch), indices, meta, checkpointer, state.snapshot,
                        probe_images=data.val.ground if branch == "ground" else data.val.aerial,
                        on_step=trackers.steps(pretrain_stage(branch)))
                    log(pretraining_summary(branch, spec.pretrainer, state.pretraining[branch]), quiet)
            if "pretrain_s" not in state.timings:
                state.add_timing("pretrain_s", state.elapsed())
            if finetune_stage:
                _finetune_and_evaluate(state, data, device, generator, progress, quiet, checkpointer, trackers)
        state.add_timing("total_s", state.elapsed())
        record = state.write("finished")
        recorder.discard(checkpointer.path.name)  # a finished run is never resumed
    except KeyboardInterrupt as exc:
        command = resume_command(stage, folder.path)
        state.write("interrupted", resume=command)
        trackers.end(folder.path, "interrupted")
        if isinstance(exc, RunInterrupted):
            raise RunInterrupted(f"{exc}; continue with: {command}") from None
        raise
    except Exception as exc:
        state.write("failed", error=f"{type(exc).__name__}: {error_message(exc)}")
        trackers.end(folder.path, "failed")
        raise
    trackers.end(folder.path, "finished")
    if finetune_stage:
        log(_summary(record), quiet)
    log(f"run folder: {folder.path}", quiet)
    return folder.path


def _position(state: dict[str, Any]) -> str:
    where = f"{state['stage']} epoch {state['epoch'] + 1}"
    return where + (f" batch {state['batch'] + 1}" if state["batch"] else "")


def _finetune_and_evaluate(state: RunState, data: Data, device: torch.device, generator: torch.Generator,
                           progress: Progress, quiet: bool, checkpointer: Checkpointer, trackers: Trackers) -> None:
    """Fine-tune with an evaluation before and every ``eval_every`` epochs; the record's metrics go to ``state``.

    Each evaluation's numbers and time are kept in ``state``, so a resumed
    run has them from its saved training state. Each row of ``metrics.csv``
    also goes to the run's ``trackers``.
    """
    spec, model, recorder = state.spec, state.model, state.recorder
    objective = Objective.from_spec(spec)
    augment = None
    if spec.finetune_aug != NO_AUGMENTATION:
        augment = create("augmentation", spec.finetune_aug, tuple(spec.ground_size), tuple(spec.aerial_size),
                         **spec.finetune_aug_options)
    selected = build_metrics(spec.metrics, spec.metric_options)

    def measure(epoch: int) -> Evaluation | None:
        started = time.perf_counter()
        result = evaluate(model, data.val, readers(spec), device, spec.eval_batch_size, selected,
                          data.val_queries, progress, spec.seed, spec.workers, spec.conventions())
        state.eval_seconds += time.perf_counter() - started
        if result is not None:
            state.add_evaluation(epoch, result.metrics, result.uniformity, result.num_queries, result.num_references,
                                 result.warnings)
        return result

    def row(epoch: int, stats: dict[str, float], result: Evaluation | None) -> dict[str, Any]:
        values: dict[str, Any] = {"epoch": epoch, **stats}
        if result is not None:
            values.update(result.metrics)
            values.update({f"uniformity_{k}": v for k, v in result.uniformity.items()})
        return values

    def log_epoch(values: dict[str, Any]) -> None:
        recorder.log_epoch(values)
        trackers.log_epoch(values)

    if not checkpointer.resumes(FINETUNE_STAGE):
        recorder.save_weights(INITIAL_CHECKPOINT, model, metadata={"spec": spec.to_dict(), "run": recorder.folder.name})
        log_epoch(row(0, {}, measure(0)))

    evaluated = set(evaluated_epochs(spec.epochs, spec.eval_every))

    def on_epoch_end(epoch: int, stats: dict[str, float]) -> None:
        result = keeping_random_state(lambda: measure(epoch)) if epoch in evaluated else None
        log_epoch(row(epoch, stats, result))
        if result is not None and not quiet:
            values = "  ".join(f"{name} {value:.2f}" for name, value in result.metrics.items())
            progress.console.log(f"epoch {epoch}: loss {stats['loss']:.4f}  {values}")

    trained = finetune(model, objective, data.train, data.train_indices, spec, device, generator, progress,
                       augment, on_epoch_end, checkpointer, state.snapshot, trackers.steps(FINETUNE))
    recorder.save_weights(MODEL_CHECKPOINT, model, metadata={"spec": spec.to_dict(), "run": recorder.folder.name})
    state.add_timing("finetune_s", trained.seconds)
    if trained.mining_seconds is not None:
        state.add_timing("mining_s", trained.mining_seconds)
    state.add_timing("eval_s", state.eval_seconds)
    if not distributed.is_main():
        return
    state.finish_finetuning()
    state.result["finetuning"] = trained.machine  # data wait and peak GPU memory (cvbench.training.stage_stats)


def keeping_random_state(call: Callable[[], T]) -> T:
    """``call()``, with every global random state put back afterwards.

    An evaluation between fine-tuning epochs draws from the global torch
    generator (its DataLoaders' seeds); put back, the training after it draws
    what it would have drawn without it, so ``--eval-every`` changes no
    training number, whatever augmentation or random orientation the run uses.
    """
    with random_state_kept():
        return call()


def _summary(record: dict[str, Any]) -> str:
    metrics = record.get("metrics", {})
    text = "  ".join(f"{k} {v:.2f}" for k, v in metrics.items())
    return f"[bold green]done[/] in {record['timings']['total_s']:.0f} s: {text}"


__all__ = ["run", "resume_run"]
