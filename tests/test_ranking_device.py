"""Exact ranking wherever it runs: the same ranks, recall and AP for every device, chunk, tile and gallery part.

The truth is computed here, independently, in exact integer arithmetic on the
float32 unit vectors the metrics score (every float32 is an integer times
2^-149). The inputs are adversarial: exact ties (duplicate references, and
references that are scaled copies of one another, hence identical unit rows
that are not merged as duplicates), near-ties one float32 ulp apart, and ties
placed at neighbouring indices so that small tiles and gallery parts split
them. On a machine with CUDA or MPS the same checks run there too.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from conftest import cli
from hypothesis import strategies as st

from cvbench import metrics
from cvbench.evaluation import evaluate as evaluation
from cvbench.evaluation import exact_ranking, exact_scores
from cvbench.evaluation.rank_counts import rank_counts
from cvbench.evaluation.topk import exact_top

DIM = 8


def _adversarial(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Queries, references and each query's correct references (one to three), full of exact and near ties."""
    rng = np.random.default_rng(seed)
    base = rng.integers(-2, 3, size=(12, DIM)).astype(np.float32)
    base[base.std(axis=1) == 0, 0] = 1.0  # no zero rows
    rows = []
    for row in base:  # each base row, then tied and near-tied variants at the next indices
        rows.append(row)
        rows.append(row * 2.0)  # the same unit vector, a different raw row: not merged
        rows.append(row.copy())  # an exact duplicate: merged
        near = row.copy()
        near[int(np.argmax(np.abs(row)))] = np.nextafter(near[int(np.argmax(np.abs(row)))], np.float32(9))
        rows.append(near)  # one ulp away
    reference = np.stack(rows)
    picks = rng.integers(0, len(base), size=14)
    query = np.concatenate([base[picks[:8]] + rng.integers(-1, 2, size=(8, DIM)), base[picks[8:]]]).astype(np.float32)
    query[np.abs(query).sum(axis=1) == 0, 1] = 1.0
    correct = [sorted({int(x) for x in rng.integers(0, len(reference), size=1 + i % 3)}) for i in range(len(query))]
    return query, reference, correct


def _exact_scores(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Inner products of the float32 unit rows, as exact Python integers (times 2^298)."""
    def integers(x: np.ndarray) -> list[list[int]]:
        unit = metrics.as_unit_rows(x).numpy()
        return [[(lambda n, d: n * (2**149 // d))(*float(v).as_integer_ratio()) for v in row] for row in unit]

    q, r = integers(query), integers(reference)
    return np.array([[sum(a * b for a, b in zip(row, ref)) for ref in r] for row in q], dtype=object)


def _truth(query: np.ndarray, reference: np.ndarray, correct: list[list[int]]) -> dict[str, object]:
    """Rank counts, R@k (ties to the truth) and AP (correct ones first within a tie), by brute force."""
    scores = _exact_scores(query, reference)
    above, tied, tied_correct, precision = [], [], [], []
    for row, right in zip(scores, correct):
        best = max(row[c] for c in right)
        wrong = [m for m in range(len(row)) if m not in right]
        above.append(sum(row[m] > best for m in wrong))
        tied.append(sum(row[m] == best for m in wrong))
        tied_correct.append(sum(row[c] == best for c in right))
        positions, seen = [], []  # 1-based positions of the correct ones, first within their tie groups
        for c in sorted(right, key=lambda c: -row[c]):
            positions.append(sum(row[m] > row[c] for m in range(len(row))) + sum(row[d] == row[c] for d in seen) + 1)
            seen.append(c)
        precision.append(np.mean([(i + 1) / p for i, p in enumerate(positions)]))
    above = np.array(above)
    return {"above": above, "tied": np.array(tied), "tied_correct": np.array(tied_correct),
            "recall": {f"R@{k}": 100.0 * float(np.mean(above < k)) for k in (1, 2, 5)},
            "ap": 100.0 * float(np.mean(precision))}


def _measure(query: object, reference: object, correct: list[list[int]], **where: object) -> dict[str, object]:
    counts = rank_counts(query, reference, correct, **where)
    return {"above": counts.above, "tied": counts.tied, "tied_correct": counts.tied_correct,
            "ranks": metrics.ranks(query, reference, correct, **where),
            "recall": metrics.recall(query, reference, correct, ks=(1, 2, 5), ties="optimistic", **where),
            "random": metrics.recall(query, reference, correct, ks=(1, 2, 5), **where),
            "ap": metrics.average_precision(query, reference, correct, ties="optimistic", **where)}


@pytest.fixture(scope="module")
def case() -> tuple[np.ndarray, np.ndarray, list[list[int]], dict[str, object]]:
    query, reference, correct = _adversarial()
    return query, reference, correct, _truth(query, reference, correct)


def _check(got: dict[str, object], truth: dict[str, object]) -> None:
    for key in ("above", "tied", "tied_correct"):
        np.testing.assert_array_equal(got[key], truth[key], err_msg=key)
    np.testing.assert_array_equal(got["ranks"], truth["above"])
    assert {k: got["recall"][k] for k in truth["recall"]} == pytest.approx(truth["recall"], abs=1e-9)
    assert got["ap"] == pytest.approx(truth["ap"], abs=1e-9)


def test_the_adversarial_case_is_adversarial(case) -> None:
    _, _, _, truth = case
    assert (truth["tied"] > 0).sum() >= 3 and (truth["tied_correct"] > 1).any() and (truth["above"] > 3).any()


@pytest.mark.parametrize(("chunk", "block_rows", "tile_columns", "part_rows", "close_cases"), [
    (None, 256, 1024, None, 2**23),  # the defaults
    (1, 1, 1, None, 2**23),  # one score per tile: every tie split across tiles
    (3, 2, 3, 5, 2**23),  # tiles of 3 and gallery parts of 5 references cut the tied runs of 4
    (5, 2, 7, 2, 2**23),
    (64, 3, 4, 9, 1),  # every sweep with a close case is sent back and redone in float64 on the host
])
def test_identical_exact_results_for_every_chunk_tile_and_part(case, monkeypatch: pytest.MonkeyPatch, chunk,
                                                               block_rows, tile_columns, part_rows,
                                                               close_cases) -> None:
    query, reference, correct, truth = case
    monkeypatch.setattr(exact_ranking, "CPU_BLOCK_ROWS", block_rows)
    monkeypatch.setattr(exact_ranking, "CPU_TILE_COLUMNS", tile_columns)
    monkeypatch.setattr(exact_ranking, "_MAX_CLOSE_CASES", close_cases)
    where = {"chunk_size": chunk, "device": "cpu",
             "max_device_bytes": None if part_rows is None else part_rows * DIM * 4}
    got = _measure(query, reference, correct, **where)
    _check(got, truth)
    assert got["random"] == _measure(query, reference, correct)["random"]  # the random-ties values too


@settings(max_examples=12, deadline=None)
@given(chunk=st.integers(1, 20), block_rows=st.integers(1, 9), tile_columns=st.integers(1, 60),
       part_rows=st.one_of(st.none(), st.integers(1, 60)))
def test_ranks_do_not_depend_on_how_the_work_is_cut(chunk, block_rows, tile_columns, part_rows) -> None:
    query, reference, correct = _adversarial(seed=1)
    expected = metrics.ranks(query, reference, correct)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exact_ranking, "CPU_BLOCK_ROWS", block_rows)
        patch.setattr(exact_ranking, "CPU_TILE_COLUMNS", tile_columns)
        got = metrics.ranks(query, reference, correct, chunk_size=chunk,
                            max_device_bytes=None if part_rows is None else part_rows * DIM * 4)
    np.testing.assert_array_equal(got, expected)


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[torch.device, int]]:
    """Record (device, gallery parts) of every sweep."""
    seen: list[tuple[torch.device, int]] = []
    original = exact_ranking.GalleryStream.parts

    def parts(self, device):
        produced = list(original(self, device))
        seen.append((device, len(produced)))
        yield from produced

    monkeypatch.setattr(exact_ranking.GalleryStream, "parts", parts)
    return seen


def test_the_named_device_runs_the_sweeps_and_a_small_budget_streams_the_gallery(
        case, monkeypatch: pytest.MonkeyPatch) -> None:
    query, reference, correct, truth = case
    seen = _spy(monkeypatch)
    device = torch.device("cpu", 0)  # another name for the host: proves the argument reaches the sweeps
    got = _measure(query, reference, correct, device=device, max_device_bytes=7 * DIM * 4)
    _check(got, truth)
    distinct = len(np.unique(reference, axis=0))
    assert seen and all(where == device and parts == -(-distinct // 7) for where, parts in seen)


def test_a_gallery_that_fits_is_not_copied_again_for_each_sweep(case) -> None:
    """The placement names a device without its index (as ``--device cuda`` does), its tensors carry one."""
    _, reference, _, _ = case
    gallery = exact_scores.build_gallery(reference)
    stream = exact_ranking.GalleryStream(gallery, exact_ranking.placement([], torch.device("cpu", 0), 2**20))
    assert stream.resident.device != stream.where.device  # cpu against cpu:0, as cuda:0 against cuda
    (first, part), = stream.parts(stream.where.device)
    assert first == 0 and part is stream.resident


def test_the_ranking_device_of_an_evaluation_applies_unless_a_call_names_its_own(
        case, monkeypatch: pytest.MonkeyPatch) -> None:
    query, reference, correct, _ = case
    seen = _spy(monkeypatch)
    with exact_ranking.ranking_device(torch.device("cpu", 0)):
        metrics.recall(query, reference, correct)
        assert {where for where, _ in seen} == {torch.device("cpu", 0)}
        seen.clear()
        metrics.recall(torch.from_numpy(query), torch.from_numpy(reference), correct)  # where the tensors are
        assert {where for where, _ in seen} == {torch.device("cpu")}
    seen.clear()
    metrics.recall(query, reference, correct)
    assert {where for where, _ in seen} == {torch.device("cpu")}


def test_a_bad_max_device_bytes_or_a_missing_device_is_named(case) -> None:
    query, reference, correct, _ = case
    with pytest.raises(ValueError, match="max_device_bytes"):
        metrics.recall(query, reference, correct, max_device_bytes=0)
    missing = next((name for name, present in (("cuda", torch.cuda.is_available()),
                                               ("mps", torch.backends.mps.is_available())) if not present), None)
    if missing is not None:
        with pytest.raises(ValueError, match=f"device '{missing}' is not available"):
            metrics.ranks(query, reference, correct, device=missing)


def test_max_device_bytes_may_be_a_numpy_integer(case) -> None:
    query, reference, correct, truth = case
    got = metrics.ranks(query, reference, correct, max_device_bytes=np.int64(5 * DIM * 4))
    np.testing.assert_array_equal(got, truth["above"])


def test_the_close_case_budget_holds_for_the_whole_sweep_when_the_gallery_streams_in_parts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Near-collapsed embeddings: nearly every comparison is close, so the float32 sweep must give up (and the
    rows be swept in float64) however many parts the gallery is cut into, not collect its budget once per part."""
    rng = np.random.default_rng(0)
    centre = rng.standard_normal(16)
    query = (centre + 1e-5 * rng.standard_normal((8, 16))).astype(np.float32)
    reference = (centre + 1e-5 * rng.standard_normal((64, 16))).astype(np.float32)
    collected = []  # (dtype, budget, close cases returned) of every sweep that collects them
    original = exact_ranking._sweep_tiles

    def spy(queries, high, low, stream, device, collect, budget):
        swept = original(queries, high, low, stream, device, collect, budget)
        if collect:
            collected.append((queries.dtype, budget, None if swept is None else swept.rows.numel()))
        return swept

    monkeypatch.setattr(exact_ranking, "_sweep_tiles", spy)
    expected = metrics.ranks(query, reference, list(range(8)))
    for part_rows in (None, 4):
        collected.clear()
        got = metrics.ranks(query, reference, list(range(8)),
                            max_device_bytes=None if part_rows is None else part_rows * 16 * 4)
        np.testing.assert_array_equal(got, expected)
        assert all(found is None or found <= budget for dtype, budget, found in collected if dtype == torch.float32)
        assert torch.float64 in {dtype for dtype, _, _ in collected}


ACCELERATORS = [name for name, present in (("cuda", torch.cuda.is_available()),
                                           ("mps", torch.backends.mps.is_available())) if present]


@pytest.mark.skipif(not ACCELERATORS, reason="no CUDA or MPS device here: the same code path is checked on the CPU")
@pytest.mark.parametrize("part_rows", [None, 5])
def test_an_accelerator_gives_the_host_results(case, part_rows) -> None:
    query, reference, correct, truth = case
    for name in ACCELERATORS:
        device = torch.device(name)
        got = _measure(torch.from_numpy(query).to(device), torch.from_numpy(reference).to(device), correct,
                       max_device_bytes=None if part_rows is None else part_rows * DIM * 4)
        _check(got, truth)


def test_cvbench_eval_ranks_on_the_runs_device(trained_run, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = shutil.copytree(trained_run, tmp_path / trained_run.name)
    entered = []
    original = evaluation.ranking_device
    monkeypatch.setattr(evaluation, "ranking_device", lambda device: entered.append(device) or original(device))
    seen = _spy(monkeypatch)
    result = cli("eval", str(run), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert entered == [torch.device("cpu")]
    assert seen and {where for where, _ in seen} == {torch.device("cpu")}


@pytest.mark.parametrize(("k", "part_rows"), [(1, 3), (3, None), (6, 5)])
def test_exact_top_groups_are_the_same_wherever_they_are_found(case, monkeypatch: pytest.MonkeyPatch, k,
                                                               part_rows) -> None:
    query, reference, _, _ = case
    scores = _exact_scores(query, reference)
    truth = set()  # (query, reference, start, size) of every tie group covering the first k positions
    for i, row in enumerate(scores):
        position = 0
        for value in sorted(set(row), reverse=True):
            group = [m for m in range(len(row)) if row[m] == value]
            truth |= {(i, m, position, len(group)) for m in group}
            position += len(group)
            if position >= k:
                break
    seen = _spy(monkeypatch)
    top = exact_top(query, reference, k, chunk_size=4, device=torch.device("cpu", 0),
                    max_device_bytes=None if part_rows is None else part_rows * DIM * 4)
    assert set(zip(top.query.tolist(), top.reference.tolist(), top.start.tolist(), top.size.tolist())) == truth
    assert seen and {where for where, _ in seen} == {torch.device("cpu", 0)}
