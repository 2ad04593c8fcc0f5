"""Recall@k with ties tolerated, answer validation, latency percentiles and the Pareto frontier, on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.bench.measures import (
    check_answers,
    knn_recall,
    latency_percentiles,
    pareto_mask,
    recall_from_distances,
    true_distances,
)
from lookalike.errors import DuplicateIdError, InvalidInputError

pytestmark = pytest.mark.unit

INF = np.inf


def test_recall_counts_points_within_the_kth_true_distance():
    truth = np.array([[1.0, 2.0, 3.0]])
    assert recall_from_distances(np.array([[1.0, 2.0, 3.0]]), truth)[0] == 1.0
    assert recall_from_distances(np.array([[1.0, 2.0, 3.5]]), truth)[0] == pytest.approx(2 / 3)
    assert recall_from_distances(np.array([[4.0, 5.0, 6.0]]), truth)[0] == 0.0


def test_recall_tolerates_ties_and_epsilon_but_not_more():
    truth = np.array([[1.0, 2.0, 3.0]])
    # a different point at exactly the k-th distance (a tie) counts; so does one within epsilon
    assert recall_from_distances(np.array([[1.0, 3.0, 3.0]]), truth)[0] == 1.0
    assert recall_from_distances(np.array([[1.0, 2.0, 3.0 + 5e-4]]), truth, epsilon=1e-3)[0] == 1.0
    assert recall_from_distances(np.array([[1.0, 2.0, 3.0 + 2e-3]]), truth, epsilon=1e-3)[0] == pytest.approx(2 / 3)


def test_recall_with_fewer_results_than_k_and_padding():
    truth = np.array([[1.0, 2.0, 3.0, 4.0]])
    # two real hits, the rest padding (+inf distances): 2 of 4
    assert recall_from_distances(np.array([[1.0, 2.0, INF, INF]]), truth)[0] == pytest.approx(0.5)
    # fewer true neighbours than k (a tiny data set): the denominator is what exists
    assert recall_from_distances(np.array([[1.0, 2.0, INF]]), np.array([[1.0, 2.0, INF]]))[0] == 1.0


def test_knn_recall_on_points_with_a_tie():
    points = np.array([[0, 0], [1, 0], [0, 1], [5, 5], [-1, 0]], dtype=np.float32)
    query = np.array([[0, 0]], dtype=np.float32)
    truth = np.array([[0, 1]])  # rows 1, 2 and 4 are all at distance 1: truth listed row 1
    assert knn_recall(np.array([[0, 2]]), truth, query, points, "l2", 2)[0] == 1.0
    assert knn_recall(np.array([[4, 0]]), truth, query, points, "l2", 2)[0] == 1.0
    assert knn_recall(np.array([[0, 3]]), truth, query, points, "l2", 2)[0] == 0.5
    assert knn_recall(np.array([[0, -1]]), truth, query, points, "l2", 2)[0] == 0.5  # padded answer
    assert knn_recall(np.array([[0]]), truth, query, points, "l2", 2)[0] == 0.5  # short answer


def test_duplicate_ids_in_one_answer_are_rejected():
    with pytest.raises(DuplicateIdError):
        check_answers(np.array([[0, 1], [2, 2]]), 5, 2)
    points = np.eye(3, dtype=np.float32)
    with pytest.raises(DuplicateIdError):
        knn_recall(np.array([[1, 1]]), np.array([[0, 1]]), points[:1], points, "l2", 2)
    # repeated padding is not a duplicate
    assert check_answers(np.array([[0, -1, -1]]), 5, 3).tolist() == [[0, -1, -1]]


def test_bad_answers_are_rejected():
    with pytest.raises(InvalidInputError):
        check_answers(np.array([[0, 7]]), 5, 2)  # beyond the data set
    with pytest.raises(InvalidInputError):
        check_answers(np.array([[0, 1, 2]]), 5, 2)  # more than k
    with pytest.raises(InvalidInputError):
        check_answers(np.array([0, 1]), 5, 2)  # not 2-D
    assert check_answers(np.array([[3]]), 5, 3).tolist() == [[3, -1, -1]]


@pytest.mark.parametrize("metric", ["l2", "cosine", "dot"])
def test_true_distances_match_numpy(metric, rng):
    points = rng.normal(size=(40, 6)).astype(np.float32)
    queries = rng.normal(size=(5, 6)).astype(np.float32)
    ids = rng.integers(0, 40, size=(5, 4))
    ids[0, 3] = -1
    got = true_distances(queries, points, ids, metric)
    for i in range(5):
        for j in range(4):
            if ids[i, j] < 0:
                assert got[i, j] == np.inf
                continue
            q, x = queries[i].astype(np.float64), points[ids[i, j]].astype(np.float64)
            expected = {"l2": np.linalg.norm(q - x), "dot": -q @ x,
                        "cosine": 1 - q @ x / np.linalg.norm(q) / np.linalg.norm(x)}[metric]
            assert got[i, j] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_latency_percentiles_in_milliseconds():
    stats = latency_percentiles(np.arange(1, 101) / 1000.0)  # 1 ms .. 100 ms
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p99"] == pytest.approx(99.01)
    assert stats["mean"] == pytest.approx(50.5)
    with pytest.raises(InvalidInputError):
        latency_percentiles([])


def test_pareto_mask_keeps_undominated_points():
    recall = [0.5, 0.9, 0.8, 0.99, 0.9]
    qps = [1000, 500, 400, 100, 600]
    # (0.9, 500) is beaten by (0.9, 600); (0.8, 400) by both 0.9 points
    assert pareto_mask(recall, qps).tolist() == [True, False, False, True, True]
