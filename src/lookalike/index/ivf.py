"""IVFIndex: the inverted file of Sivic & Zisserman (2003, "Video Google") as used for vectors by Jégou, Douze &
Schmid (2011, "Product quantization for nearest neighbor search", the IVFADC system; here with exact vectors in
the lists, what faiss calls IndexIVFFlat).

    training   k-means on a sample gives ``nlist`` centroids, the *coarse quantizer* (a Voronoi partition);
    adding     each vector goes to the inverted list of its nearest centroid;
    searching  a query ranks the centroids, scans only the ``nprobe`` nearest lists exhaustively, keeps the k best.

Scanning nprobe of nlist lists reads about nprobe / nlist of the data; a true neighbour is missed only when it
sits in a cell the query did not probe, so recall rises with nprobe and reaches exact search at nprobe = nlist.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_positive_int, one_query
from ..errors import InvalidParameterError, StorageFormatError
from ..kernels.answers import final_code
from ..kernels.invlists import answer_one, search_lists
from ..kernels.kmeans import MAX_POINTS_PER_CENTROID, assign, kmeans
from ..types import SearchResult
from .base import Index

#: a buffer that must grow grows by this factor at least (amortised O(1) appends)
GROWTH = 1.5
_NO_MASK = np.zeros(0, dtype=np.bool_)


class InvertedLists:
    """``n_lists`` inverted lists kept in one buffer, each list contiguous so that a probe is one linear scan.

    A slot holds an index row and, for quantizing indexes, that row's code (``width`` values of ``dtype``; IVF
    itself stores no payload: it reads ``vectors[row]``).  List p holds slots [start[p], start[p] + size[p])
    with room up to start[p] + capacity[p].  A list that outgrows its room moves to the end of the buffer with
    twice the room (the old slots become a hole), so an append costs O(1) amortised, like a vector per list,
    while the search kernel still sees plain arrays.  When the holes outweigh the data the buffer is repacked."""

    def __init__(self, n_lists: int, width: int = 0, dtype: Any = np.uint8):
        self.start = np.zeros(n_lists, dtype=np.int64)
        self.size = np.zeros(n_lists, dtype=np.int64)
        self.capacity = np.zeros(n_lists, dtype=np.int64)
        self.slot_codes = np.empty((0, width), dtype=dtype)
        self.slot_rows = np.empty(0, dtype=np.int64)
        self.end = 0  # first slot after the last list's room
        self.holes = 0  # slots left behind by moved lists

    @property
    def n_lists(self) -> int:
        return len(self.size)

    def append(self, list_ids: np.ndarray, rows: np.ndarray, codes: np.ndarray | None = None) -> None:
        """Put ``rows`` (with their ``codes``, when the lists carry codes) at the end of lists ``list_ids``."""
        counts = np.bincount(list_ids, minlength=self.n_lists)
        full = np.flatnonzero(self.size + counts > self.capacity)
        if len(full):
            self._move_to_end(full, np.maximum(self.size[full] + counts[full], 2 * self.capacity[full]))
        self._make_writable()
        order = np.argsort(list_ids, kind="stable")
        sorted_lists = list_ids[order]
        first_of_list = np.cumsum(counts) - counts  # position in ``order`` where each list's entries begin
        rank_in_list = np.arange(len(order)) - first_of_list[sorted_lists]
        slots = self.start[sorted_lists] + self.size[sorted_lists] + rank_in_list
        if codes is not None:
            self.slot_codes[slots] = codes[order]
        self.slot_rows[slots] = rows[order]
        self.size += counts
        if self.holes > max(int(self.size.sum()), 4096):
            self._repack()

    def packed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(offsets (n_lists + 1), rows, codes) with list p at [offsets[p], offsets[p+1]) and no holes."""
        offsets = np.concatenate([[0], np.cumsum(self.size)]).astype(np.int64)
        if np.array_equal(self.start, offsets[:-1]):  # already packed: slices, no copy
            return offsets, self.slot_rows[: offsets[-1]], self.slot_codes[: offsets[-1]]
        slots = self._slots_of(np.arange(self.n_lists), self.start)
        return offsets, self.slot_rows[slots], self.slot_codes[slots]

    @classmethod
    def from_packed(cls, offsets: np.ndarray, rows: np.ndarray, codes: np.ndarray) -> "InvertedLists":
        lists = cls(len(offsets) - 1, codes.shape[1], codes.dtype)
        lists.start = np.asarray(offsets[:-1], dtype=np.int64).copy()
        lists.size = np.diff(offsets).astype(np.int64)
        lists.capacity = lists.size.copy()
        lists.slot_rows, lists.slot_codes = rows, codes  # may be read-only memory maps: copied on first write
        lists.end = int(offsets[-1])
        return lists

    def remap_rows(self, new_row_of: np.ndarray) -> None:
        """Rows were renumbered (``new_row_of[old] = new``): rewrite the slots'."""
        self._make_writable()
        slots = self._slots_of(np.arange(self.n_lists), self.start)
        self.slot_rows[slots] = new_row_of[self.slot_rows[slots]]

    def _move_to_end(self, which: np.ndarray, new_capacity: np.ndarray) -> None:
        new_start = self.end + np.cumsum(new_capacity) - new_capacity
        self._reserve(self.end + int(new_capacity.sum()))
        src = self._slots_of(which, self.start[which])
        dst = self._slots_of(which, new_start)
        self.slot_codes[dst] = self.slot_codes[src]
        self.slot_rows[dst] = self.slot_rows[src]
        self.holes += int(self.capacity[which].sum())
        self.start[which] = new_start
        self.capacity[which] = new_capacity
        self.end += int(new_capacity.sum())

    def _slots_of(self, which: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Slot numbers of the entries of lists ``which`` if those lists began at ``starts``, list after list."""
        sizes = self.size[which]
        within = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return np.repeat(starts, sizes) + within

    def _reserve(self, n_slots: int) -> None:
        if n_slots <= len(self.slot_rows):
            self._make_writable()
            return
        capacity = max(n_slots, int(GROWTH * len(self.slot_rows)))
        codes = np.empty((capacity, self.slot_codes.shape[1]), dtype=self.slot_codes.dtype)
        rows = np.full(capacity, -1, dtype=np.int64)
        codes[: self.end] = self.slot_codes[: self.end]
        rows[: self.end] = self.slot_rows[: self.end]
        self.slot_codes, self.slot_rows = codes, rows

    def _make_writable(self) -> None:
        if not (self.slot_codes.flags.writeable and self.slot_rows.flags.writeable):
            self.slot_codes, self.slot_rows = np.array(self.slot_codes), np.array(self.slot_rows)

    def _repack(self) -> None:
        offsets, rows, codes = self.packed()
        packed = InvertedLists.from_packed(offsets, np.array(rows), np.array(codes))
        self.__dict__.update(packed.__dict__)


class IVFIndex(Index):
    """Inverted file index with exact vectors in the lists (faiss's IndexIVFFlat).

    Build parameters: ``nlist`` (number of k-means cells; about 4 * sqrt(n) is customary), ``n_iter`` (Lloyd
    iterations), ``seed``, ``max_train_points`` (k-means sample; default 256 * nlist).  Query parameter:
    ``nprobe``, the number of nearest cells scanned (int >= 1; more is slower and more exact).

    Choices, documented:
      * ``nprobe > nlist`` is clamped to the number of lists: the search is then exhaustive (exact).
      * Training happens on the first ``add`` (or an explicit ``train``).  If that batch has fewer points than
        ``nlist``, the index trains ``min(nlist, n)`` lists instead of refusing, and ``trained_nlist`` records
        it.  While ``trained_nlist < nlist``, the lists are re-learnt on the live vectors each time
        ``min(nlist, n)`` reaches twice ``trained_nlist``: adding points one by one still ends with ``nlist``
        cells, after O(log nlist) small retrainings.
      * A query whose probed lists hold fewer than k live (or allowed) points probes twice as many lists, until
        it has k hits or has scanned every list: an IVF answers k hits whenever k candidates exist.
      * Metric: for l2 the cells are plain k-means cells; for cosine and dot, spherical k-means (unit
        centroids), so the nearest cell is the one of largest inner product with the query.
      * Vectors are held once, by row (the base class); the lists hold rows and the scan reads ``vectors[row]``.
        Each added batch is put in list order (its rows sorted by list), so after a bulk build every list's
        vectors are consecutive in memory and the scan reads them as fast as a copy would.
      * ``remove`` leaves a tombstone that the scan skips.  ``compact`` keeps the trained centroids (no new
        k-means: the partition still fits the data it was learnt from) and re-adds the live vectors; it
        retrains only when the index was trained with fewer than ``nlist`` lists and now has points for more.
    """

    type_name = "ivf"
    needs_training = True
    wants_source_order = True
    query_defaults: dict[str, Any] = {"nprobe": 8}

    def __init__(
        self,
        dim: int,
        metric: str = "l2",
        nlist: int = 100,
        n_iter: int = 20,
        seed: int = 0,
        max_train_points: int | None = None,
    ):
        self.nlist = check_positive_int(nlist, "nlist")
        self.n_iter = check_positive_int(n_iter, "n_iter")
        self.seed = check_positive_int(seed, "seed", minimum=0)
        if max_train_points is not None:
            max_train_points = check_positive_int(max_train_points, "max_train_points", minimum=self.nlist)
        self.max_train_points = max_train_points
        super().__init__(
            dim, metric, nlist=self.nlist, n_iter=self.n_iter, seed=self.seed, max_train_points=max_train_points
        )
        self.centroids: np.ndarray | None = None  # (trained_nlist, dim) float32: the coarse quantizer
        self._centroid_sq_norms: np.ndarray | None = None
        self._lists: InvertedLists | None = None
        self._final = final_code(self.spec.name)  # how the kernel finishes the distances (kernels/answers.py)

    @property
    def is_trained(self) -> bool:
        return self.centroids is not None

    @property
    def trained_nlist(self) -> int:
        """Number of lists actually trained (``nlist``, or fewer when the data had fewer points); 0 if untrained."""
        return 0 if self.centroids is None else len(self.centroids)

    def list_sizes(self) -> np.ndarray:
        """Rows held by each inverted list (tombstones included)."""
        return np.zeros(0, np.int64) if self._lists is None else self._lists.size.copy()

    # ------------------------------------------------------------------ training and adding
    def _train(self, vectors: np.ndarray) -> None:
        """Learn the coarse quantizer, then (re)distribute the live rows already stored among the new lists."""
        n_lists = min(self.nlist, len(vectors))
        max_points = self.max_train_points or MAX_POINTS_PER_CENTROID * n_lists
        self._set_centroids(
            kmeans(
                vectors,
                n_lists,
                n_iter=self.n_iter,
                seed=self.seed,
                max_points=max_points,
                spherical=self._spherical_cells,
            )
        )
        self._assign_rows(np.flatnonzero(self.live))

    @property
    def _spherical_cells(self) -> bool:
        """Unit centroids (spherical k-means) when the nearest cell is the one of largest inner product."""
        return self.spec.kind == "ip"

    def _set_centroids(self, centroids: np.ndarray) -> None:
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self._centroid_sq_norms = np.einsum("ij,ij->i", self.centroids, self.centroids)
        self._lists = self._empty_lists(len(self.centroids))

    def _empty_lists(self, n_lists: int) -> InvertedLists:
        return InvertedLists(n_lists)

    def _on_add(self, start: int, stop: int) -> None:
        possible = min(self.nlist, self._n_live)
        if self.trained_nlist < possible and possible >= min(self.nlist, 2 * self.trained_nlist):
            self._train(self.vectors[self.live])  # grew well past a small first batch: learn more lists
            return
        nearest_list, _ = assign(self.vectors[start:stop], self.centroids)
        if self.owns_vectors:  # sort the new rows by list: each list's vectors become consecutive in memory
            order = np.argsort(nearest_list, kind="stable")
            self._reorder_new_rows(start, order)
            nearest_list = nearest_list[order]
        self._add_to_lists(nearest_list, np.arange(start, stop, dtype=np.int64))

    def _assign_rows(self, rows: np.ndarray) -> None:
        if len(rows):
            nearest_list, _ = assign(self.vectors[rows], self.centroids)
            self._add_to_lists(nearest_list, rows.astype(np.int64))

    def _add_to_lists(self, list_ids: np.ndarray, rows: np.ndarray) -> None:
        self._lists.append(list_ids, rows)

    # ------------------------------------------------------------------ search
    def search(self, queries: Any, k: int = 10, *, allowed_ids: Any = None, **query_params: Any) -> SearchResult:
        """``Index.search``, with a short way for one float32 query without filter (``search_one``): its checks
        cost a few microseconds instead of tens.  The answer is the general path's; anything else (and any error)
        takes the general path."""
        if allowed_ids is None:
            query = one_query(queries, k, self.dim)
            if query is not None:
                answer = self.search_one(query, k, query_params)
                if answer is not None:
                    return SearchResult(*answer)
        return super().search(queries, k, allowed_ids=allowed_ids, **query_params)

    def search_one(self, query: np.ndarray, k: int, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
        """``Index.search_one``: the kernel answers whole (the nprobe nearest lists scanned, labels and final
        distances) when no row is deleted and the probed lists hold k hits."""
        if not (self._n_live == self.n_rows >= k and self.centroids is not None and params.keys() <= {"nprobe"}):
            return None
        nprobe = params.get("nprobe", self.query_defaults["nprobe"])
        if type(nprobe) is not int or nprobe < 1:
            return None
        lists = self._lists
        ids, distances = answer_one(query, self.centroids, self._centroid_sq_norms, min(nprobe, self.trained_nlist),
                                    lists.start, lists.size, self.vectors, lists.slot_rows, self.labels, k,
                                    self.spec.kind == "l2", self.spec.normalize, self._final)
        if ids[0, k - 1] < 0:  # probed lists too thin for k hits (the general path probes wider), or a zero,
            return None       # NaN or inf query (the general path raises the error)
        return ids, distances

    def _search_rows(self, queries: np.ndarray, k: int, mask: np.ndarray | None, nprobe: Any = 8, **scan_params):
        self._require_trained()
        nprobe = min(_check_nprobe(nprobe), self.trained_nlist)
        rows, raw = self._scan(queries, k, mask, nprobe, **scan_params)
        # probed lists too thin for k hits (small index, tombstones, a filter): probe wider for those queries
        wanted = min(k, self._n_live if mask is None else int(mask.sum()))
        short = np.flatnonzero(rows[:, wanted - 1] < 0)  # rows are sorted, padding (-1) last
        while len(short) and nprobe < self.trained_nlist:
            nprobe = min(2 * nprobe, self.trained_nlist)
            rows[short], raw[short] = self._scan(queries[short], k, mask, nprobe, **scan_params)
            short = short[rows[short, wanted - 1] < 0]
        return rows, raw

    def _scan(self, queries: np.ndarray, k: int, mask: np.ndarray | None, nprobe: int):
        """Rank the cells for each query, scan its nprobe nearest lists (kernels/invlists.py)."""
        lists = self._lists
        return search_lists(
            queries,
            self.centroids,
            self._centroid_sq_norms,
            nprobe,
            lists.start,
            lists.size,
            self.vectors,
            lists.slot_rows,
            _NO_MASK if mask is None else mask,
            k,
            self.spec.kind == "l2",
        )

    # ------------------------------------------------------------------ maintenance
    def rebased(self, source: Index | None) -> "IVFIndex":
        """A twin with only the live rows, keeping the trained quantizer unless more lists are now possible."""
        if not self.is_trained or self._n_live == 0 or self.trained_nlist < min(self.nlist, self._n_live):
            return super().rebased(source)
        fresh = type(self)(self.dim, self.metric, **self.params)
        fresh._adopt_training(self)
        self._fill(fresh, source)
        return fresh

    def source_order(self) -> np.ndarray:
        """Source rows list after list (each list's rows ascending), then the rows in no list."""
        _, rows, _ = self._lists.packed()
        n_source = self._source.n_rows if self._source is not None else self.n_rows
        rest = np.ones(n_source, dtype=bool)
        rest[rows] = False
        return np.concatenate([rows, np.flatnonzero(rest)]).astype(np.int64)

    def reordered_with(self, source: Index, order: np.ndarray) -> "IVFIndex":
        """The same lists over the reordered source: only the row numbers change."""
        if not self.is_trained:
            return super().reordered_with(source, order)
        fresh, new_row_of = self._renumbered_twin(source, order)
        offsets, rows, codes = self._lists.packed()
        fresh._lists = InvertedLists.from_packed(offsets, np.array(rows), np.array(codes))
        fresh._lists.remap_rows(new_row_of)
        return fresh

    def _adopt_training(self, trained: "IVFIndex") -> None:
        self._set_centroids(trained.centroids.copy())

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        if not self.is_trained:
            return {}
        offsets, rows, codes = self._lists.packed()
        state = {"centroids": self.centroids, "list_offsets": offsets, "list_rows": rows}
        if codes.shape[1]:
            state["list_codes"] = codes
        return state

    def _restore(self, state: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        names = ("centroids", "list_offsets", "list_rows")
        if not any(name in state for name in names) and self.n_rows == 0:
            return  # saved before training
        if not all(name in state for name in names):
            raise StorageFormatError(f"an IVF index with rows needs {', '.join(names)}; some .npy files are missing")
        centroids, offsets, rows = state["centroids"], state["list_offsets"], state["list_rows"]
        self._set_centroids(np.asarray(centroids))  # makes empty lists of the right code width
        empty = self._lists.slot_codes
        codes = state.get("list_codes", np.empty((len(rows), 0), dtype=empty.dtype))
        consistent = (
            centroids.ndim == 2
            and centroids.shape[1] == self.dim
            and offsets.shape == (len(centroids) + 1,)
            and offsets[0] == 0
            and bool(np.all(np.diff(offsets) >= 0))
            and offsets[-1] == len(rows) == len(codes) <= self.n_rows
            and codes.shape[1:] == empty.shape[1:] and codes.dtype == empty.dtype
            and (len(rows) == 0 or (rows.min() >= 0 and rows.max() < self.n_rows))
        )
        if not consistent:
            raise StorageFormatError("the IVF arrays (centroids, list_offsets, list_rows, list_codes) disagree")
        self._lists = InvertedLists.from_packed(np.asarray(offsets), rows, codes)


def _check_nprobe(nprobe: Any) -> int:
    if type(nprobe) is int and nprobe >= 1:  # the common case, without the general checks' cost
        return nprobe
    try:
        return check_positive_int(nprobe, "nprobe")
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"{exc} (the number of inverted lists to scan per query)") from None
