"""FlatIndex: exact k-nearest-neighbour search, and the oracle every recall test and benchmark measures against.

Search is a BLAS matrix product by blocks followed by a bounded heap per query (see ``kernels/topk.py``): no
approximation, memory bounded by the block sizes whatever the number of vectors.

A collection's FlatIndex is its *vector store*: it does not own its rows but reads them from the collection's
vector log, memory-mapped (``over_log`` / ``grow``), and every other index of the collection attaches to it.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInputError
from ..kernels.topk import exact_topk
from .base import GrowableArray, Index

#: a single query reads only the allowed rows when fewer than 1 / SCAN_SHARE of the rows are allowed (reading
#: a row at random costs about what BLAS spends on five rows in sequence)
SCAN_SHARE = 5


class FlatIndex(Index):
    type_name = "flat"
    query_defaults: dict = {}

    def __init__(self, dim: int, metric: str = "l2"):
        super().__init__(dim, metric)
        self._sq_norms: np.ndarray | None = None  # ||x||^2 per row, cached for l2

    def _on_add(self, start: int, stop: int) -> None:
        if self._sq_norms is not None and len(self._sq_norms) == start:  # extend the cache, do not recompute it
            new = self.vectors[start:stop]
            self._sq_norms = np.concatenate([self._sq_norms, np.einsum("ij,ij->i", new, new)])
        else:
            self._sq_norms = None

    def _search_rows(self, queries: np.ndarray, k: int, mask: np.ndarray | None):
        if mask is not None and len(queries) == 1:
            allowed = np.count_nonzero(mask)
            if allowed * SCAN_SHARE < len(mask):  # a filter passing few rows: read only those
                return self._scan_masked_rows(queries, k, mask)
        if self.spec.kind == "l2" and (self._sq_norms is None or len(self._sq_norms) != self.n_rows):
            self._sq_norms = np.einsum("ij,ij->i", self.vectors, self.vectors)
        return exact_topk(queries, self.vectors, k, self.spec.kind, mask, self._sq_norms)

    def search_rows_from(self, start: int, queries: np.ndarray, k: int, mask: np.ndarray | None):
        """Exact search of rows [start, n_rows) only (the rows an attached index has not indexed yet): (rows,
        raw) as ``_search_rows`` gives them, rows numbered as in the whole index."""
        norms = None
        if self.spec.kind == "l2":
            if self._sq_norms is None or len(self._sq_norms) != self.n_rows:
                self._sq_norms = np.einsum("ij,ij->i", self.vectors, self.vectors)
            norms = self._sq_norms[start:]
        rows, raw = exact_topk(queries, self.vectors[start:], k, self.spec.kind, mask, norms)
        return np.where(rows >= 0, rows + start, -1), raw

    # ------------------------------------------------------------------ over the vector log
    @classmethod
    def over_log(cls, dim: int, metric: str, vectors: np.ndarray, labels: np.ndarray, live: np.ndarray,
                 generation: str) -> "FlatIndex":
        """A flat index whose rows are the vector log's (``vectors``, ``labels``: read-only mapped views of the
        committed rows), with these live flags; ``generation`` names the log's row numbering."""
        flat = cls(dim, metric)
        flat._vectors, flat._labels = _Mapped(vectors), _Mapped(labels)
        flat._live = GrowableArray((), np.bool_)
        flat._live.extend(np.asarray(live, dtype=np.bool_))
        flat._n_live = int(flat.live.sum())
        flat.generation = generation
        return flat

    def grow(self, vectors: np.ndarray, labels: np.ndarray, new_live: np.ndarray) -> None:
        """The log now has more committed rows (``vectors`` / ``labels``: views of all of them); ``new_live``
        says which of the new ones are live."""
        start = self.n_rows
        if len(labels) != start + len(new_live):
            raise InvalidInputError(f"grow: {len(labels)} rows given, {start} + {len(new_live)} expected")
        old_labels = self.labels
        self._vectors, self._labels = _Mapped(vectors), _Mapped(labels)
        self._live.extend(np.asarray(new_live, dtype=np.bool_))
        self._n_live += int(np.count_nonzero(new_live))
        self._extend_sorted_cache(old_labels, start)
        self._on_add(start, self.n_rows)

    def _extend_sorted_cache(self, old_labels: np.ndarray, start: int) -> None:
        """Keep the label -> row lookup without sorting every label again: new labels are usually all above the
        old ones (labels only grow), so the sorted arrays are extended; otherwise the cache is dropped."""
        cache = self._sorted_cache
        new = self.labels[start:]
        if cache is None or len(cache[0]) != start or len(new) == 0:
            self._sorted_cache = None if len(new) else cache
            return
        if np.all(new[1:] > new[:-1]) and (start == 0 or new[0] > cache[0][-1]):
            self._sorted_cache = (np.concatenate([cache[0], new]),
                                  np.concatenate([cache[1], np.arange(start, self.n_rows, dtype=cache[1].dtype)]))
        else:
            self._sorted_cache = None


class _Mapped:
    """A column of the vector log in the place of a GrowableArray: read-only, grown by ``FlatIndex.grow``."""

    def __init__(self, view: np.ndarray):
        self.view = view

    def __len__(self) -> int:
        return len(self.view)

    def extend(self, values: np.ndarray) -> None:
        raise InvalidInputError("this index reads the collection's vector log: its rows are appended by the log")

    def writable_view(self) -> np.ndarray:
        raise InvalidInputError("the vector log's rows are never changed in place")
