"""Tests for cvbench.evaluation.retrieval.topk against a numpy argsort brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cvbench.evaluation import retrieval


def brute_force(query: np.ndarray, reference: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k by float64 cosine similarity; also the full sorted scores, to spot near-ties."""
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    r = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    scores = q @ r.T
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.take_along_axis(scores, order, axis=1)
    return ranked[:, :k], order[:, :k], ranked


def no_near_ties(ranked: np.ndarray, k: int, gap: float = 1e-5) -> np.ndarray:
    """Queries whose first k + 1 sorted scores are pairwise more than ``gap`` apart."""
    head = ranked[:, : k + 1]
    return (np.abs(np.diff(head, axis=1)) > gap).all(axis=1)


@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
def test_exact_topk_matches_brute_force(chunk_size: int) -> None:
    rng = np.random.default_rng(0)
    query, reference = rng.standard_normal((60, 16)), rng.standard_normal((400, 16)) * 3.0
    scores, indices = retrieval.topk(query, reference, 10, chunk_size=chunk_size)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    assert scores.shape == indices.shape == (60, 10)
    expected_scores, expected_indices, ranked = brute_force(query, reference, 10)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    clear = no_near_ties(ranked, 10)
    assert clear.mean() > 0.8
    np.testing.assert_array_equal(indices[clear], expected_indices[clear])


def test_k_equal_to_m_returns_every_reference_in_order() -> None:
    rng = np.random.default_rng(1)
    query, reference = rng.standard_normal((5, 4)), rng.standard_normal((30, 4))
    scores, indices = retrieval.topk(query, reference, 30)
    assert all(sorted(row) == list(range(30)) for row in indices.tolist())
    assert (np.diff(scores, axis=1) <= 0).all()


def test_input_types_agree() -> None:
    rng = np.random.default_rng(2)
    query, reference = rng.standard_normal((20, 8)), rng.standard_normal((100, 8))
    scores, indices = retrieval.topk(query, reference, 5)
    torch_scores, torch_indices = retrieval.topk(torch.from_numpy(query), torch.from_numpy(reference), 5)
    np.testing.assert_array_equal(torch_indices, indices)
    np.testing.assert_array_equal(torch_scores, scores)
    half_scores, _ = retrieval.topk(query.astype(np.float16), reference.astype(np.float16), 5)
    np.testing.assert_allclose(half_scores, scores, atol=2e-3)


def test_hnsw_finds_nearly_all_true_neighbours_with_exact_scores() -> None:
    rng = np.random.default_rng(3)
    query, reference = rng.standard_normal((200, 32)), rng.standard_normal((3000, 32))
    scores, indices = retrieval.topk(query, reference, 10, approximate=True)
    _, expected_indices, _ = brute_force(query, reference, 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(indices.tolist(), expected_indices.tolist())])
    assert overlap > 0.95
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    r = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    np.testing.assert_allclose(scores, np.einsum("nd,nkd->nk", q, r[indices]), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be a positive integer"),
        ({"k": 11}, "k = 11 exceeds the 10 references"),
        ({"reference": np.ones((10, 3))}, "dimensions differ"),
        ({"query": np.full((2, 4), np.nan)}, "NaN or infinite"),
        ({"query": np.ones((0, 4))}, "query is empty"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer"),
        ({"approximate": True, "ef_search": 0}, "ef_search must be a positive integer"),
    ],
)
def test_invalid_inputs_raise_value_error(kwargs: dict, message: str) -> None:
    arguments = {"query": np.ones((2, 4)), "reference": np.eye(10, 4) + 0.1, "k": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        retrieval.topk(**arguments)
