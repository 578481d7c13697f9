"""Run folders for the HTML report's tests, written by hand in the on-disk layout a run leaves.

Each run is a ``result.json`` (only the fields the leaderboard reads), and
where a test needs them a figure in ``analysis/`` (as ``cvbench analyze``
writes it) and a ``predictions_val.csv`` in the columns ``cvbench eval
--predictions`` writes. No model is trained.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

CONVENTIONS = {"ties": "random", "one_percent": "floor+1", "hit_rate": "paper", "fov": 360.0, "orientation": "known"}
CONVENTIONS_LINE = ("Conventions: query view 360° known; ties random; R@1% at k = floor(M/100) + 1; hit rate paper "
                    "(docs/metrics.md).")
"""What the markdown leaderboard prints under a table of runs with :data:`CONVENTIONS`, written out by hand."""
HOSTILE = "<script>alert('owned')</script>"
LONG_SAMPLER = {"count": 8, "first_epoch": "gps_neighbours", "pool": 32, "random_share": 0.5}
LONG_SAMPLER_TEXT = "count=8 first_epoch=gps_neighbours pool=32 random_share=0.5"
"""Sample4Geo's sampler options, and the text the leaderboard shows for them: far wider than a column."""


def record(run: str, r1: float, seed: int = 0, status: str = "finished", coordinates: bool = False,
           **spec: Any) -> dict[str, Any]:
    """A result record of a synthetic-world run scoring ``r1`` (R@5 = R@1 + 10)."""
    base = {"dataset": "synthetic", "pretrainer": "none", "head": "safa", "backbone": "resnet18",
            "loss": [["soft_triplet", 1.0]], "base_init": "random", "ground_init": "auto", "aerial_init": "auto",
            "seed": seed, **spec}
    metrics = {"R@1": r1, "R@5": r1 + 10}
    if coordinates:
        metrics["error_median_m"] = 120.0
    out = {"run": run, "status": status, "spec": base, "split": "val", "conventions": CONVENTIONS,
           "num_queries": 100, "num_references": 100, "timings": {"total_s": 10.0}}
    if status == "finished":
        out["metrics"] = metrics
    return out


def write_run(runs: Path, entry: dict[str, Any]) -> Path:
    folder = runs / entry["run"]
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(entry), encoding="utf-8")
    return folder


def png(colour: str = "tab:blue") -> bytes:
    """A small real PNG, as ``cvbench analyze`` writes figures (matplotlib)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1.5), dpi=50)
    figure.subplots().plot([0, 1, 2], [1, 0, 2], color=colour)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


PREDICTIONS = ("query,query_index,positive,positive_index,query_lat,query_lon,top1,top1_index,score1,top1_lat,"
               "top1_lon,error_m\n") + """\
ground/q0.png,0,aerial/t0.png,0,48.1000,11.5000,aerial/t0.png,0,0.91,48.1000,11.5000,0.0
ground/q1.png,1,aerial/t1.png,1,48.1010,11.5000,aerial/t7.png,7,0.55,48.1019,11.5000,100.1
ground/q2.png,2,aerial/t2.png,2,48.1020,11.5010,aerial/t4.png,4,0.47,48.1038,11.5010,200.2
"""
"""Three queries, errors 0, 100.1 and 200.2 m (median 100.1 m), in the columns of ``predictions_<split>.csv``."""


def write_runs(runs: Path) -> dict[str, Path]:
    """Four runs with different heads (one row each on the board) and one failed run.

    ``mapped`` has a figure and a predictions file; ``unmapped`` has
    coordinates but no predictions; ``hostile``'s backbone option holds
    :data:`HOSTILE`; ``plain``'s sampler options are :data:`LONG_SAMPLER`. Written in an order unlike their R@1
    order.
    """
    folders = {
        "mapped": write_run(runs, record("mapped", 30.0, coordinates=True)),
        "unmapped": write_run(runs, record("unmapped", 50.0, head="gem", coordinates=True)),
        "hostile": write_run(runs, record("hostile", 10.0, head="netvlad", backbone=HOSTILE)),
        "plain": write_run(runs, record("plain", 40.0, head="mixvpr", sampler_options=LONG_SAMPLER)),
        "broken": write_run(runs, record("broken", 0.0, status="failed")),
    }
    analysis = folders["mapped"] / "analysis"
    analysis.mkdir()
    (analysis / "curves.png").write_bytes(png())
    (analysis / "embeddings.png").write_bytes(png("tab:red"))
    (folders["mapped"] / "predictions_val.csv").write_text(PREDICTIONS)
    return folders
