"""What the benchmark measures: recall@k with ties tolerated, latency percentiles, and the Pareto frontier.

Recall follows ann-benchmarks: a returned point counts when its true distance to the query is at most the distance
of the k-th true neighbour plus a small epsilon.  So a point tied with the k-th neighbour counts even when the
ground truth happened to list its twin, and the benchmark does not trust the distances an index reports: both
sides are recomputed here, in float64, with one formula.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from ..errors import DuplicateIdError, InvalidInputError

DEFAULT_EPSILON = 1e-3  # as ann-benchmarks: absolute slack on the k-th true distance
_BLOCK = 256  # queries per block when gathering (q, k, d) vectors


def check_answers(ids: np.ndarray, n_points: int, k: int) -> np.ndarray:
    """Validate what an algorithm answered: (q, <=k) integer ids in [0, n_points) or -1 padding, no id twice in
    one answer.  Returns int64 ids padded to k columns."""
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise InvalidInputError(f"answers must be a 2-D integer array (queries, k), got {ids.dtype} {ids.shape}")
    if ids.shape[1] > k:
        raise InvalidInputError(f"an answer holds {ids.shape[1]} ids, more than k={k}")
    ids = ids.astype(np.int64, copy=False)
    if ids.shape[1] < k:
        ids = np.hstack([ids, np.full((len(ids), k - ids.shape[1]), -1, dtype=np.int64)])
    bad = (ids < -1) | (ids >= n_points)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise InvalidInputError(f"answer {row} holds ids outside [0, {n_points}): {ids[row].tolist()}")
    ordered = np.sort(ids, axis=1)
    repeated = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    if repeated.any():
        row = int(np.flatnonzero(repeated.any(axis=1))[0])
        raise DuplicateIdError(f"answer {row} returns the same point twice: {ids[row].tolist()}")
    return ids


def true_distances(queries: np.ndarray, points: np.ndarray, ids: np.ndarray, metric: str) -> np.ndarray:
    """(q, k) float64 distance from query i to ``points[ids[i, j]]``; +inf where the id is -1 (padding).

    metric "l2": euclidean; "cosine": 1 - cos; "dot": -<q, x> (smaller is closer everywhere)."""
    q64 = np.asarray(queries, dtype=np.float64)
    if metric == "cosine":
        q64 = q64 / np.linalg.norm(q64, axis=1, keepdims=True)
    out = np.full(ids.shape, np.inf)
    for start in range(0, len(ids), _BLOCK):
        block_ids = ids[start : start + _BLOCK]
        found = block_ids >= 0
        x = np.asarray(points[np.where(found, block_ids, 0)], dtype=np.float64)  # (b, k, d)
        q = q64[start : start + _BLOCK, None, :]
        if metric == "l2":
            dist = np.sqrt(((x - q) ** 2).sum(axis=2))
        elif metric == "cosine":
            dist = 1.0 - (x * q).sum(axis=2) / np.linalg.norm(x, axis=2)
        elif metric == "dot":
            dist = -(x * q).sum(axis=2)
        else:
            raise InvalidInputError(f"unknown metric {metric!r} for recall")
        out[start : start + _BLOCK] = np.where(found, dist, np.inf)
    return out


def recall_from_distances(found: np.ndarray, truth: np.ndarray, epsilon: float = DEFAULT_EPSILON) -> np.ndarray:
    """Per-query recall from distances alone.

    ``found`` (q, k): true distances of the returned points, +inf for padding; ``truth`` (q, k): distances of the
    true k nearest, +inf where fewer than k points exist.  A returned point counts when its distance is
    <= the largest true distance + epsilon; the count is divided by the number of true neighbours."""
    found = np.asarray(found, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if found.shape != truth.shape:
        raise InvalidInputError(f"found {found.shape} and truth {truth.shape} must have the same shape")
    finite_truth = np.isfinite(truth)
    wanted = finite_truth.sum(axis=1)
    threshold = np.where(finite_truth, truth, -np.inf).max(axis=1, initial=-np.inf) + epsilon
    hits = (np.isfinite(found) & (found <= threshold[:, None])).sum(axis=1)
    hits = np.minimum(hits, wanted)  # never more than there are true neighbours
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(wanted > 0, hits / np.maximum(wanted, 1), 1.0)


def knn_recall(
    answers: np.ndarray, true_ids: np.ndarray, queries: np.ndarray, points: np.ndarray, metric: str, k: int,
    epsilon: float = DEFAULT_EPSILON,
) -> np.ndarray:
    """Per-query recall@k of ``answers`` (q, <=k ids, -1 padded) against ``true_ids`` (q, k), ties tolerated.
    A duplicate id in one answer raises DuplicateIdError: it would count twice."""
    answers = check_answers(answers, len(points), k)
    true_ids = np.asarray(true_ids, dtype=np.int64)[:, :k]
    found = true_distances(queries, points, answers, metric)
    truth = true_distances(queries, points, true_ids, metric)
    return recall_from_distances(found, truth, epsilon)


def best_of(call, rounds: int) -> tuple[Any, float]:
    """(the last result, the fewest seconds) of ``rounds`` calls of ``call()``: on a shared machine other work
    only ever adds time, so the best round is the measure (the suites' one way to time a call)."""
    best, result = float("inf"), None
    for _ in range(max(1, rounds)):
        start = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - start)
    return result, best


def latency_percentiles(seconds: Sequence[float] | np.ndarray) -> dict[str, float]:
    """p50 / p95 / p99 / mean of per-query latencies, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    if ms.size == 0:
        raise InvalidInputError("no latencies to summarise")
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(ms.mean())}


def pareto_mask(recall: Sequence[float], qps: Sequence[float]) -> np.ndarray:
    """True for the points no other point beats on both axes (higher recall and higher QPS are better)."""
    recall = np.asarray(recall, dtype=np.float64)
    qps = np.asarray(qps, dtype=np.float64)
    order = np.lexsort((-qps, -recall))  # best recall first, ties by best QPS
    keep = np.zeros(len(recall), dtype=bool)
    best_qps = -np.inf
    for i in order:
        if qps[i] > best_qps:
            keep[i] = True
            best_qps = qps[i]
    return keep
