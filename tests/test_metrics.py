"""Tests for cvbench.metrics against brute force computed independently here.

Two kinds of truth are used. Ternary embeddings (entries 0 or +-s, the same
number of non-zeros in every reference) normalise exactly, so a query's
scores are proportional to integer dot products and ties are exact in any
precision. For arbitrary float data, ranks are checked against exact rational
arithmetic on the float32 unit vectors (every float32 is an integer times
2^-149, so Python integers compute the inner products exactly).
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cvbench import metrics
from cvbench.evaluation import exact_ranking, exact_scores

# ------------------------------------------------------------------ brute force


def ternary(rng: np.random.Generator, count: int, dim: int, nonzeros: int) -> np.ndarray:
    """Rows with exactly ``nonzeros`` entries +-s (random s > 0 per row), the rest 0."""
    out = np.zeros((count, dim))
    for row in out:
        where = rng.choice(dim, size=nonzeros, replace=False)
        row[where] = rng.choice([-1.0, 1.0], size=nonzeros)
    return out * rng.uniform(0.1, 10.0, size=(count, 1))


def integer_ranks(query: np.ndarray, reference: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Ranks from the integer sign patterns of ternary embeddings (all references share one norm)."""
    dots = np.sign(query).astype(np.int64) @ np.sign(reference).astype(np.int64).T
    own = dots[np.arange(len(query)), positives]
    return (dots > own[:, None]).sum(axis=1)


def _as_integer(value: float) -> int:
    numerator, denominator = float(value).as_integer_ratio()
    return numerator * (2**149 // denominator)


def exact_score_matrix(query: np.ndarray, reference: np.ndarray) -> list[list[int]]:
    """Scores as exact integers (times 2^298) of the float32 unit vectors the metric scores."""
    q = [[_as_integer(v) for v in row] for row in metrics.as_unit_rows(query).numpy()]
    r = [[_as_integer(v) for v in row] for row in metrics.as_unit_rows(reference).numpy()]
    return [[sum(a * b for a, b in zip(row, ref)) for ref in r] for row in q]


def exact_ranks(query: np.ndarray, reference: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Ranks from exact integer arithmetic on the float32 unit vectors the metric scores."""
    scores = exact_score_matrix(query, reference)
    return np.array([sum(s > row[positive] for s in row) for row, positive in zip(scores, positives)])


def recall_from(rank: np.ndarray, size: int, ks=(1, 5, 10), one_percent: int | None = None) -> dict[str, float]:
    """R@k of exact ranks with ties going to the truth (the optimistic convention)."""
    out = {f"R@{k}": 100.0 * float(np.mean(rank < k)) for k in ks}
    out["R@1%"] = 100.0 * float(np.mean(rank < (size // 100 + 1 if one_percent is None else one_percent)))
    return out


def tie_counts(scores, correct: list[set[int]], ignored: list[set[int]] | None = None):
    """(s, t, p) per query from exact scores: wrong references above and tied with the best correct one, and the
    correct ones tied with it."""
    rows = []
    for i, row in enumerate(scores):
        best = max(row[c] for c in correct[i])
        left_out = correct[i] | (ignored[i] if ignored else set())
        wrong = [m for m in range(len(row)) if m not in left_out]
        rows.append((sum(row[m] > best for m in wrong), sum(row[m] == best for m in wrong),
                     sum(row[c] == best for c in correct[i])))
    return np.array(rows).T


def credit(s: int, t: int, p: int, k: int) -> Fraction:
    """Chance that a random order of the t wrong and p correct tied references puts a correct one in the top k."""
    places = k - s
    if places <= 0:
        return Fraction(0)
    if places > t:
        return Fraction(1)
    return 1 - Fraction(math.comb(t, places), math.comb(t + p, places))


def random_recall(counts, k: int) -> float:
    return 100.0 * float(sum(credit(s, t, p, k) for s, t, p in counts.T) / counts.shape[1])


def integer_scores(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Exact scores of ternary embeddings up to one positive factor (all references share one norm)."""
    return np.sign(query).astype(np.int64) @ np.sign(reference).astype(np.int64).T


def near_ties(rng: np.random.Generator, count: int, size: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Queries and references whose scores tie exactly or differ in the last bits.

    Queries repeat values across components, and references come in families:
    the same vector with those components swapped (an exact tie for the query,
    reached by different arithmetic), nudged by one ulp, or duplicated. The
    base references are small integers, so a permuted row normalises to the
    permuted unit row and the swapped ties survive normalisation.
    """
    query = rng.standard_normal((count, dim)).astype(np.float32)
    query[:, 1] = query[:, 0]
    query[:, 3] = -query[:, 2]
    base = rng.integers(-8, 9, size=(size // 4, dim)).astype(np.float32)
    base[:, 0] = np.where(base[:, 0] == base[:, 1], base[:, 0] + 9, base[:, 0])  # no row is all zero or symmetric
    swapped = base[:, [1, 0, *range(2, dim)]]
    flipped = base.copy()
    flipped[:, [2, 3]] = -base[:, [3, 2]]
    nudged = np.nextafter(base, np.float32(np.inf))
    reference = np.concatenate([base, swapped, flipped, nudged, base[:2]])
    return query, reference[rng.permutation(len(reference))]


# ---------------------------------------------------------------- recall, ranks


@pytest.mark.parametrize("chunk_size", [1, 7, 40, 41, 1000, None])
def test_recall_matches_integer_brute_force_with_ties(chunk_size: int | None) -> None:
    rng = np.random.default_rng(0)
    query = ternary(rng, 40, 6, 3)
    reference = ternary(rng, 120, 6, 2)
    reference[100:110] = reference[0]  # duplicates of one reference
    positives = rng.integers(0, 120, size=40)
    positives[:5] = 0
    positives[5:8] = 105  # a duplicate is the positive: its twins tie with it
    truth = integer_ranks(query, reference, positives)
    assert (truth > 0).any() and (truth == 0).any()
    np.testing.assert_array_equal(metrics.ranks(query, reference, positives, chunk_size=chunk_size), truth)
    assert metrics.recall(query, reference, positives, chunk_size=chunk_size, ties="optimistic") == recall_from(
        truth, 120)
    counts = tie_counts(integer_scores(query, reference), [{p} for p in positives])
    assert (counts[1] > 0).mean() > 0.5  # most queries tie with some wrong reference
    got = metrics.recall(query, reference, positives, chunk_size=chunk_size)
    assert got == pytest.approx({**{f"R@{k}": random_recall(counts, k) for k in (1, 5, 10)},
                                 "R@1%": random_recall(counts, 2)})


def test_the_tie_credit_is_the_share_of_random_orders_that_find_a_correct_reference() -> None:
    for t, p in itertools.product(range(5), range(1, 4)):
        orders = list(itertools.permutations(["wrong"] * t + ["correct"] * p))
        for s, k in itertools.product(range(3), range(1, 8)):
            found = sum("correct" in order[: max(0, k - s)] for order in orders)
            assert credit(s, t, p, k) == Fraction(found, len(orders))
            assert credit(s, t, p, k) == (min(1, max(0, Fraction(k - s, t + 1))) if p == 1 else credit(s, t, p, k))


def test_positive_tied_with_duplicates() -> None:
    reference = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 0.0]])
    query = np.array([[3.0, 0.0], [3.0, 0.0], [0.5, 0.1]])
    positives = [4, 3, 2]  # references 0, 1, 3, 4 are one direction: a tie of four for queries 0 and 1
    np.testing.assert_array_equal(metrics.ranks(query, reference, positives), [0, 0, 4])
    assert metrics.recall(query, reference, positives, ks=(1, 4, 5), ties="optimistic") == {
        "R@1": pytest.approx(200 / 3), "R@4": pytest.approx(200 / 3), "R@5": 100.0, "R@1%": pytest.approx(200 / 3)
    }
    assert metrics.recall(query, reference, positives, ks=(1, 2, 4, 5)) == {
        "R@1": pytest.approx(100 * (1 / 4 + 1 / 4) / 3), "R@2": pytest.approx(100 * (2 / 4 + 2 / 4) / 3),
        "R@4": pytest.approx(200 / 3), "R@5": 100.0, "R@1%": pytest.approx(100 * (1 / 4 + 1 / 4) / 3)
    }


@pytest.mark.parametrize("size", [50, 5000])
def test_a_collapsed_model_scores_chance_and_the_reference_scripts_score_100(size: int) -> None:
    rng = np.random.default_rng(1)
    reference = np.tile(rng.standard_normal((1, 32)), (size, 1))
    query = np.tile(rng.standard_normal((1, 32)), (50, 1))
    positives = rng.integers(0, size, size=50)
    np.testing.assert_array_equal(metrics.ranks(query, reference, positives), np.zeros(50))
    k1 = size // 100 + 1
    assert metrics.recall(query, reference, positives) == pytest.approx(
        {"R@1": 100 / size, "R@5": 500 / size, "R@10": 1000 / size, "R@1%": 100 * k1 / size})
    assert set(metrics.recall(query, reference, positives, ties="optimistic").values()) == {100.0}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_near_ties_match_exact_arithmetic(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(seed)
    query, reference = near_ties(rng, 12, 64, 6)
    positives = rng.integers(0, len(reference), size=12)
    fsum_calls = []
    original = exact_scores._fsum_sign
    monkeypatch.setattr(exact_scores, "_fsum_sign", lambda *a: fsum_calls.append(1) or original(*a))
    truth = exact_ranks(query, reference, positives)
    for chunk_size in (1, 5, 12):
        np.testing.assert_array_equal(metrics.ranks(query, reference, positives, chunk_size=chunk_size), truth)
    assert fsum_calls, "the swapped references should need the exact fsum comparison"


def test_differences_below_float64_resolution_are_decided_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    # References 0, 1 and 3 score the same up to q_3 * (e - e') with e, e' ~ 1e-20: far
    # below float64 resolution of the 0.6 and 0.8 terms, but not a tie.
    reference = np.array([[0.6, 0.8, 2e-20], [0.8, 0.6, 1e-20], [0.0, 0.0, 1.0], [0.6, 0.8, 1e-20]], np.float32)
    query = np.ones((3, 3), np.float32)
    positives = np.array([1, 0, 3])
    signs = []
    original = exact_scores._fsum_sign
    monkeypatch.setattr(exact_scores, "_fsum_sign", lambda *a: signs.append(original(*a)) or signs[-1])
    np.testing.assert_array_equal(metrics.ranks(query, reference, positives), [1, 0, 1])
    np.testing.assert_array_equal(exact_ranks(query, reference, positives), [1, 0, 1])
    assert {-1, 0, 1} <= set(signs)


def test_near_collapsed_embeddings_are_rescored_in_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    centre = rng.standard_normal(16)
    query = (centre + 1e-5 * rng.standard_normal((10, 16))).astype(np.float32)
    reference = (centre + 1e-5 * rng.standard_normal((60, 16))).astype(np.float32)
    positives = rng.integers(0, 60, size=10)
    rescored = []
    original = exact_ranking._sweep_tiles
    monkeypatch.setattr(exact_ranking, "_sweep_tiles",
                        lambda queries, *a: rescored.append(queries.dtype) or original(queries, *a))
    truth = exact_ranks(query, reference, positives)
    assert len(set(truth.tolist())) > 3
    np.testing.assert_array_equal(metrics.ranks(query, reference, positives, chunk_size=4), truth)
    assert torch.float64 in rescored


def test_gaussian_embeddings_match_float64_brute_force() -> None:
    rng = np.random.default_rng(4)
    reference = rng.standard_normal((500, 32))
    positives = rng.integers(0, 500, size=200)
    noise = rng.uniform(0.5, 8.0, size=(200, 1)) * rng.standard_normal((200, 32))
    query = reference[positives] + noise  # ranks spread from 0 to hundreds
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    r = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    scores = q @ r.T
    own = scores[np.arange(200), positives]
    truth = (scores > own[:, None]).sum(axis=1)
    clear = (np.abs(scores - own[:, None]) > 1e-5).sum(axis=1) == 499  # no near-tie to worry about
    assert clear.mean() > 0.9 and (truth < 10).any() and (truth > 100).any()
    rank = metrics.ranks(query, reference, positives)
    np.testing.assert_array_equal(rank[clear], truth[clear])
    ks = (1, 3, 5, 10, 50, 499, 500, 501)
    assert metrics.recall(query, reference, positives, ks=ks) == recall_from(rank, 500, ks)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_ranks_do_not_depend_on_chunk_size(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 8), label="N")
    size = data.draw(st.integers(1, 20), label="M")
    dim = data.draw(st.integers(1, 5), label="D")
    values = st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])  # small values: many exact ties
    query = data.draw(hnp.arrays(np.float64, (count, dim), elements=values), label="query")
    reference = data.draw(hnp.arrays(np.float64, (size, dim), elements=values), label="reference")
    query[np.all(query == 0, axis=1), 0] = 1.0
    reference[np.all(reference == 0, axis=1), 0] = 1.0
    positives = np.array(data.draw(st.lists(st.integers(0, size - 1), min_size=count, max_size=count)))
    chunk = data.draw(st.integers(1, count + 2), label="chunk")
    truth = exact_ranks(query, reference, positives)
    for chunk_size in (1, chunk, count, None):
        np.testing.assert_array_equal(metrics.ranks(query, reference, positives, chunk_size=chunk_size), truth)
    assert metrics.recall(query, reference, positives, chunk_size=chunk, ties="optimistic") == recall_from(truth, size)
    counts = tie_counts(exact_score_matrix(query, reference), [{int(p)} for p in positives])
    assert metrics.recall(query, reference, positives, chunk_size=chunk) == pytest.approx(
        {**{f"R@{k}": random_recall(counts, k) for k in (1, 5, 10)}, "R@1%": random_recall(counts, size // 100 + 1)})


def test_recall_thresholds_inside_the_tie_window() -> None:
    # Reference 0 is the positive. References 1-3 beat it by ~1e-10, far inside
    # the float32 tie window, and references 4-5 beat it clearly: rank 5. With
    # M = 500 the R@1% k is 6 (floor+1) or 5 (floor), so every k in 1..6 must be decided exactly.
    slopes = 1e-3 * (1.0 - 1e-4 * np.arange(4))
    reference = np.concatenate([
        np.stack([np.ones(4), slopes], axis=1),
        [[1.0, -1e-4], [1.0, 1e-4]],
        np.tile([[0.0, 1.0]], (494, 1)),
    ])  # fmt: skip
    query = np.array([[1.0, -1.0]])  # scores (x - y) / sqrt(2): the smaller y, the higher
    np.testing.assert_array_equal(metrics.ranks(query, reference, [0]), [5])
    result = metrics.recall(query, reference, [0], ks=(1, 2, 3, 4, 5, 6))
    assert result == {"R@1": 0.0, "R@2": 0.0, "R@3": 0.0, "R@4": 0.0, "R@5": 0.0, "R@6": 100.0, "R@1%": 100.0}
    assert metrics.recall(query, reference, [0], ks=(1,))["R@1%"] == 100.0
    assert metrics.recall(query, reference, [0], ks=(1,), one_percent="floor")["R@1%"] == 0.0


@pytest.mark.parametrize(("size", "floor_plus_one", "floor"), [(250, 3, 2), (99, 1, 1), (100, 2, 1), (1000, 11, 10)])
def test_one_percent_conventions(size: int, floor_plus_one: int, floor: int) -> None:
    reference = np.eye(size)
    query = np.eye(size)[:3] + 0.5 * np.eye(size)[[3, 4, 5]]
    positives = [3, 4, 1]  # ranks 1 (reference 0 scores higher), 1, 2 (references 2 and 5 score higher)
    rank = np.array([1, 1, 2])
    np.testing.assert_array_equal(metrics.ranks(query, reference, positives), rank)
    assert metrics.one_percent_k(size) == floor_plus_one and metrics.one_percent_k(size, "floor") == floor
    # positive 1 of query 2 scores 0 like most references: ties go to it here, to test the k alone
    assert metrics.recall(query, reference, positives, ties="optimistic")["R@1%"] == pytest.approx(
        100 * np.mean(rank < floor_plus_one))
    assert metrics.recall(query, reference, positives, one_percent="floor", ties="optimistic")["R@1%"] == (
        pytest.approx(100 * np.mean(rank < floor)))


def test_keys_follow_ks_then_one_percent() -> None:
    rng = np.random.default_rng(5)
    query, reference = rng.standard_normal((4, 3)), rng.standard_normal((7, 3))
    assert list(metrics.recall(query, reference, [0, 1, 2, 3])) == ["R@1", "R@5", "R@10", "R@1%"]
    assert list(metrics.recall(query, reference, [0, 1, 2, 3], ks=(3, 1))) == ["R@3", "R@1", "R@1%"]
    assert all(isinstance(v, float) for v in metrics.recall(query, reference, [0, 1, 2, 3]).values())


# ------------------------------------------------------------------- hit rate


def test_hit_rate_by_hand() -> None:
    # Scores of query i against references 0..4 are the entries of row i (one-hot references).
    reference = np.eye(5)
    query = np.array([
        [0.1, 0.9, 0.2, 0.3, 0.1],  # positive 1 is top-1: hit in both
        [0.1, 0.2, 0.9, 0.3, 0.1],  # top-1 is 2, a semi-positive: paper hit; code: 1 outranks positive 4, miss
        [0.9, 0.2, 0.3, 0.1, 0.1],  # top-1 is 0, neither: miss in both
        [0.9, 0.1, 0.9, 0.1, 0.1],  # semi-positive 2 ties with 0 for the top: paper 1/2; code: 0 outranks 4, miss
        [0.1, 0.1, 0.9, 0.9, 0.1],  # semi 2 ties with 3 for the top: paper 1/2 (3 is wrong); code: 3 outranks 4
        [0.9, 0.1, 0.1, 0.9, 0.1],  # positive 3 ties with 0 for the best: 1/2 in both (1 when optimistic)
        [0.9, 0.5, 0.1, 0.1, 0.1],  # no semi-positives, positive 1 second: miss
    ])  # fmt: skip
    positives = [1, 4, 4, 4, 4, 3, 1]
    padded = np.array([[2, -1], [2, 3], [3, -1], [2, -1], [2, -1], [-1, -1], [-1, -1]])
    ragged = [[2], [2, 3], [3], [2], [2], [], []]
    expected = {("paper", "random"): 1 + 1 + 0.5 + 0.5 + 0.5, ("paper", "optimistic"): 1 + 1 + 1 + 1 + 1,
                ("code", "random"): 1 + 0.5, ("code", "optimistic"): 1 + 1}
    for semi in (padded, ragged, torch.from_numpy(padded)):
        for (definition, ties), hits in expected.items():
            result = metrics.recall(query, reference, positives, semi_positives=semi, hit_rate=definition, ties=ties)
            assert result["hit_rate"] == pytest.approx(100 * hits / 7), (definition, ties)
    assert metrics.recall(query, reference, positives, semi_positives=padded, ties="optimistic")["R@1"] == (
        pytest.approx(100 * 2 / 7))
    assert list(result) == ["R@1", "R@5", "R@10", "R@1%", "hit_rate"]


def ternary_case(seed: int, queries: int, references: int, extra: int):
    """Ternary embeddings with exact integer scores, positives and an (N, extra) -1 padded table."""
    rng = np.random.default_rng(seed)
    query = ternary(rng, queries, 5, 2)
    reference = ternary(rng, references, 5, 2)
    positives = rng.integers(0, references, size=queries)
    table = rng.integers(-1, references, size=(queries, extra))
    return query, reference, positives, table, integer_scores(query, reference)


def sets_of(table: np.ndarray) -> list[set[int]]:
    return [{int(v) for v in row if v >= 0} for row in table]


@pytest.mark.parametrize("chunk_size", [1, 13, None])
def test_hit_rates_match_brute_force_on_ternary(chunk_size: int | None) -> None:
    query, reference, positives, semi, scores = ternary_case(6, 60, 30, 3)
    semi_sets = [s - {int(p)} for s, p in zip(sets_of(semi), positives)]  # a positive is not its own semi-positive
    paper = tie_counts(scores, [{int(p)} | s for p, s in zip(positives, semi_sets)])
    code = tie_counts(scores, [{int(p)} for p in positives], semi_sets)
    for definition, counts in (("paper", paper), ("code", code)):
        assert 0 < random_recall(counts, 1) < 100
        got = metrics.recall(query, reference, positives, semi_positives=semi, hit_rate=definition,
                             chunk_size=chunk_size)
        assert got["hit_rate"] == pytest.approx(random_recall(counts, 1)), definition
        got = metrics.recall(query, reference, positives, semi_positives=semi, hit_rate=definition,
                             ties="optimistic", chunk_size=chunk_size)
        assert got["hit_rate"] == pytest.approx(100 * np.mean(counts[0] < 1)), definition


def test_also_correct_by_hand() -> None:
    reference = np.eye(5)
    query = np.array([
        [0.9, 0.8, 0.7, 0.1, 0.1],  # positive 2 is third, but also-correct 1 is second: rank 1
        [0.9, 0.8, 0.7, 0.1, 0.1],  # also-correct 0 is first: rank 0
        [0.9, 0.8, 0.7, 0.6, 0.1],  # positive 3, also-correct 2 and 1: best correct 1, rank 1 (only 0 above)
        [0.9, 0.8, 0.7, 0.6, 0.1],  # no also-correct: positive 4 has rank 4
    ])  # fmt: skip
    positives = [2, 2, 3, 4]
    also = [[1], [0], [2, 1], []]
    result = metrics.recall(query, reference, positives, ks=(1, 2, 4), also_correct=also)
    assert result["R@1"] == pytest.approx(100 * 1 / 4)
    assert result["R@2"] == pytest.approx(100 * 3 / 4)
    assert result["R@4"] == pytest.approx(100 * 3 / 4)
    # the same correct sets given as several positives per query
    several = metrics.recall(query, reference, [[2, 1], [2, 0], [3, 2, 1], [4]], ks=(1, 2, 4))
    assert several == result


@pytest.mark.parametrize("chunk_size", [1, 13, None])
def test_several_correct_references_match_brute_force_on_ternary(chunk_size: int | None) -> None:
    query, reference, positives, also, scores = ternary_case(7, 80, 40, 4)
    correct = [{int(p)} | s for p, s in zip(positives, sets_of(also))]
    counts = tie_counts(scores, correct)
    assert (counts[2] > 1).any() and (counts[1] > 0).any()  # correct and wrong references tie at the best score
    plain = integer_ranks(query, reference, positives)
    assert (counts[0] < plain).any()
    for ties in ("random", "optimistic"):
        result = metrics.recall(query, reference, positives, ks=(1, 3), also_correct=also, chunk_size=chunk_size,
                                ties=ties)
        for k in (1, 3):
            want = random_recall(counts, k) if ties == "random" else 100 * np.mean(counts[0] < k)
            assert result[f"R@{k}"] == pytest.approx(want), (ties, k)
        as_lists = metrics.recall(query, reference, [sorted(c) for c in correct], ks=(1, 3), chunk_size=chunk_size,
                                  ties=ties)
        assert as_lists == result


# ------------------------------------------------------------------------- AP


def expected_ap(scores_row, correct: set[int], ties: str) -> Fraction:
    """AP of one query by enumerating every placement of the correct references inside each tie group."""
    values = sorted({scores_row[m] for m in range(len(scores_row))}, reverse=True)
    total, position, found = Fraction(0), 0, 0  # references before the group, correct ones before it
    for value in values:
        members = [m for m in range(len(scores_row)) if scores_row[m] == value]
        size, inside = len(members), sum(m in correct for m in members)
        if inside:
            placements = [range(inside)] if ties == "optimistic" else list(itertools.combinations(range(size), inside))
            group = Fraction(0)
            for places in placements:
                group += sum(Fraction(found + i + 1, position + place + 1) for i, place in enumerate(places))
            total += group / len(placements)
        position, found = position + size, found + inside
    return total / len(correct)


def test_average_precision_by_hand() -> None:
    reference = np.eye(6)
    query = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.9, 0.8, 0.8, 0.6, 0.5, 0.4]])
    # query 0: correct 1 and 3 at positions 2 and 4: AP = (1/2 + 2/4) / 2; query 1: correct 1 ties with wrong 2
    # for positions 2 and 3, correct 5 is at 6: random: ((1/2 + 1/3) / 2 + 2/6) / 2, optimistic: (1/2 + 2/6) / 2
    positives = [[1, 3], [1, 5]]
    ap0 = (1 / 2 + 2 / 4) / 2
    assert metrics.average_precision(query, reference, positives, ties="optimistic") == pytest.approx(
        100 * (ap0 + (1 / 2 + 2 / 6) / 2) / 2)
    assert metrics.average_precision(query, reference, positives) == pytest.approx(
        100 * (ap0 + ((1 / 2 + 1 / 3) / 2 + 2 / 6) / 2) / 2)


@pytest.mark.parametrize("chunk_size", [1, 9, None])
def test_average_precision_matches_enumeration_with_ties(chunk_size: int | None) -> None:
    query, reference, positives, also, scores = ternary_case(11, 24, 14, 5)
    correct = [{int(p)} | s for p, s in zip(positives, sets_of(also))]
    for ties in ("random", "optimistic"):
        want = 100 * float(sum(expected_ap(row, c, ties) for row, c in zip(scores, correct)) / len(correct))
        got = metrics.average_precision(query, reference, positives, also_correct=also, ties=ties,
                                        chunk_size=chunk_size)
        assert got == pytest.approx(want, rel=1e-12), ties


def test_average_precision_matches_scikit_learn_without_ties() -> None:
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(12)
    query, reference = rng.standard_normal((30, 16)), rng.standard_normal((200, 16))
    correct = [rng.choice(200, size=rng.integers(1, 30), replace=False) for _ in range(30)]
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    r = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    want = []
    for row, refs in zip(q @ r.T, correct):
        labels = np.zeros(200, dtype=bool)
        labels[refs] = True
        want.append(average_precision_score(labels, row))
    for ties in ("random", "optimistic"):
        got = metrics.average_precision(query, reference, [list(c) for c in correct], ties=ties)
        assert got == pytest.approx(100 * np.mean(want), rel=1e-9)
    single = metrics.average_precision(query, reference, [c[0] for c in correct])
    assert single == pytest.approx(100 * np.mean(1 / (1 + metrics.ranks(query, reference, [c[0] for c in correct]))))


# --------------------------------------------------------------------- inputs


def test_torch_numpy_and_low_precision_inputs_agree() -> None:
    rng = np.random.default_rng(7)
    query = ternary(rng, 30, 8, 4).round(0) + 0.0  # small integers: exact in float16 and bfloat16
    query[np.all(query == 0, axis=1), 0] = 1.0
    reference = np.sign(ternary(rng, 50, 8, 3)) * 2.0
    positives = rng.integers(0, 50, size=30)
    expected = metrics.recall(query, reference, positives)
    read_only = query.copy()
    read_only.setflags(write=False)
    variants = [
        (read_only, reference.astype(">f8"), positives),  # e.g. memory-mapped, big-endian files
        (torch.from_numpy(query), torch.from_numpy(reference), torch.from_numpy(positives)),
        (query.astype(np.float16), reference.astype(np.float16), positives.tolist()),
        (torch.tensor(query, dtype=torch.bfloat16), torch.tensor(reference, dtype=torch.bfloat16), positives),
        (torch.tensor(query, requires_grad=True), reference.astype(np.float32), positives.astype(np.int32)),
    ]
    for q, r, p in variants:
        assert metrics.recall(q, r, p) == expected
    dots = query.astype(np.int64) @ np.sign(reference).astype(np.int64).T  # every reference has norm 2 sqrt(3)
    truth = (dots > dots[np.arange(30), positives][:, None]).sum(axis=1)
    np.testing.assert_array_equal(metrics.ranks(query, reference, positives), truth)


def test_scale_does_not_matter() -> None:
    rng = np.random.default_rng(8)
    query, reference = rng.standard_normal((20, 6)), rng.standard_normal((40, 6))
    positives = rng.integers(0, 40, size=20)
    expected = metrics.ranks(query, reference, positives)
    np.testing.assert_array_equal(metrics.ranks(query * 2.0**100, reference * 2.0**-100, positives), expected)


def test_as_unit_rows_normalises() -> None:
    rng = np.random.default_rng(9)
    x = rng.standard_normal((50, 7)) * rng.uniform(1e-20, 1e20, size=(50, 1))
    unit = metrics.as_unit_rows(x).numpy()
    assert unit.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(unit.astype(np.float64), axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(unit, x / np.linalg.norm(x, axis=1, keepdims=True), atol=3e-7)


def test_bf16_matmul_setting_is_overridden_then_restored() -> None:
    rng = np.random.default_rng(10)
    query, reference = rng.standard_normal((30, 64)), rng.standard_normal((300, 64))
    positives = rng.integers(0, 300, size=30)
    expected = metrics.ranks(query, reference, positives)
    backend = torch.backends.mkldnn.matmul
    previous = backend.fp32_precision
    backend.fp32_precision = "bf16"
    try:
        np.testing.assert_array_equal(metrics.ranks(query, reference, positives), expected)
        assert backend.fp32_precision == "bf16"
    finally:
        backend.fp32_precision = previous


Q = np.ones((3, 4))
R = np.ones((5, 4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reference": np.ones((5, 3))}, "dimensions differ"),
        ({"positives": [0, 1]}, r"expected shape \(3,\)"),
        ({"positives": [0, 1, 5]}, r"positives\[2\] = 5 is out of range for 5 references"),
        ({"positives": [0, -1, 2]}, r"positives\[1\] = -1"),
        ({"positives": [0.0, 1.0, 2.0]}, "integer"),
        ({"query": np.ones((0, 4))}, "query is empty"),
        ({"reference": np.ones((5, 0))}, "reference is empty"),
        ({"query": np.ones(4)}, "2-D"),
        ({"query": np.where(np.arange(12).reshape(3, 4) == 5, np.nan, 1.0)}, "query row 1 has NaN or infinite"),
        ({"reference": np.where(np.arange(20).reshape(5, 4) == 19, np.inf, 1.0)}, "reference row 4 has NaN or inf"),
        ({"reference": np.full((5, 4), 1e39)}, "NaN or infinite values"),  # overflows float32
        ({"query": np.array([[1.0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])}, "query row 1 is all zeros"),
        ({"reference": np.zeros((5, 4))}, "reference row 0 is all zeros"),
        ({"query": np.array([["a"] * 4] * 3)}, "real numbers"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer"),
        ({"ks": (1, 0)}, "each k in ks must be a positive integer"),
        ({"ks": (1.5,)}, "positive integer"),
        ({"semi_positives": np.zeros((3,), dtype=int)}, r"shape \(3, K\)"),
        ({"semi_positives": [[1], [2]]}, "expected 3 rows"),
        ({"semi_positives": [[1], [2], [5]]}, r"semi_positives\[2\]\[0\] = 5 is out of range"),
        ({"semi_positives": np.array([[1], [-2], [0]])}, r"semi_positives\[1\]\[0\] = -2"),
        ({"semi_positives": [[1.5], [], []]}, "integer"),
        ({"positives": [[0, 1], [], [2]]}, r"positives\[1\] lists no reference"),
        ({"positives": [[0, 1], [7], [2]]}, r"positives\[1\]\[0\] = 7 is out of range"),
        ({"ties": "pessimistic"}, "ties must be one of random, optimistic"),
        ({"one_percent": "round"}, r"one_percent must be one of floor\+1, floor"),
        ({"hit_rate": "both"}, "hit_rate must be one of paper, code"),
    ],
)
def test_invalid_inputs_raise_value_error(kwargs: dict, message: str) -> None:
    arguments = {"query": Q, "reference": R, "positives": [0, 1, 2], **kwargs}
    with pytest.raises(ValueError, match=message):
        metrics.recall(**arguments)


# ----------------------------------------------------------------- uniformity


def uniformity_double_loop(z: np.ndarray, t: float) -> float:
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    terms = [
        math.exp(-t * float(np.sum((z[i] - z[j]) ** 2))) for i in range(len(z)) for j in range(len(z)) if i != j
    ]
    return math.log(sum(terms) / len(terms))


@pytest.mark.parametrize("t", [0.5, 2.0, 7.0])
def test_uniformity_matches_double_loop(t: float) -> None:
    z = np.random.default_rng(11).standard_normal((9, 4))
    expected = uniformity_double_loop(z, t)
    for chunk_size in (1, 4, 9, 20, None):
        assert metrics.uniformity(z, t=t, chunk_size=chunk_size) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert metrics.uniformity(torch.tensor(z * 3.0, dtype=torch.float32), t=t) == pytest.approx(expected, abs=1e-6)


def test_uniformity_hand_values() -> None:
    assert metrics.uniformity(np.array([[0.0, 2.0], [0.0, -3.0]]), t=1.5) == pytest.approx(-4 * 1.5)
    assert metrics.uniformity(np.tile([[1.0, 2.0, 3.0]], (6, 1))) == pytest.approx(0.0, abs=1e-12)
    # Orthonormal points: every pair is sqrt(2) apart, so the mean potential is exp(-2t).
    assert metrics.uniformity(np.eye(5), t=2.0) == pytest.approx(-4.0)


def test_uniformity_is_stable_for_large_t() -> None:
    z = np.random.default_rng(12).standard_normal((50, 8))
    value = metrics.uniformity(z, t=500.0)  # exp(-t d^2) underflows for every far pair
    assert math.isfinite(value) and value == pytest.approx(uniformity_log_direct(z, 500.0), rel=1e-9)


def uniformity_log_direct(z: np.ndarray, t: float) -> float:
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    logits = -t * d2[~np.eye(len(z), dtype=bool)]
    top = logits.max()
    return top + math.log(np.exp(logits - top).mean())


def test_uniformity_report() -> None:
    rng = np.random.default_rng(13)
    ground, aerial = rng.standard_normal((8, 5)), rng.standard_normal((6, 5)) + 2.0
    report = metrics.uniformity_report(ground, aerial, t=2.0)
    assert list(report) == ["ground", "satellite", "all"]
    assert report["ground"] == pytest.approx(uniformity_double_loop(ground, 2.0))
    assert report["satellite"] == pytest.approx(uniformity_double_loop(aerial, 2.0))
    assert report["all"] == pytest.approx(uniformity_double_loop(np.concatenate([ground, aerial]), 2.0))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: metrics.uniformity(np.ones((1, 3))), "at least 2 embeddings"),
        (lambda: metrics.uniformity(np.ones((4, 3)), t=0.0), "t must be a positive finite number"),
        (lambda: metrics.uniformity(np.ones((4, 3)), t=math.inf), "t must be"),
        (lambda: metrics.uniformity(np.array([[1.0, 0.0], [0.0, 0.0]])), "row 1 is all zeros"),
        (lambda: metrics.uniformity(np.array([[1.0, np.nan], [0.0, 1.0]])), "NaN or infinite"),
        (lambda: metrics.uniformity_report(np.ones((3, 2)), np.ones((3, 4))), "dimensions differ"),
        (lambda: metrics.uniformity_report(np.ones((3, 2)), np.ones((1, 2))), "aerial"),
    ],
)
def test_uniformity_errors(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
