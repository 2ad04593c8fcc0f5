"""Result types shared by indexes and collections."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np


class Metric(str, Enum):
    """Distance metrics.  Every distance is "smaller is closer"."""

    COSINE = "cosine"  # distance = 1 - cos(q, x)           similarity = cos(q, x)
    DOT = "dot"  # distance = -<q, x>                   similarity = <q, x>
    L2 = "l2"  # distance = ||q - x||  (not squared)  similarity = 1 / (1 + distance)


PAD_ID = -1


class AllowedRows:
    """The rows a filter lets through, as a collection hands them to its indexes (``allowed_ids=``): ``mask``, a
    bool per row of the collection's exact index (which the other indexes share, see ``Index.attach``), and
    ``rows``, the True positions in ascending order, so that an index can count the allowed rows, or read just
    those, without a pass over the mask.  Deleted rows may be among them: the index's live mask removes them."""

    __slots__ = ("mask", "rows")

    def __init__(self, mask: np.ndarray, rows: np.ndarray):
        self.mask, self.rows = mask, rows

    def __len__(self) -> int:
        return len(self.rows)

    def below(self, n_rows: int) -> np.ndarray:
        """The allowed rows under ``n_rows`` (an index that holds only the first rows)."""
        if n_rows >= len(self.mask):
            return self.rows
        return self.rows[: int(np.searchsorted(self.rows, n_rows))]


@dataclass
class SearchResult:
    """Answer of a batch of queries, always batch-shaped: row i answers query i.

    For an index, ``ids`` is an (q, k) int64 array padded with -1 and ``distances`` (q, k) float32 padded with
    +inf when fewer than k points exist.  For a collection, ``ids`` holds the user's ids (an object array padded
    with None) and the optional fields are filled in.
    """

    ids: np.ndarray
    distances: np.ndarray
    similarities: np.ndarray | None = None
    metadatas: list[list[dict[str, Any] | None]] | None = None
    true_knn: np.ndarray | None = None  # (q, k) bool: is this hit one of the exact k nearest?
    recall: np.ndarray | None = None  # (q,) recall@k of each query against exact search
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def k(self) -> int:
        return self.ids.shape[1]

    def hits(self, query: int = 0) -> list[dict[str, Any]]:
        """The hits of one query as a list of dicts, padding left out."""
        out = []
        for j in range(self.ids.shape[1]):
            if not np.isfinite(self.distances[query, j]):
                break
            hit: dict[str, Any] = {"id": _plain(self.ids[query, j]), "distance": float(self.distances[query, j])}
            if self.similarities is not None:
                hit["similarity"] = float(self.similarities[query, j])
            if self.metadatas is not None:
                hit["metadata"] = self.metadatas[query][j]
            if self.true_knn is not None:
                hit["true_knn"] = bool(self.true_knn[query, j])
            out.append(hit)
        return out


class CollectionResult(SearchResult):
    """A collection's answer, whose ``similarities``, ``metadatas`` and ``stats`` are made when first read, from
    what the query kept: the hits' labels and the collection that answered (its ``_similarities_of`` and
    ``_metadata_of_hits``).  Each hit's metadata is a copy of the decoded dict (so that editing it edits nothing
    else); a caller that reads only ids and distances should not pay for ten copies a query, ten thousand a batch
    of 1,000 — as much as the search itself.  Each is made once, on first read (or by ``hits()``, ``repr``,
    ``==``, pickling).  A point deleted between the query and the first read of ``metadatas`` keeps the metadata
    the collection had already decoded, or else reads as None."""

    def __init__(self, ids: np.ndarray, distances: np.ndarray, labels: np.ndarray, collection: Any,
                 include_metadata: bool, stats: tuple, true_knn: np.ndarray | None = None,
                 recall: np.ndarray | None = None):
        # plain attribute stores: no dataclass __init__, no keywords, no objects made for fields nobody may read
        # (a single query's answer is made in well under a microsecond, and leaves little for the collector)
        self.ids, self.distances, self.true_knn, self.recall = ids, distances, true_knn, recall
        self._labels, self._collection, self._include_metadata = labels, collection, include_metadata
        self._stats = stats  # (index name, search_ms, the index's defaults, the query's parameters); a dict once read
        self._similarities = self._metadatas = None

    @property  # type: ignore[override]
    def similarities(self) -> np.ndarray:
        if self._similarities is None:
            self._similarities = self._collection._similarities_of(self.distances)
        return self._similarities

    @similarities.setter
    def similarities(self, value: np.ndarray) -> None:
        self._similarities = value

    @property  # type: ignore[override]
    def metadatas(self) -> list[list[dict[str, Any] | None]]:
        if self._metadatas is None:
            labels = self._labels
            self._metadatas = self._collection._metadata_of_hits(labels) if self._include_metadata else \
                [[None] * labels.shape[1] for _ in range(len(labels))]
        return self._metadatas

    @metadatas.setter
    def metadatas(self, value: list[list[dict[str, Any] | None]]) -> None:
        self._metadatas = value

    @property  # type: ignore[override]
    def stats(self) -> dict[str, Any]:
        stats = self._stats
        if type(stats) is tuple:
            index, search_ms, defaults, params = stats
            stats = self._stats = {"index": index, "search_ms": search_ms, "params": {**defaults, **params}}
        return stats

    @stats.setter
    def stats(self, value: dict[str, Any]) -> None:
        self._stats = value

    def __getstate__(self) -> dict[str, Any]:
        # made now: a pickle carries them, not the collection they would be made from
        self.similarities, self.metadatas, self.stats  # noqa: B018
        return {**self.__dict__, "_collection": None}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def empty_result(n_queries: int, k: int) -> SearchResult:
    """A result with every slot padded: what an empty index answers."""
    return SearchResult(
        ids=np.full((n_queries, k), PAD_ID, dtype=np.int64),
        distances=np.full((n_queries, k), np.inf, dtype=np.float32),
    )
