"""Recall against exact search: the seed's "true KNN?" flag per hit and recall@k per query.

A hit counts as a true nearest neighbour when it is one of the exact k nearest, or when its distance is within
``eps`` of the k-th exact distance (ties: two points at the same distance are equally right answers).
"""

from __future__ import annotations

import numpy as np

from .types import SearchResult


def true_knn_flags(approx: SearchResult, exact: SearchResult, eps: float = 1e-5) -> np.ndarray:
    """(q, k) bool: whether each returned hit is a true k-nearest neighbour.  Padding is False."""
    found = approx.ids >= 0
    exact_found = exact.ids >= 0
    flags = np.zeros(approx.ids.shape, dtype=bool)
    for i in range(len(approx.ids)):
        kth = exact.distances[i][exact_found[i]].max() if exact_found[i].any() else -np.inf
        tolerance = eps * max(1.0, abs(float(kth)))
        in_exact = np.isin(approx.ids[i], exact.ids[i][exact_found[i]])
        flags[i] = found[i] & (in_exact | (approx.distances[i] <= kth + tolerance))
    return flags


def recall_per_query(approx: SearchResult, exact: SearchResult, eps: float = 1e-5) -> np.ndarray:
    """(q,) recall@k: true hits / the number of points exact search found (k, or fewer in a small index).
    A query with nothing to find has recall 1."""
    flags = true_knn_flags(approx, exact, eps)
    possible = (exact.ids >= 0).sum(axis=1)
    hits = np.minimum(flags.sum(axis=1), possible)
    return np.where(possible > 0, hits / np.maximum(possible, 1), 1.0)


def evaluate(index, queries, k: int = 10, *, exact=None, **query_params) -> dict:
    """Mean recall@k of ``index.search(queries, k, **query_params)`` against exact search.

    ``index`` is an Index (then ``exact`` defaults to a FlatIndex twin of it) or a Collection (its exact search)."""
    from .index.flat import FlatIndex

    if hasattr(index, "query"):  # a Collection
        result = index.query(queries, k, with_recall=True, **query_params)
        return {"recall": float(result.recall.mean()), "per_query": result.recall}
    approx = index.search(queries, k, **query_params)
    if exact is None:
        exact = FlatIndex(index.dim, index.metric)
        keep = np.flatnonzero(index.live)
        if len(keep):
            exact.add(index.vectors[keep], index.labels[keep])
    truth = exact.search(queries, k)
    per_query = recall_per_query(approx, truth)
    return {"recall": float(per_query.mean()), "per_query": per_query}


def exact_neighbors(train: np.ndarray, test: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(neighbors (q, k) int64 row numbers, distances (q, k) float32) by FlatIndex."""
    from .index.flat import FlatIndex

    index = FlatIndex(train.shape[1], metric)
    index.add(train, np.arange(len(train), dtype=np.int64))
    result = index.search(test, k)
    return result.ids, result.distances
