"""Profile the default run (`cvbench run --pretrainer mocov2 --head safa`) by stage on this machine.

    .venv/bin/python benchmarks/perf/first_run.py --batches 4 --json out.json

Times each stage's unit of work and multiplies it by the run's planned
counts (cvbench.runs.expected_time): loading the synthetic world, a
pre-training batch's augmentation (with one intra-op thread, as the epoch loop
now fetches it, against all threads, as before, interleaved, and checked
bit-identical), a pre-training and a fine-tuning step, one evaluation's
embedding and each metric, and the pre-training probe. Before: an evaluation
after every epoch and batches fetched with every thread; after: the default
preset's ``eval_every`` and one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from torch.utils.data import default_collate

from cvbench.contract import Retrieval
from cvbench.data.loaders import TwoViews, readers
from cvbench.evaluation.evaluate import build_metrics, embed
from cvbench.evaluation.probe import ProbeViews, instance_retrieval
from cvbench.runs.assemble import build_model, resolve_spec
from cvbench.runs.expected_time import evaluated_epochs, measure_rates, plan_run
from cvbench.runs.subsets import load_data, open_dataset, pretraining_set
from cvbench.spec import RunSpec
from cvbench.training.pretrain import make_pretrainer


def augmentation_seconds(dataset: TwoViews, batch: int, batches: int) -> dict[str, float]:
    """Mean seconds to fetch a pre-training batch with one thread and with all, interleaved; the same bits."""
    threads = torch.get_num_threads()
    times: dict[int, list[float]] = {1: [], threads: []}
    for k in range(batches):
        views = {}
        for count in (1, threads) if k % 2 else (threads, 1):
            torch.set_num_threads(count)
            torch.manual_seed(k)
            started = time.perf_counter()
            views[count] = default_collate([dataset[i] for i in range(k * batch, (k + 1) * batch)])
            times[count].append(time.perf_counter() - started)
        torch.set_num_threads(threads)
        if not all(torch.equal(a, b) for a, b in zip(views[1], views[threads])):
            raise SystemExit("a batch fetched with one thread differs from the same batch with all threads")
    return {"one_thread": sum(times[1]) / batches, "all_threads": sum(times[threads]) / batches, "threads": threads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=4, help="pre-training batches timed with each thread count")
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args()
    started = time.perf_counter()
    spec = resolve_spec(RunSpec(pretrainer="mocov2", head="safa"))
    data = load_data(spec, *open_dataset(spec))
    loading = time.perf_counter() - started
    model = build_model(spec)
    device = torch.device("cpu")
    plan = plan_run(spec, data)
    rates = measure_rates(spec, model, data, device, plan)

    images, _, indices = pretraining_set(spec, data, "aerial")
    reader = readers(spec)["aerial"]
    backbone = model.branch("aerial").backbone
    pretrainer, _, _ = make_pretrainer(spec, "aerial", backbone, images, indices)
    dataset = TwoViews(images, reader, pretrainer.augmentations(reader.output_size), indices)
    augment = augmentation_seconds(dataset, spec.pretrain_batch_size, args.batches)

    val, views = data.val, readers(spec)
    begun = time.perf_counter()
    query = embed(model, "ground", val.queries, views["ground"], device, spec.eval_batch_size, data.val_queries)
    reference = embed(model, "aerial", val.gallery, views["aerial"], device, spec.eval_batch_size)
    embedding = time.perf_counter() - begun
    meta = val.query_meta.iloc[data.val_queries].reset_index(drop=True) if len(val.query_meta.columns) else \
        val.query_meta
    retrieval = Retrieval(query=query, reference=reference, positives=val.positives[data.val_queries],
                          query_meta=meta, reference_meta=val.gallery_meta, seed=spec.seed,
                          conventions=spec.conventions())
    metrics = {}
    for name, metric in build_metrics(spec.metrics, spec.metric_options):
        begun = time.perf_counter()
        metric(retrieval)
        metrics[name] = time.perf_counter() - begun
    probe_views = ProbeViews.draw(val.aerial, reader, spec.seed)
    begun = time.perf_counter()
    instance_retrieval(backbone, probe_views, device)
    probe = time.perf_counter() - begun

    evaluation = embedding + sum(metrics.values())
    before = len(evaluated_epochs(spec.epochs, 1))
    after = len(evaluated_epochs(spec.epochs, spec.eval_every))
    compute = rates.pretrain_step - augment["one_thread"]  # the measured step fetched its batch with one thread
    stages = [
        ("load the world (generated if not cached)", 1, loading, loading),
        ("pre-training: augment a batch", plan.pretrain_steps, augment["all_threads"], augment["one_thread"]),
        ("pre-training: step", plan.pretrain_steps, compute, compute),
        ("pre-training probe, before and after", 2, probe, probe),
        ("fine-tuning: step (batch loading included)", plan.finetune_steps, rates.finetune_step,
         rates.finetune_step),
        (f"evaluation: embed {len(query)} + {len(reference)} images", (before, after), embedding, embedding),
        ("evaluation: metrics " + ", ".join(f"{k} {v:.2f} s" for k, v in metrics.items()), (before, after),
         sum(metrics.values()), sum(metrics.values())),
    ]
    rows = []
    print("| stage | count before / after | seconds each before / after | total before (s) | total after (s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, count, each_before, each_after in stages:
        old, new = count if isinstance(count, tuple) else (count, count)
        rows.append({"stage": name, "count": [old, new], "seconds_each": [each_before, each_after],
                     "total": [old * each_before, new * each_after]})
        print(f"| {name} | {old} / {new} | {each_before:.3f} / {each_after:.3f} | {old * each_before:.1f} | "
              f"{new * each_after:.1f} |")
    totals = [sum(row["total"][i] for row in rows) for i in (0, 1)]
    print(f"| all | | | {totals[0]:.1f} | {totals[1]:.1f} |")
    print(f"one evaluation {evaluation:.2f} s; load average {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"rows": rows, "totals": totals, "augmentation": augment, "rates": rates.__dict__,
                       "plan": plan.__dict__, "load_average": os.getloadavg()}, file, indent=2)


if __name__ == "__main__":
    main()
