"""Auto-tuning: the cheapest query parameter that reaches a recall target.

Given an index and a target (say recall@10 >= 0.95), ``tune`` draws a held-out sample of the index's own
vectors as queries, computes their exact neighbours with FlatIndex (each query's own point excluded, so the
task is not trivially easy), and searches the parameter's grid.  Queries of another kind than the stored points
(text queries against a catalog of photos: the modality gap) need their own parameters: pass them as
``queries`` and their exact neighbours are the truth.  Recall grows with the parameter (more lists
probed, a wider beam, more candidates), so a binary search over the sorted grid finds the smallest value that
meets the target in about log2(len(grid)) measurements.  The report says what was measured, never a promise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import check_k
from .errors import InvalidParameterError

# index type -> (query parameter, grid builder from the index)
_GRIDS = {
    "ivf": ("nprobe", lambda ix: _powers(1, _param(ix, "nlist", 100))),
    "ivfpq": ("nprobe", lambda ix: _powers(1, _param(ix, "nlist", 100))),
    "hnsw": ("ef", lambda ix: [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]),
    "rp_forest": ("search_k", lambda ix: [_param(ix, "n_trees", 10) * 10 * f for f in _powers(1, 256)]),
    "lsh": ("n_probes", lambda ix: _powers(1, 1024)),
    "sq8": ("rerank", lambda ix: _powers(1, 64)),
}


@dataclass
class TuneReport:
    index: str
    param: str | None
    value: Any
    recall: float
    target_recall: float
    k: int
    n_queries: int
    reached: bool
    ms_per_query: float
    tried: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        if self.param is None:
            return f"{self.index}: exact, recall {self.recall:.3f}"
        state = "reached" if self.reached else "NOT reached (best value shown)"
        return (f"{self.index}: {self.param}={self.value} -> recall@{self.k} {self.recall:.3f} on {self.n_queries} "
                f"held-out queries, {self.ms_per_query:.3f} ms/query; target {self.target_recall} {state}")


def tune(index, target_recall: float = 0.95, k: int = 10, *, sample: int = 200, seed: int = 0,
         allowed_ids=None, queries=None) -> TuneReport:
    """Pick the smallest query parameter of ``index`` whose measured recall@k reaches ``target_recall``, on
    ``sample`` of its own points, or on ``queries`` (an array of query vectors) when given."""
    from ._validation import as_matrix
    from .evaluation import recall_per_query
    from .index.flat import FlatIndex

    k = check_k(k)
    if not 0 < float(target_recall) <= 1:
        raise InvalidParameterError(f"target_recall must be in (0, 1], got {target_recall}")
    live = np.flatnonzero(index.live)
    if len(live) <= k:
        raise InvalidParameterError(f"the index holds {len(live)} points: tuning needs more than k={k}")
    exact = FlatIndex(index.dim, index.metric)
    exact.add(index.vectors[live], index.labels[live])
    if queries is None:
        rng = np.random.default_rng(seed)
        chosen = rng.choice(live, size=min(sample, len(live)), replace=False)
        queries, own = index.vectors[chosen], index.labels[chosen]
    else:  # the caller's queries: none of them is a stored point, no label to drop (-2 is none)
        queries = as_matrix(queries, index.dim, what="queries")
        own = np.full(len(queries), -2, dtype=np.int64)
    truth = _drop_self(exact.search(queries, k + 1), own, k)

    if index.type_name not in _GRIDS:
        return TuneReport(index.type_name, None, None, 1.0, target_recall, k, len(queries), True, 0.0)
    param, grid_of = _GRIDS[index.type_name]
    grid = sorted(set(grid_of(index)))
    tried: dict[Any, dict[str, Any]] = {}

    def measure(value):
        if value not in tried:
            index.search(queries[:5], k + 1, **{param: value})  # warm-up (compilation, caches)
            t0 = time.perf_counter()
            found = index.search(queries, k + 1, **{param: value})
            ms = 1000 * (time.perf_counter() - t0) / len(queries)
            recall = float(recall_per_query(_drop_self(found, own, k), truth).mean())
            tried[value] = {param: value, "recall": recall, "ms_per_query": ms}
        return tried[value]

    lo, hi = 0, len(grid) - 1
    if measure(grid[hi])["recall"] < target_recall:
        best = grid[hi]
    else:
        while lo < hi:  # invariant: grid[hi] reaches the target
            mid = (lo + hi) // 2
            if measure(grid[mid])["recall"] >= target_recall:
                hi = mid
            else:
                lo = mid + 1
        best = grid[hi]
    result = measure(best)
    return TuneReport(index.type_name, param, best, result["recall"], target_recall, k, len(queries),
                      result["recall"] >= target_recall, result["ms_per_query"],
                      sorted(tried.values(), key=lambda r: r[param]))


def _drop_self(result, own: np.ndarray, k: int):
    """Remove each query's own point from its answer (k+1 asked, k kept)."""
    from .types import SearchResult

    ids = np.full((len(own), k), -1, dtype=np.int64)
    dist = np.full((len(own), k), np.inf, dtype=np.float32)
    for i, label in enumerate(own):
        keep = result.ids[i] != label
        row_ids, row_d = result.ids[i][keep][:k], result.distances[i][keep][:k]
        ids[i, : len(row_ids)], dist[i, : len(row_d)] = row_ids, row_d
    return SearchResult(ids=ids, distances=dist)


def _param(index, name: str, default: int) -> int:
    value = index.params.get(name, getattr(index, name, default))
    return int(value) if value is not None else default


def _powers(start: int, stop: int) -> list[int]:
    values, v = [], start
    while v < stop:
        values.append(v)
        v *= 2
    return values + [stop]


def logged_text_queries(db_path, collection, limit: int = 2000):
    """The distinct text queries the server logged for ``collection`` (newest ``limit``), embedded again by the
    collection's text route: what shoppers really typed, to tune on (``lookalike tune --from-log``)."""
    import sqlite3
    from pathlib import Path

    from .embed.base import get_embedder, query_route
    from .errors import InvalidInputError

    log_file = Path(db_path) / "querylog.sqlite"
    if not log_file.is_file():
        raise InvalidInputError(f"{log_file} does not exist: serve the database and search by text first")
    if not collection.embedder:
        raise InvalidInputError(f"collection {collection.name!r} records no embedder: its texts cannot be embedded")
    with sqlite3.connect(f"file:{log_file}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT text FROM queries WHERE collection = ? AND mode = 'text' AND text IS NOT NULL "
                            "GROUP BY text ORDER BY MAX(id) DESC LIMIT ?", (collection.name, limit)).fetchall()
    texts = [text for (text,) in rows if text.strip()]
    if len(texts) < 10:
        raise InvalidInputError(f"the query log holds {len(texts)} text queries of {collection.name!r}: "
                                "tuning needs at least 10")
    return get_embedder(query_route(collection.embedder)).embed_texts(texts)
