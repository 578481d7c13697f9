"""``cvbench eval``: a finished run's model evaluated again, on its split or another, exactly or through an index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.loaders import readers
from ..errors import SpecError
from ..evaluation.evaluate import build_metrics, evaluate
from ..evaluation.retrieval import IndexSpec, approximate_recall
from ..nn.device import seed_everything, select_device
from ..progress import make_progress
from .assemble import load_run_model
from .folder import RunFolder
from .predictions import write_predictions
from .subsets import evaluation_root, load_data, open_dataset


def evaluate_run(run_dir: str | Path, split: str | None = None, quiet: bool = False,
                 device_name: str | None = None, predictions: int = 0, index: str = "exact",
                 index_options: dict | None = None) -> dict[str, Any]:
    """Re-evaluate a finished run's model on its evaluation protocol's val subset (or that of ``split``).

    With ``predictions=k``, also writes ``predictions_<split>.csv``: each query's
    true tile and its k best references with their cosine scores (faiss top-k),
    named and, where the dataset has coordinates, placed (:mod:`cvbench.runs.predictions`).
    ``index="hnsw"`` or ``"ivf"`` (options in ``index_options``) replaces the exact
    metrics by :func:`cvbench.evaluation.retrieval.approximate_recall` and adds its "index"
    report; the exact ranking (every selected metric of the ``metrics`` section) is then skipped (see
    docs/metrics.md).
    """
    if predictions < 0:
        raise SpecError(f"--predictions {predictions}: expected 0 (none) or the number K of top references to list")
    try:  # bad options fail before the embedding
        approximate = IndexSpec(index, index_options or {})
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    folder = RunFolder(run_dir)
    spec, model = load_run_model(folder.path)
    if device_name:
        spec.device = device_name
    if split:  # the evaluation protocol's split; training's stays the run's
        spec.eval_split = split
    device = select_device(spec.device)
    seed_everything(spec.seed)
    dataset, split = open_dataset(spec)
    with make_progress(quiet) as progress:
        data = load_data(spec, dataset, split, progress)
        model.to(device)
        selected = build_metrics(spec.metrics, spec.metric_options)
        if approximate.kind != "exact":  # the index's recall replaces the exact retrieval metrics
            selected = [(name, metric) for name, metric in selected if metric.section != "metrics"]
        result = evaluate(model, data.val, readers(spec), device, spec.eval_batch_size, selected,
                          data.val_queries, progress, spec.seed, spec.workers, spec.conventions())
    evaluated_on = dict(zip(("dataset", "split"), data.evaluated_on))
    summary = {"run": folder.name, "split": evaluated_on["split"], "evaluated_on": evaluated_on,
               "metrics": result.metrics,
               "conventions": spec.protocol(), "uniformity": result.uniformity,
               "num_queries": result.num_queries, "num_references": result.num_references}
    if result.warnings:
        summary["warnings"] = result.warnings
    if approximate.kind != "exact":  # an index returns an order, not exact ties: they go to the positive
        summary.update(approximate_recall(result.query, result.reference, data.val.positives[data.val_queries],
                                          index=approximate, seed=spec.seed, one_percent=spec.one_percent))
        summary["conventions"]["ties"] = "optimistic"
    if predictions:
        name = evaluated_on["split"] if evaluated_on["dataset"] == spec.dataset else "_".join(data.evaluated_on)
        summary["predictions"] = str(write_predictions(folder.predictions(name), result, data.val, data.val_queries,
                                                       predictions, evaluation_root(spec)))
    return summary

