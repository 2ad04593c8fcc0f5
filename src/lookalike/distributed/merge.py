"""Merging per-shard top-k lists into the global top-k.

Every point lives on exactly one shard, so the global k nearest of a query are among the union of the shards'
k nearest: concatenate the S lists (S * k candidates per query) and keep the k smallest distances.  Each shard
computes distances with the same kernels on the same stored vectors as one machine would, so a sharded exact
search returns what a single node returns.

Equal distances are ordered by the 64-bit routing key of the id (then by shard), a rule that does not depend on
how many shards there are: resharding never reorders a result.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..evaluation import recall_per_query, true_knn_flags
from ..metrics import MetricSpec, similarity
from ..types import SearchResult
from .routing import tie_break_keys


def merge_order(distances: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Column positions of the k best candidates of each row: smallest distance first, ties by key."""
    order = np.lexsort((tie_break_keys(keys), distances), axis=-1)
    return order[:, :k]


def merge_answers(answers: list[dict[str, Any]], k: int, spec: MetricSpec, *, include_metadata: bool,
                  with_recall: bool) -> SearchResult:
    """One SearchResult from the shards' answers (see ``Shard.query``), as one collection would give it."""
    distances = np.concatenate([a["distances"] for a in answers], axis=1)
    keys = np.concatenate([a["keys"] for a in answers], axis=1)
    ids = np.concatenate([a["ids"] for a in answers], axis=1)
    best = merge_order(distances, keys, k)
    width = best.shape[1]
    out_ids = np.full((len(ids), k), None, dtype=object)
    out_dist = np.full((len(ids), k), np.inf, dtype=np.float32)
    out_ids[:, :width] = np.take_along_axis(ids, best, axis=1)
    out_dist[:, :width] = np.take_along_axis(distances, best, axis=1)
    out_ids[~np.isfinite(out_dist)] = None
    metadatas = None
    if include_metadata:
        flat_metas = [sum((a["metadatas"][row] for a in answers), []) for row in range(len(ids))]
        metadatas = [[flat_metas[row][j] if out_ids[row, c] is not None else None for c, j in enumerate(best[row])]
                     + [None] * (k - width) for row in range(len(ids))]
    result = SearchResult(ids=out_ids, distances=out_dist, similarities=similarity(out_dist, spec),
                          metadatas=metadatas, stats=_merge_stats(answers))
    if with_recall:
        _attach_recall(result, answers, keys, best, k)
    return result


def _attach_recall(result: SearchResult, answers: list[dict[str, Any]], keys: np.ndarray, best: np.ndarray,
                   k: int) -> None:
    """true_knn / recall against the merged exact search, with routing keys standing in for ids."""
    exact_dist = np.concatenate([a["exact"]["distances"] for a in answers], axis=1)
    exact_keys = np.concatenate([a["exact"]["keys"] for a in answers], axis=1)
    exact_best = merge_order(exact_dist, exact_keys, k)
    approx = _key_result(np.take_along_axis(keys, best, axis=1), result.distances[:, : best.shape[1]], k)
    exact = _key_result(np.take_along_axis(exact_keys, exact_best, axis=1),
                        np.take_along_axis(exact_dist, exact_best, axis=1), k)
    result.true_knn = true_knn_flags(approx, exact)
    result.recall = recall_per_query(approx, exact)


def _key_result(keys: np.ndarray, distances: np.ndarray, k: int) -> SearchResult:
    labels = np.full((len(keys), k), -1, dtype=np.int64)
    dist = np.full((len(keys), k), np.inf, dtype=np.float32)
    found = np.isfinite(distances)
    labels[:, : keys.shape[1]] = np.where(found, tie_break_keys(keys), -1)
    dist[:, : keys.shape[1]] = distances
    return SearchResult(ids=labels, distances=dist)


def _merge_stats(answers: list[dict[str, Any]]) -> dict[str, Any]:
    shard_ms = [float(a["stats"].get("search_ms", 0.0)) for a in answers]
    stats = {"index": answers[0]["stats"].get("index"), "search_ms": max(shard_ms), "shards": len(answers),
             "shard_search_ms": shard_ms}
    exact_ms = [a["stats"].get("exact_ms") for a in answers]
    if all(ms is not None for ms in exact_ms):
        stats["exact_ms"] = max(exact_ms)
    return stats


__all__ = ["merge_answers", "merge_order"]
