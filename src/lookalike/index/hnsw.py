"""HNSWIndex: Hierarchical Navigable Small World graphs (Malkov & Yashunin, 2016/2018).

Every point is a node of a layered proximity graph.  A node's top layer is drawn at random, P(level >= l) =
M^-l (mL = 1/ln M), so each layer holds about 1/M of the nodes of the layer below: the upper layers are a
coarse, long-link "express" graph, layer 0 holds every node.  A search descends greedily from the entry point
(the node on the top layer) to layer 1, then runs a best-first search with a dynamic list of ``ef``
candidates on layer 0.  An insertion does the same search with ``ef_construction`` on each of the node's
layers and links it to up to M neighbours picked by the paper's heuristic (M_max = M above layer 0, 2M on
layer 0), adding the reverse links and pruning neighbour lists that overflow.

Build parameters: ``M`` (links per node and layer) and ``ef_construction``; query parameter: ``ef`` (raised
to k when smaller).  The arrays and kernels are in ``kernels/graph.py``; insertion runs on all threads, a
batch of queries too, and a single query takes a short way around the general checks of ``Index.search``
(a graph search takes tens of microseconds: the Python around it must not double that).

Deleted points stay in the graph as tombstones: search walks through them (the graph stays navigable) but
never returns them.  A filter (``allowed_ids``) works the same way, and the walk goes on until ef *allowed*
nodes fill the result list, so a selective filter widens the search by about 1 / (allowed fraction) instead
of leaving it short.  When the filter lets through so few points that the walk would visit more nodes than
there are allowed ones, an exact scan of those points is cheaper, and is used instead.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from .._validation import check_positive_int, one_query
from ..errors import StorageFormatError
from ..kernels import graph as kernels
from ..kernels.answers import ZERO_QUERY, final_code
from ..kernels.topk import exact_topk, scan_rows
from ..metrics import finalize
from ..types import AllowedRows, SearchResult, empty_result
from .base import GrowableArray, Index

_NO_MASK = np.empty(0, dtype=np.bool_)
GRAPH_ARRAYS = ("levels", "links0", "counts0", "upper_start", "upper_links", "upper_counts")
#: a filtered graph search visits about this many nodes per slot of ef, divided by the allowed fraction;
#: below that count of allowed rows, scanning them exactly is cheaper (and exact)
FILTER_SCAN_FACTOR = 16


class HNSWIndex(Index):
    type_name = "hnsw"
    query_defaults = {"ef": 64}
    concurrent_add = True

    def __init__(self, dim: int, metric: str = "l2", M: int = 16, ef_construction: int = 200, seed: int = 0):
        M = check_positive_int(M, "M", minimum=2)
        ef_construction = check_positive_int(ef_construction, "ef_construction")
        seed = check_positive_int(seed, "seed", minimum=0)
        super().__init__(dim, metric, M=M, ef_construction=ef_construction, seed=seed)
        self.M = M
        self.ef_construction = max(ef_construction, M)  # W must hold at least the M neighbours to pick
        self.seed = seed
        self._levels = GrowableArray((), np.int32)
        self._links0 = GrowableArray((2 * M,), np.int32)
        self._counts0 = GrowableArray((), np.int32)
        self._upper_start = GrowableArray((), np.int32)
        self._upper_links = GrowableArray((M,), np.int32)
        self._upper_counts = GrowableArray((), np.int32)
        self._entry = -1
        self._workspace = Workspace()  # the searches' scratch
        self._insert_workspace = Workspace()  # the insertions' own: a search may run beside an insertion
        self._context: tuple | None = None  # see _search_context
        self._final = final_code(self.spec.name)  # how the kernel finishes the distances (kernels/answers.py)

    # ------------------------------------------------------------------ structure
    @property
    def entry_point(self) -> int:
        """Row of the node searches start from (-1 while empty)."""
        return self._entry

    @property
    def max_level(self) -> int:
        return int(self._levels.view[self._entry]) if self._entry >= 0 else -1

    def _graph(self, writable: bool = False) -> tuple[np.ndarray, ...]:
        parts = (self._levels, self._links0, self._counts0, self._upper_start, self._upper_links, self._upper_counts)
        return tuple(part.writable_view() if writable else part.view for part in parts)

    def draw_levels(self, n: int, start: int) -> np.ndarray:
        """Top layer of n new nodes: floor(-ln(U) * mL) with mL = 1/ln(M).  Seeded by (seed, first row), so a
        build is reproducible and a later batch does not repeat the levels of an earlier one."""
        rng = np.random.default_rng([self.seed, start])
        uniform = 1.0 - rng.random(n)  # in (0, 1]: the log is finite
        return np.floor(-np.log(uniform) / math.log(self.M)).astype(np.int32)

    # ------------------------------------------------------------------ writing
    def _on_add(self, start: int, stop: int) -> None:
        self._grow(start, stop)
        self._link(start, stop)

    def _grow(self, start: int, stop: int) -> None:
        """Draw the new nodes' levels and make room for their links (arrays grown, filled with -1)."""
        n = stop - start
        levels = self.draw_levels(n, start)
        blocks = np.zeros(n, dtype=np.int32)  # first upper block of each new node, -1 for layer-0-only nodes
        first_block = len(self._upper_counts)
        np.cumsum(levels[:-1], out=blocks[1:])
        blocks += first_block
        blocks[levels == 0] = -1
        n_blocks = int(levels.sum())
        self._levels.extend(levels)
        self._links0.extend(np.full((n, 2 * self.M), -1, dtype=np.int32))
        self._counts0.extend(np.zeros(n, dtype=np.int32))
        self._upper_start.extend(blocks)
        self._upper_links.extend(np.full((n_blocks, self.M), -1, dtype=np.int32))
        self._upper_counts.extend(np.zeros(n_blocks, dtype=np.int32))
        self._context = None

    def _link(self, start: int, stop: int) -> None:
        """Insert nodes [start, stop) into the graph (Algorithm 1 for each, on all threads).  Searches may run
        meanwhile (``concurrent_add``): the insertion has its own scratch and searches read lists as they are."""
        if self._entry < 0:  # the first node is the whole graph: it becomes the entry point
            self._entry = start
            self._context = None
            start += 1
        if start == stop:
            return
        n_workers = max(1, min(numba.get_num_threads(), stop - start))
        work = self._insert_workspace.fit(n_workers, stop)
        entry = np.array([self._entry], dtype=np.int32)
        next_node = np.array([start], dtype=np.int64)
        kernels.insert_batch(self.vectors, self._graph(writable=True), entry, next_node, stop, self.M,
                             self.ef_construction, self.spec.kind == "ip", work.locks, work.tags[:n_workers],
                             work.epochs[:n_workers], work.c_keys[:n_workers], work.c_nodes[:n_workers])
        if int(entry[0]) != self._entry:
            self._entry = int(entry[0])
            self._context = None  # searches start from the new top

    def add_query_edges(self, queries: Any, n_neighbors: int = 10) -> int:
        """Adapt the graph to queries unlike its points (text queries against photos: out of distribution).

        RoarGraph (Chen et al., VLDB 2024) and OOD-DiskANN (Jaiswal et al. 2022) observe that such a query's
        true neighbours, close to each other from the query's point of view, can be far apart in a graph built
        from the points alone, so the beam search stops before it has found them all.  Both learn edges from
        sample queries; this is the simplest form: for each sample query, its ``n_neighbors`` exact nearest
        points are linked to the nearest of them (both ways) on layer 0, where a node has room (a build link
        is never evicted, so the degree bound 2M holds).  Searches then reach the others from the first one.
        Returns the number of links added.  The links are part of the graph: saved, loaded, and kept until the
        index is rebuilt (points added later do not get them)."""
        from .._validation import as_matrix
        from ..metrics import prepare

        n_neighbors = check_positive_int(n_neighbors, "n_neighbors", minimum=2)
        q = prepare(as_matrix(queries, self.dim, what="queries"), self.spec, what="queries")
        live = None if self._n_live == self.n_rows else self.live
        rows, _ = exact_topk(q, self.vectors, n_neighbors, self.spec.kind, live)
        _, links0, counts0, *_ = self._graph(writable=True)
        added = kernels.link_stars(rows, links0, counts0)
        self._context = None
        return int(added)

    # ------------------------------------------------------------------ reading
    def search(self, queries: Any, k: int = 10, *, allowed_ids: Any = None, **query_params: Any) -> SearchResult:
        """``Index.search``, with a short way for the case a server sees most: one float32 query, with no filter
        or a filter given as allowed rows (as the collection gives it).  Its checks cost a few microseconds where
        the general path spends tens, as much as the graph search itself; without filter or tombstone the kernel
        returns the answer whole (``search_one``).  The answer is the general path's (under cosine up to the last
        bit of the distances: the query is normalised inside the kernel); any other input, valid or not (a NaN, a
        zero vector under cosine), takes the general path, which also raises the errors."""
        if allowed_ids is None or type(allowed_ids) is AllowedRows:
            query = one_query(queries, k, self.dim)
            ef = self._short_way_ef(query_params)
            if query is not None and ef is not None and self.n_rows > 0:
                result = self._search_one(query, k, max(ef, k), allowed_ids)
                if result is not None:
                    return result
        return super().search(queries, k, allowed_ids=allowed_ids, **query_params)

    def search_one(self, query: np.ndarray, k: int, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
        """``Index.search_one``: the kernel walks the graph and answers whole (labels, final distances) when no
        row is deleted."""
        ef = self._short_way_ef(params)
        if ef is None or not self._n_live == self.n_rows > 0:
            return None
        return self._answer_one(query, k, max(ef, k))

    def _short_way_ef(self, params: dict[str, Any]) -> int | None:
        """The ef of a query the short ways take (``ef`` its only parameter, an int >= 1), else None: the general
        path checks the parameters and raises."""
        if not params.keys() <= {"ef"}:
            return None
        ef = params.get("ef", self.query_defaults["ef"])
        return ef if type(ef) is int and ef >= 1 else None

    def _answer_one(self, query: np.ndarray, k: int, ef: int) -> tuple[np.ndarray, np.ndarray] | None:
        vectors, graph, entry, is_ip, tags, epochs, c_keys, c_nodes, labels = self._search_context(True)
        ids, distances = kernels.answer_one(query, vectors, labels, graph, entry, k, ef, is_ip, tags, epochs,
                                            c_keys, c_nodes, self.spec.normalize, self._final)
        return None if ids[0, 0] < -1 else (ids, distances)  # a zero or NaN query: the general path raises

    def _search_one(self, query: np.ndarray, k: int, ef: int, allowed: AllowedRows | None) -> SearchResult | None:
        """One query: the graph walk, or an exact scan of the allowed rows when a filter lets so few through that
        the walk would cost more (or when the walk found fewer than k of them)."""
        all_live = self._n_live == self.n_rows
        if allowed is None and all_live:  # the commonest call: answered whole by the kernel
            answer = self._answer_one(query, k, ef)
            return None if answer is None else SearchResult(*answer)
        vectors, graph, entry, is_ip, tags, epochs, c_keys, c_nodes, _ = self._search_context(True)
        normalize = self.spec.normalize
        total = float(query.sum())
        if total - total != 0.0:  # a NaN or an inf anywhere makes the sum NaN or inf: the general path refuses it
            return None
        if allowed is None:
            candidates, n_allowed = None, self._n_live
            mask = None if all_live else self.live
        else:
            candidates = allowed.below(self.n_rows)  # deleted rows may be among them: counted, never returned
            n_allowed = len(candidates)
            mask = allowed.mask[: self.n_rows] if all_live else allowed.mask[: self.n_rows] & self.live
        if n_allowed == 0:
            return empty_result(1, k)
        scan = allowed is not None and self._scan_is_cheaper(n_allowed, ef)
        if not scan:
            rows, raw = kernels.search_one(query, vectors, graph, entry, k, ef, is_ip,
                                           _NO_MASK if mask is None else mask, mask is not None, tags, epochs,
                                           c_keys, c_nodes, normalize)
            # a filtered walk that came back short is completed exactly (as ``Index.search`` does)
            scan = candidates is not None and rows[0, min(k, n_allowed) - 1] == -1
        if scan:
            rows, raw = scan_rows(query, vectors, candidates, self.live, not all_live, k, is_ip, normalize)
        if rows[0, -1] >= 0:
            return SearchResult(ids=self.labels[rows], distances=finalize(raw, self.spec))
        if rows[0, 0] == ZERO_QUERY:  # a zero vector under cosine: the general path raises the error
            return None
        return self._result(rows, raw)  # fewer than k points: padded as the general path does

    def _search_rows(self, queries: np.ndarray, k: int, mask: np.ndarray | None, ef: Any = 64):
        if type(ef) is not int or ef < 1:  # the common case skips the slower generic check
            ef = check_positive_int(ef, "ef")
        ef = max(ef, k)
        if mask is not None and self._scan_is_cheaper(int(np.count_nonzero(mask)), ef):
            return self._scan_allowed(queries, k, mask)
        single = len(queries) == 1
        vectors, graph, entry, is_ip, tags, epochs, c_keys, c_nodes, _ = self._search_context(single)
        use_mask = mask is not None
        if mask is None:
            mask = _NO_MASK
        search = kernels.search_one if single else kernels.search_many
        return search(queries, vectors, graph, entry, k, ef, is_ip, mask, use_mask, tags, epochs, c_keys, c_nodes)

    def _scan_is_cheaper(self, n_allowed: int, ef: int) -> bool:
        """A filtered graph walk visits about FILTER_SCAN_FACTOR * ef / fraction nodes before ef allowed ones
        fill the result; an exact scan computes n_allowed distances."""
        fraction = n_allowed / self.n_rows
        return n_allowed <= FILTER_SCAN_FACTOR * ef / fraction

    def _scan_allowed(self, queries: np.ndarray, k: int, mask: np.ndarray):
        if len(queries) == 1:  # reads the allowed rows in place; a batch gathers them once for BLAS
            return self._scan_masked_rows(queries, k, mask)
        rows = np.flatnonzero(mask)
        found, raw = exact_topk(queries, self.vectors[rows], k, self.spec.kind)
        return np.where(found >= 0, rows[np.maximum(found, 0)], -1), raw

    def _search_context(self, single: bool) -> tuple:
        """What every search passes to the kernels, gathered once per change of the index (a single query must
        not pay for it): read-only views of the arrays, and the per-thread scratch (row 0 for a single query)."""
        context = self._context
        if context is None or (not single and context[4].shape[0] < numba.get_num_threads()):
            work = self._workspace.fit(numba.get_num_threads(), self.n_rows)
            graph = tuple(_read_only(part) for part in self._graph())
            context = (_read_only(self.vectors), graph, self._entry, self.spec.kind == "ip", work.tags, work.epochs,
                       work.c_keys, work.c_nodes, _read_only(self.labels))
            self._context = context
        return context

    # ------------------------------------------------------------------ renumbering
    def reordered_with(self, source: Index, order: np.ndarray) -> "HNSWIndex":
        """The same graph over the reordered source (its row i = old row ``order[i]``): per-node arrays move
        with their node, links are renamed; source rows this index never held become isolated dead nodes."""
        if self._entry < 0:
            return super().reordered_with(source, order)
        fresh, new_row_of = self._renumbered_twin(source, order)
        pad = len(order) - self.n_rows
        levels, links0, counts0, upper_start, upper_links, upper_counts = self._graph()

        def moved(per_node: np.ndarray, fill: int) -> np.ndarray:
            padding = np.full((pad, *per_node.shape[1:]), fill, dtype=np.int32)
            return np.concatenate([per_node, padding])[order]

        def renamed(links: np.ndarray) -> np.ndarray:
            return np.where(links >= 0, new_row_of[np.maximum(links, 0)], -1).astype(np.int32)

        state = {"levels": moved(levels, 0), "links0": renamed(moved(links0, -1)), "counts0": moved(counts0, 0),
                 "upper_start": moved(upper_start, -1), "upper_links": renamed(upper_links),
                 "upper_counts": upper_counts.copy()}
        fresh._restore(state, {"entry_point": int(new_row_of[self._entry])})  # checks the result, too
        return fresh

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        return dict(zip(GRAPH_ARRAYS, self._graph()))

    def _extra(self) -> dict[str, Any]:
        return {"entry_point": self._entry}

    def _restore(self, state: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        missing = [name for name in GRAPH_ARRAYS if name not in state]
        if missing:
            raise StorageFormatError(f"HNSW index files lack {missing}")
        n_rows, n_blocks = self.n_rows, len(state["upper_counts"])
        shapes = {
            "levels": (n_rows,), "links0": (n_rows, 2 * self.M), "counts0": (n_rows,), "upper_start": (n_rows,),
            "upper_links": (n_blocks, self.M), "upper_counts": (n_blocks,),
        }
        for name, shape in shapes.items():
            if state[name].shape != shape or state[name].dtype != np.int32:
                raise StorageFormatError(f"HNSW array {name} has shape {state[name].shape} {state[name].dtype}, "
                                         f"expected {shape} int32")
        entry = extra.get("entry_point", -1)
        if not isinstance(entry, int) or not -1 <= entry < n_rows or (entry == -1) != (n_rows == 0):
            raise StorageFormatError(f"HNSW entry point {entry!r} does not fit {n_rows} rows")
        problem = _graph_problem(state, entry, self.M)
        if problem:
            raise StorageFormatError(f"HNSW graph files are inconsistent: {problem}")
        for name, shape in shapes.items():
            setattr(self, f"_{name}", GrowableArray(shape[1:], np.int32, state[name]))
        self._entry = entry
        self._context = None


def _graph_problem(state: dict[str, np.ndarray], entry: int, M: int) -> str | None:
    """What is wrong with loaded graph arrays, if anything.  The kernels do not check bounds (that is what
    makes them fast), so a damaged file must be refused here, not crash the process later."""
    levels, upper_start = state["levels"], state["upper_start"]
    n_rows, n_blocks = len(levels), len(state["upper_counts"])
    if n_rows == 0:
        return None if n_blocks == 0 else "upper blocks without nodes"
    if levels.min() < 0 or levels[entry] != levels.max():
        return "levels are negative or the entry point is not on the top layer"
    if int(levels.sum(dtype=np.int64)) != n_blocks:
        return f"{n_blocks} upper blocks for {int(levels.sum(dtype=np.int64))} upper layers of nodes"
    tall = levels > 0
    if (upper_start[~tall] != -1).any() or (upper_start[tall] < 0).any() or \
            (upper_start[tall].astype(np.int64) + levels[tall] > n_blocks).any():
        return "upper_start points outside upper_links"
    for links, counts, capacity in ((state["links0"], state["counts0"], 2 * M),
                                    (state["upper_links"], state["upper_counts"], M)):
        if len(links) and (links.min() < -1 or links.max() >= n_rows):
            return "a link points to no node"
        if len(counts) and (counts.min() < 0 or counts.max() > capacity):
            return "a neighbour count exceeds the capacity"
    return None


class Workspace:
    """Scratch of the graph kernels, kept between calls (an add or a search of one point must not allocate
    per-node arrays) and grown by doubling.  Per worker thread: the visited tags (a search bumps its row's
    epoch instead of clearing them) and room for the candidate heap; one lock per node plus a global one.
    The search kernels hold the GIL, so two Python threads searching one index never use it at the same time;
    the insertion kernel releases it, and runs only while its collection holds the index exclusively."""

    def __init__(self) -> None:
        self.tags = np.zeros((0, 0), dtype=np.uint16)
        self.epochs = np.zeros(0, dtype=np.int64)
        self.c_keys = np.empty((0, 0), dtype=np.float32)
        self.c_nodes = np.empty((0, 0), dtype=np.int32)
        self.locks = np.zeros(1, dtype=np.int32)

    def fit(self, n_workers: int, n_nodes: int) -> "Workspace":
        workers, capacity = self.tags.shape
        if workers >= n_workers and capacity >= n_nodes:
            return self
        workers, capacity = max(workers, n_workers), max(n_nodes, 2 * capacity)
        self.tags = np.zeros((workers, capacity), dtype=np.uint16)
        self.epochs = np.zeros(workers, dtype=np.int64)
        self.c_keys = np.empty((workers, capacity), dtype=np.float32)
        self.c_nodes = np.empty((workers, capacity), dtype=np.int32)
        self.locks = np.zeros(capacity + 1, dtype=np.int32)  # the last one is the global lock
        return self


def _read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view: searches see the same array types whether the index was built in memory or
    memory-mapped by load(mmap=True), so the search kernels are compiled once, not twice."""
    view = array.view()
    view.flags.writeable = False
    return view
