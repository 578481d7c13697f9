"""Metre-level localisation, Dis@K and SDM@K against independent references.

Distances are checked against the chord-length formula (not the haversine
the code uses); the top references against a float64 brute force on data
without ties, and against an enumeration of every order of the tied
references where duplicates make exact ties.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

import cvbench
from cvbench import Conventions, Retrieval, metrics
from cvbench.errors import SpecError
from cvbench.evaluation.localisation import EARTH_RADIUS_M
from cvbench.evaluation.topk import exact_top

Positions = metrics.Positions


def chord_distance_m(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Great-circle distance from the straight chord between unit vectors: an independent formula."""
    def unit(latlon: np.ndarray) -> np.ndarray:
        lat, lon = np.radians(latlon[:, 0]), np.radians(latlon[:, 1])
        return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)
    chord = np.linalg.norm(unit(a) - unit(b), axis=1)
    return 2.0 * EARTH_RADIUS_M * np.arcsin(chord / 2.0)


def gta_uav(distances_in_rank_order: np.ndarray, k: int, scale: float = 0.001) -> tuple[float, float]:
    """Dis@K and SDM@K of one query as GTA-UAV's evaluation script writes them (loops over the top K)."""
    dis, numerator, denominator = 0.0, 0.0, 0.0
    for i in range(k):
        d = distances_in_rank_order[i]
        dis += d
        numerator += (k - i) / np.exp(scale * d)
        denominator += k - i
    return dis / k, numerator / denominator


@pytest.fixture(scope="module")
def city():
    rng = np.random.default_rng(3)
    reference = rng.standard_normal((40, 8)).astype(np.float32)
    query = (reference[rng.integers(0, 40, 25)] + 0.8 * rng.standard_normal((25, 8))).astype(np.float32)
    rpos = np.stack([41.88 + 0.002 * rng.random(40), -87.66 + 0.002 * rng.random(40)], axis=1)
    qpos = np.stack([41.88 + 0.002 * rng.random(25), -87.66 + 0.002 * rng.random(25)], axis=1)
    return query, reference, qpos, rpos


def ranked(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    r = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    return np.argsort(-(q.astype(np.float64) @ r.astype(np.float64).T), axis=1, kind="stable")


def test_one_degree_of_latitude_is_its_arc_length():
    assert metrics.haversine_m(np.array([10.0, 20.0]), np.array([11.0, 20.0])) == pytest.approx(
        EARTH_RADIUS_M * math.pi / 180, rel=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_localisation_matches_brute_force_at_every_chunk_size(city, chunk_size):
    query, reference, qpos, rpos = city
    order = ranked(query, reference)
    errors = chord_distance_m(qpos, rpos[order[:, 0]])
    want = {"error_median_m": float(np.median(errors)), "error_mean_m": float(np.mean(errors)),
            **{f"acc@{x:g}m": 100.0 * float(np.mean(errors <= x)) for x in (50.0, 100.0, 150.0)}}
    got = metrics.localisation_report(query, reference, Positions("latlon", qpos), Positions("latlon", rpos),
                                      (50.0, 100.0, 150.0), chunk_size=chunk_size)
    assert got == pytest.approx(want, rel=1e-9)
    assert 0 < got["acc@100m"] < 100  # the thresholds separate the queries: the test can fail


@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_dis_and_sdm_match_the_gta_uav_loops_without_ties(city, chunk_size):
    query, reference, qpos, rpos = city
    order = ranked(query, reference)
    got = metrics.top_k_distances(query, reference, Positions("latlon", qpos), Positions("latlon", rpos),
                                  (1, 3, 5), chunk_size=chunk_size)
    for k in (1, 3, 5):
        per_query = [gta_uav(chord_distance_m(np.repeat(qpos[[i]], k, 0), rpos[order[i, :k]]), k)
                     for i in range(len(query))]
        assert got[f"Dis@{k}"] == pytest.approx(np.mean([d for d, _ in per_query]), rel=1e-9)
        assert got[f"SDM@{k}"] == pytest.approx(np.mean([s for _, s in per_query]), rel=1e-9)


def tied_case():
    """Six directions, each reference a copy of one of them: every query ties groups of 1 to 3 references."""
    rng = np.random.default_rng(5)
    directions = rng.standard_normal((6, 5)).astype(np.float32)
    copies = [0, 0, 1, 2, 2, 2, 3, 4, 4, 5]
    reference = directions[copies]
    query = (directions[rng.integers(0, 6, 8)] + 0.3 * rng.standard_normal((8, 5))).astype(np.float32)
    rpos = rng.uniform(0, 300, size=(len(copies), 2))
    qpos = rng.uniform(0, 300, size=(8, 2))
    return query, reference, qpos, rpos, np.array(copies), directions


def enumerate_orders(query_row, directions, copies):
    """Every ranking of the references for one query: the directions by score, each group in every order."""
    unit = directions.astype(np.float64) / np.linalg.norm(directions.astype(np.float64), axis=1, keepdims=True)
    scores = unit @ query_row.astype(np.float64)  # cosine: the query's own norm changes no order
    groups = [np.flatnonzero(copies == d).tolist() for d in np.argsort(-scores)]
    for orders in itertools.product(*(itertools.permutations(g) for g in groups)):
        yield [ref for order in orders for ref in order]


def test_ties_in_expectation_and_nearest_first_match_enumeration():
    query, reference, qpos, rpos, copies, directions = tied_case()
    where = Positions("xy", qpos), Positions("xy", rpos)
    fair = metrics.top_k_distances(query, reference, *where, (1, 2, 4))
    best = metrics.top_k_distances(query, reference, *where, (1, 2, 4), ties="optimistic")
    fair_top1 = metrics.localisation_report(query, reference, *where, (60.0,))
    best_top1 = metrics.localisation_report(query, reference, *where, (60.0,), ties="optimistic")
    for k in (1, 2, 4):
        expected, nearest, error, within = [], [], [], []
        for i in range(len(query)):
            orders = list(enumerate_orders(query[i], directions, copies))
            values = [gta_uav(np.hypot(*(rpos[order[:k]] - qpos[i]).T), k) for order in orders]
            expected.append(np.mean(values, axis=0))
            nearest.append(max(values, key=lambda v: (v[1], -v[0])))  # nearest first maximises SDM, minimises Dis
            first = [np.hypot(*(rpos[order[0]] - qpos[i])) for order in orders]
            error.append((np.mean(first), min(first)))
            within.append((np.mean(np.array(first) <= 60.0), any(np.array(first) <= 60.0)))
        assert fair[f"Dis@{k}"] == pytest.approx(np.mean([v[0] for v in expected]), rel=1e-9)
        assert fair[f"SDM@{k}"] == pytest.approx(np.mean([v[1] for v in expected]), rel=1e-9)
        assert best[f"Dis@{k}"] == pytest.approx(np.mean([v[0] for v in nearest]), rel=1e-9)
        assert best[f"SDM@{k}"] == pytest.approx(np.mean([v[1] for v in nearest]), rel=1e-9)
    assert fair_top1["error_mean_m"] == pytest.approx(np.mean([e for e, _ in error]), rel=1e-9)
    assert best_top1["error_mean_m"] == pytest.approx(np.mean([b for _, b in error]), rel=1e-9)
    assert fair_top1["acc@60m"] == pytest.approx(100 * np.mean([w for w, _ in within]))
    assert best_top1["acc@60m"] == pytest.approx(100 * np.mean([b for _, b in within]))
    assert fair_top1["error_mean_m"] > best_top1["error_mean_m"]  # the case has ties that matter


def test_groups_hold_exact_ties_only_and_straddling_groups_whole():
    reference = np.array([[1, 0, 0], [1, 0, 0], [0.999999, 0.001, 0], [0, 1, 0]], np.float32)
    top = exact_top(np.array([[1, 0, 0], [0, 1, 0]], np.float32), reference, k=1)
    assert top.query.tolist() == [0, 0, 1] and top.reference.tolist() == [0, 1, 3]
    assert top.start.tolist() == [0, 0, 0] and top.size.tolist() == [2, 2, 1]
    top = exact_top(np.array([[1, 0, 0]], np.float32), reference, k=3)
    assert top.reference.tolist() == [0, 1, 2] and top.start.tolist() == [0, 0, 2]


def test_a_collapsed_model_is_placed_at_random_by_default_and_at_the_nearest_tile_when_optimistic():
    qpos = np.array([[0.0, 0.0], [0.0, 0.001]])
    rpos = np.array([[0.0, 0.0], [0.0, 0.002], [0.0, 0.004]])
    ones = np.ones((2, 4), np.float32), np.ones((3, 4), np.float32)
    distance = chord_distance_m(np.repeat(qpos, 3, axis=0), np.tile(rpos, (2, 1))).reshape(2, 3)
    fair = metrics.localisation_report(*ones, Positions("latlon", qpos), Positions("latlon", rpos), (120.0,))
    assert fair["error_mean_m"] == pytest.approx(distance.mean(axis=1).mean(), rel=1e-9)
    assert fair["acc@120m"] == pytest.approx(100.0 * (distance <= 120.0).mean(axis=1).mean())
    best = metrics.localisation_report(*ones, Positions("latlon", qpos), Positions("latlon", rpos), (120.0,),
                                       ties="optimistic")
    assert best["error_mean_m"] == pytest.approx(distance.min(axis=1).mean(), rel=1e-9)
    assert best["acc@120m"] == 100.0


def test_planar_positions_give_planar_distances():
    report = metrics.localisation_report(np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32)[::-1].copy(),
                                         Positions("xy", np.array([[3.0, 4.0], [0.0, 0.0]])),
                                         Positions("xy", np.array([[6.0, 8.0], [0.0, 0.0]])), (5.0, 10.0))
    # query 0 matches reference 1 at (0, 0), 5 m away; query 1 reference 0 at (6, 8), 10 m away
    assert report == {"error_median_m": 7.5, "error_mean_m": 7.5, "acc@5m": 50.0, "acc@10m": 100.0}


def test_positions_prefer_degrees_and_name_bad_values():
    meta = pd.DataFrame({"lat": [1.0], "lon": [2.0], "x": [5.0], "y": [6.0]})
    assert metrics.positions(meta).kind == "latlon"
    assert metrics.positions(pd.DataFrame({"city": ["a"]})) is None
    with pytest.raises(ValueError, match="tiles: column 'y'"):
        metrics.positions(pd.DataFrame({"x": [1.0], "y": [np.nan]}), "tiles")
    with pytest.raises(ValueError, match=r"lat must lie in \[-90, 90\]"):
        metrics.positions(pd.DataFrame({"lat": [91.0], "lon": [0.0]}))
    with pytest.raises(ValueError, match="cannot be compared"):
        metrics.localisation_report(np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32),
                                    Positions("xy", np.zeros((2, 2))), Positions("latlon", np.zeros((2, 2))))
    with pytest.raises(ValueError, match="3 query positions for 2"):
        metrics.localisation_report(np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32),
                                    Positions("xy", np.zeros((3, 2))), Positions("xy", np.zeros((2, 2))))


def test_metric_plugins_report_only_where_items_carry_coordinates(city, registry):
    query, reference, qpos, rpos = city
    positives = np.zeros(len(query), np.int64)
    bare = Retrieval(query=query, reference=reference, positives=positives)
    located = Retrieval(query=query, reference=reference, positives=positives,
                        query_meta=pd.DataFrame(qpos, columns=["lat", "lon"]),
                        reference_meta=pd.DataFrame(rpos, columns=["lat", "lon"]),
                        conventions=Conventions(ties="optimistic"))
    localisation = cvbench.create("metric", "localisation", thresholds="50,100")
    assert localisation(bare) == {}
    assert set(localisation(located)) == {"error_median_m", "error_mean_m", "acc@50m", "acc@100m"}
    assert set(cvbench.create("metric", "dis", ks="1,10")(located)) == {"Dis@1", "Dis@10"}
    sdm = cvbench.create("metric", "sdm", ks=[2], scale=0.01)(located)
    want = metrics.top_k_distances(query, reference, Positions("latlon", qpos), Positions("latlon", rpos), (2,),
                                   "optimistic", 0.01)
    assert sdm == {"SDM@2": want["SDM@2"]}
    for name, options, message in (("localisation", {"thresholds": "near"}, "thresholds"),
                                   ("localisation", {"thresholds": "-5"}, "thresholds"),
                                   ("dis", {"ks": "0"}, "ks"), ("sdm", {"scale": 0}, "scale")):
        with pytest.raises(SpecError, match=message):
            cvbench.create("metric", name, **options)
