"""Tests for the index choice of cvbench.evaluation.retrieval (exact, HNSW, IVF) and approximate_recall.

Truths are independent of faiss: a float64 numpy brute force, cvbench.metrics.recall
(exact ranks), and the fact that IVF scanning every list is an exhaustive search.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from toy_dataset import ToyPlugin

from cvbench import metrics
from cvbench.evaluation import retrieval
from cvbench.cli import main
from cvbench.evaluation.retrieval import IndexSpec, approximate_recall, parse_index_options
from cvbench.runs.reevaluate import evaluate_run
from cvbench.runs.runner import run
from cvbench.spec import RunSpec

FAST = dict(preset="smoke", dataset="toy", backbone="resnet10t", ground_size=(16, 64), aerial_size=(32, 32),
            dim=256, batch_size=8, epochs=1, pretrain_batch_size=8, head="siamese_vgg")


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(query: np.ndarray, reference: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64 cosine top-k (indices) and, per query, whether its first k + 1 scores are clearly apart."""
    scores = unit(query.astype(np.float64)) @ unit(reference.astype(np.float64)).T
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.take_along_axis(scores, order, axis=1)
    clear = (np.abs(np.diff(ranked[:, : k + 1], axis=1)) > 1e-5).all(axis=1)
    return order[:, :k], clear


def clustered(seed: int, queries: int = 300, references: int = 4000, dim: int = 32, centres: int = 40):
    """References around a few directions (as real embeddings are), queries near random references."""
    rng = np.random.default_rng(seed)
    centre = unit(rng.standard_normal((centres, dim)))
    reference = unit(centre[rng.integers(0, centres, references)] + 0.2 * rng.standard_normal((references, dim)))
    positives = rng.integers(0, references, queries)
    query = unit(reference[positives] + 0.05 * rng.standard_normal((queries, dim)))
    return query.astype(np.float32), reference.astype(np.float32), positives


def overlap(found: np.ndarray, expected: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found.tolist(), expected.tolist())]))


@pytest.mark.parametrize("index", [IndexSpec("exact"), IndexSpec("ivf", {"nlist": 8, "nprobe": 8})])
def test_exact_search_matches_numpy_brute_force(index: IndexSpec) -> None:
    rng = np.random.default_rng(0)
    query, reference = unit(rng.standard_normal((80, 16))), unit(rng.standard_normal((500, 16)))
    scores, indices = retrieval.topk(query, reference, 10, index=index)
    expected, clear = brute_force(query, reference, 10)
    assert clear.mean() > 0.8
    np.testing.assert_array_equal(indices[clear], expected[clear])
    np.testing.assert_allclose(scores, np.einsum("nd,nkd->nk", query, reference[indices]), atol=1e-5)


def test_ivf_probing_every_list_equals_the_exact_index() -> None:
    rng = np.random.default_rng(1)
    query, reference = rng.standard_normal((200, 24)), rng.standard_normal((2000, 24))
    exact_scores, exact = retrieval.topk(query, reference, 10)
    ivf_scores, ivf = retrieval.topk(query, reference, 10, index=IndexSpec("ivf", {"nlist": 32, "nprobe": 32}))
    _, clear = brute_force(query, reference, 10)
    np.testing.assert_array_equal(ivf[clear], exact[clear])
    np.testing.assert_allclose(ivf_scores, exact_scores, atol=1e-5)


@pytest.mark.parametrize("index", [IndexSpec("hnsw"), IndexSpec("ivf"), IndexSpec("ivf", {"nlist": 64, "nprobe": 8})])
def test_approximate_indexes_find_the_true_neighbours_of_clustered_data(index: IndexSpec) -> None:
    query, reference, _ = clustered(2)
    _, found = retrieval.topk(query, reference, 10, index=index)
    expected, _ = brute_force(query, reference, 10)
    assert overlap(found, expected) > 0.95


def test_fewer_lists_probed_find_fewer_neighbours() -> None:
    query, reference, positives = clustered(3)
    few = approximate_recall(query, reference, positives, index=IndexSpec("ivf", {"nlist": 64, "nprobe": 1}))
    many = approximate_recall(query, reference, positives, index=IndexSpec("ivf", {"nlist": 64, "nprobe": 16}))
    assert few["index"]["index_recall@10"] < many["index"]["index_recall@10"]
    assert many["index"]["index_recall@10"] > 0.95 and many["index"]["index_recall@1"] > 0.95


@pytest.mark.parametrize(("ks", "percent"), [((1, 5, 10), True), ((1, 3, 50), False)])
def test_approximate_recall_through_the_exact_index_equals_metrics_recall(ks, percent) -> None:
    rng = np.random.default_rng(4)
    reference = rng.standard_normal((1500, 32)).astype(np.float32)
    positives = rng.integers(0, 1500, 400)
    query = reference[positives] + 1.2 * rng.standard_normal((400, 32)).astype(np.float32)
    result = approximate_recall(query, reference, positives, ks=ks, percent=percent, index="exact")
    expected = metrics.recall(query, reference, positives, ks=ks)
    assert list(result["metrics"]) == list(expected) == [f"R@{k}" for k in ks] + ["R@1%"]
    scale = 1.0 if percent else 100.0
    assert {key: value * scale for key, value in result["metrics"].items()} == pytest.approx(expected)
    assert 0 < expected["R@1"] < expected["R@1%"] < 100  # the data leave every k something to decide


def test_index_recall_is_one_for_the_exact_index_and_sampled_with_a_seed() -> None:
    query, reference, positives = clustered(5)
    exact = approximate_recall(query, reference, positives, index="exact", sample=100)
    assert exact["index"] == {"kind": "exact", "options": {}, "index_recall@1": 1.0, "index_recall@10": 1.0,
                              "sample": 100}
    options = {"nlist": 64, "nprobe": 1}
    first = approximate_recall(query, reference, positives, index=IndexSpec("ivf", options), sample=100, seed=7)
    again = approximate_recall(query, reference, positives, index=IndexSpec("ivf", options), sample=100, seed=7)
    assert first == again
    assert first["index"]["options"] == options and first["index"]["sample"] == 100
    assert first["index"]["index_recall@1"] < 1.0


def test_ivf_defaults_follow_the_gallery_size() -> None:
    assert IndexSpec("ivf").options == {"nlist": None, "nprobe": 16}
    assert IndexSpec("ivf").resolve(200_000).options == {"nlist": round(4 * 200_000**0.5), "nprobe": 16}
    assert IndexSpec("ivf").resolve(1000).options == {"nlist": 1000 // 39, "nprobe": 16}  # >= 39 points per list
    assert IndexSpec("ivf").resolve(10).options == {"nlist": 1, "nprobe": 1}
    assert IndexSpec("hnsw").options == {"neighbors": 32, "ef_construction": 40, "ef_search": 64}
    assert parse_index_options(["nprobe=32", " nlist = 8 "]) == {"nprobe": 32, "nlist": 8}


def test_too_few_training_points_warn() -> None:
    rng = np.random.default_rng(6)
    reference = rng.standard_normal((100, 8))
    with pytest.warns(UserWarning, match="IVF trains 10 lists on only 100 references"):
        retrieval.topk(reference[:5], reference, 3, index=IndexSpec("ivf", {"nlist": 10, "nprobe": 10}))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: IndexSpec("annoy"), "index must be one of exact, hnsw, ivf, got 'annoy'"),
        (lambda: IndexSpec("ivf", {"nprobes": 3}), "unknown option 'nprobes' for the ivf index; valid options: nlist, nprobe"),
        (lambda: IndexSpec("hnsw", {"M": 3}), "unknown option 'M' for the hnsw index; valid options: neighbors, "),
        (lambda: IndexSpec("exact", {"nprobe": 3}), "unknown option 'nprobe' for the exact index; it takes no options"),
        (lambda: IndexSpec("hnsw", {"ef_search": 0}), "ef_search must be a positive integer, got 0"),
        (lambda: IndexSpec("ivf", {"nprobe": 2.5}), "nprobe must be a positive integer, got 2.5"),
        (lambda: IndexSpec("ivf", {"nlist": 51}).resolve(50), "nlist = 51 exceeds the 50 references"),
        (lambda: parse_index_options(["nprobe"]), "index option 'nprobe' must be KEY=VALUE"),
        (lambda: parse_index_options(["nprobe=many"]), "index option nprobe must be an integer, got 'many'"),
        (lambda: retrieval.topk(np.ones((2, 4)), np.eye(10, 4) + 0.1, 3, approximate=True, index="ivf"), "not both"),
        (lambda: approximate_recall(np.ones((2, 4)), np.eye(10, 4) + 0.1, [0, 1], sample=0), "sample must be"),
        (lambda: approximate_recall(np.ones((2, 4)), np.eye(10, 4) + 0.1, [0, 10]), r"positives\[1\] = 10"),
        (lambda: approximate_recall(np.ones((2, 4)), np.eye(10, 4) + 0.1, [0, 1], semi_positives=[[2], [3]]),
         "semi_positives and also_correct are not supported"),
    ],
)
def test_bad_parameters_raise_value_error_naming_them(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@pytest.fixture
def toy_run(registry, tmp_path):
    """A finished smoke run on the toy dataset (48 queries, 48 references)."""
    registry.add(ToyPlugin(), source="toy-tests")
    return run(RunSpec(**FAST), tmp_path, quiet=True)


def test_eval_run_through_ivf_probing_every_list_gives_the_exact_metrics(toy_run) -> None:
    exact = evaluate_run(toy_run, quiet=True)
    assert "index" not in exact
    with pytest.warns(UserWarning, match="IVF trains 8 lists on only 48"):
        approximate = evaluate_run(toy_run, quiet=True, index="ivf", index_options={"nlist": 8, "nprobe": 8})
    assert list(approximate["metrics"]) == ["R@1", "R@5", "R@10", "R@1%"]  # the index's recall replaces the exact
    assert approximate["metrics"] == pytest.approx({key: exact["metrics"][key] for key in approximate["metrics"]})
    assert exact["conventions"]["ties"] == "random" and approximate["conventions"]["ties"] == "optimistic"
    info = approximate["index"]
    assert info["kind"] == "ivf" and info["options"] == {"nlist": 8, "nprobe": 8} and info["sample"] == 48
    assert info["index_recall@1"] == 1.0 and info["index_recall@10"] == 1.0
    assert "exact_metrics" not in approximate
    assert approximate["uniformity"] == exact["uniformity"]
    with pytest.raises(ValueError, match="unknown option 'nprobes'"):
        evaluate_run(toy_run, quiet=True, index="ivf", index_options={"nprobes": 8})


def test_cli_eval_index_options(toy_run, capsys, monkeypatch) -> None:
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() installs its own
    main(["eval", str(toy_run), "--quiet", "--index", "hnsw", "--index-option", "ef_search=48",
          "--index-option", "neighbors=8"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["index"]["kind"] == "hnsw"
    assert printed["index"]["options"] == {"neighbors": 8, "ef_construction": 40, "ef_search": 48}
    assert set(printed["metrics"]) == {"R@1", "R@5", "R@10", "R@1%"}
    assert 0.0 <= printed["index"]["index_recall@1"] <= 1.0
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(toy_run), "--quiet", "--index", "ivf", "--index-option", "nprobe=zero"])
    assert exit_info.value.code == 2
    assert "index option nprobe must be an integer" in capsys.readouterr().err
