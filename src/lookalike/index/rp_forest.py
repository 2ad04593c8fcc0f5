"""RPForestIndex: a forest of random-projection trees, as in Annoy (Bernhardsson, "Nearest neighbors and vector
models", 2015).

Build.  Each tree splits the points recursively until a node holds at most ``leaf_size`` of them.  A split draws
two points of the node, moves them by a few steps of 2-means over the node's points (as Annoy's code does, so the
cut falls between groups rather than through one), and cuts with the hyperplane equidistant to them: the
perpendicular bisector for l2, the plane through the origin bisecting their angle for cosine (and dot, whose
directions are split the same way).  Because the split follows the data, dense regions get small cells.  Trees
are independent, so they are grown in parallel, one seeded random stream per tree.

Search.  All trees are searched at once with one priority queue: a node's priority is the smallest margin
(signed distance to a splitting plane) met on the way to it, so the queue opens first the leaves the query is
deep inside and then the ones across the nearest planes, in whichever tree they are.  It stops when ``search_k``
candidates have been gathered (counting a point once per tree it came from, as Annoy counts); the distinct ones
are ranked by their exact distance.  ``search_k=-1`` means ``n_trees * k * SEARCH_K_FACTOR``.

Incremental add.  New rows are routed down every tree and linked into the leaf they fall into (leaves grow past
``leaf_size`` meanwhile); once the index has doubled since the last build the forest is rebuilt from the live
rows, so the rebuild work is amortised to O(1) builds per row.  Removed rows stay in the leaves until then,
skipped through the live mask.  The arrays layout is described in ``kernels/trees.py``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numba
import numpy as np

from .._validation import check_positive_int
from ..errors import InvalidParameterError
from ..kernels import trees
from .base import GrowableArray, Index

#: search_k=-1 gathers ``n_trees * k * SEARCH_K_FACTOR`` candidates.  Annoy's default is n_trees * k, but its
#: leaves hold ~100 points; with ours 4x that gave recall@10 0.94 on a 100k x 128 Gaussian mixture (spread 0.15;
#: data with little neighbour structure, spread 0.3, needs far more; `lookalike bench --preset trees` measures it).
SEARCH_K_FACTOR = 4
#: trees grown per parallel call; bounds the scratch of the build to TREE_BATCH * n rows of int32
TREE_BATCH = 8
#: batches smaller than this are searched on the calling thread
PARALLEL_FROM = 4
_FOREST_ARRAYS = ("planes", "offsets", "children", "roots", "leaf_starts", "leaf_rows", "extra_head")


class RPForestIndex(Index):
    type_name = "rp_forest"
    query_defaults: dict = {"search_k": -1}

    def __init__(self, dim: int, metric: str = "l2", n_trees: int = 10, leaf_size: int = 32, seed: int = 0):
        n_trees = check_positive_int(n_trees, "n_trees")
        leaf_size = check_positive_int(leaf_size, "leaf_size")
        seed = check_positive_int(seed, "seed", minimum=0)
        super().__init__(dim, metric, n_trees=n_trees, leaf_size=leaf_size, seed=seed)
        self.n_trees, self.leaf_size, self.seed = n_trees, leaf_size, seed
        self._forest: dict[str, np.ndarray] | None = None
        self._extra_next = GrowableArray((), np.int64)
        self._extra_row = GrowableArray((), np.int64)
        self._built_rows = 0  # n_rows when the forest was last built
        self.last_stats: dict[str, Any] = {}

    @property
    def _is_l2(self) -> bool:
        return self.spec.kind == "l2"

    # ------------------------------------------------------------------ build
    def _on_add(self, start: int, stop: int) -> None:
        if self._forest is None or stop > 2 * self._built_rows:
            self._build()
        else:
            self._insert(np.arange(start, stop, dtype=np.int64))

    def _build(self) -> None:
        """Grow every tree over the live rows, TREE_BATCH trees per parallel call, then lay them end to end."""
        rows = np.flatnonzero(self.live).astype(np.int32)
        seeds = np.random.SeedSequence(self.seed).generate_state(self.n_trees, dtype=np.uint64)
        parts = []
        for first in range(0, self.n_trees, TREE_BATCH):
            parts.extend(self._grow_batch(rows, seeds[first : first + TREE_BATCH]))
        self._forest = {name: trees.read_only(a) for name, a in _concatenate_trees(parts, len(rows)).items()}
        self._extra_next = GrowableArray((), np.int64)
        self._extra_row = GrowableArray((), np.int64)
        self._built_rows = self.n_rows

    def _grow_batch(self, rows: np.ndarray, seeds: np.ndarray) -> list[dict[str, Any]]:
        """Grow trees in parallel; a tree that outgrows the room guessed for its splits is grown again with
        twice the room (balanced splits need about 2n / leaf_size, so that is rare)."""
        n = len(rows)
        room = split_room(n, self.leaf_size)
        grown: dict[int, dict[str, Any]] = {}
        pending = np.arange(len(seeds))
        while len(pending):
            batch = seeds[pending]
            children = np.empty((len(batch), room, 2), dtype=np.int32)
            planes = np.empty((len(batch), room, self.dim), dtype=np.float32)
            offsets = np.empty((len(batch), room), dtype=np.float32)
            leaf_starts = np.empty((len(batch), n + 1), dtype=np.int64)
            shapes = np.empty((len(batch), 4), dtype=np.int64)
            leaf_rows = trees.grow_trees(
                self.vectors, rows, self._is_l2, self.leaf_size, batch, children, planes, offsets, leaf_starts,
                shapes,
            )
            for t, (root, n_internal, n_leaves, complete) in enumerate(shapes):
                if complete:
                    grown[int(pending[t])] = {
                        "root": int(root),
                        "children": children[t, :n_internal].copy(),
                        "planes": planes[t, :n_internal].copy(),
                        "offsets": offsets[t, :n_internal].copy(),
                        "leaf_starts": leaf_starts[t, : n_leaves + 1].copy(),
                        "leaf_rows": leaf_rows[t],
                    }
            pending = np.array([i for i in pending if i not in grown], dtype=np.int64)
            room = min(max(n - 1, 0), 2 * room)  # n - 1 always suffices: a split leaves points on both sides
        return [grown[i] for i in range(len(seeds))]

    def _insert(self, rows: np.ndarray) -> None:
        """Link new rows into the leaf they reach in every tree (Annoy-style insertion without re-splitting)."""
        f = self._forest
        if not f["extra_head"].flags.writeable:  # memory-mapped after load(mmap=True)
            f["extra_head"] = np.array(f["extra_head"])
        leaves = trees.route_rows(trees.read_only(self.vectors), rows, f["planes"], f["offsets"], f["children"],
                                  f["roots"])
        first_slot = len(self._extra_row)
        placeholder = np.full(leaves.size, -1, dtype=np.int64)
        self._extra_row.extend(placeholder)
        self._extra_next.extend(placeholder)
        trees.link_into_leaves(
            leaves, rows, f["extra_head"], self._extra_next.writable_view(), self._extra_row.writable_view(),
            first_slot,
        )

    # ------------------------------------------------------------------ search
    def _search_rows(self, queries: np.ndarray, k: int, mask: np.ndarray | None, search_k: int = -1):
        search_k = self._check_search_k(search_k, k)
        f = self._forest
        stored = len(f["leaf_rows"]) + len(self._extra_row)
        search_k = max(min(search_k, stored), 1)  # never more room than candidates exist
        if mask is None:
            mask = np.ones(self.n_rows, dtype=np.bool_)
        rows = np.empty((len(queries), k), dtype=np.int64)
        raw = np.empty((len(queries), k), dtype=np.float32)
        computed = np.zeros(len(queries), dtype=np.int64)
        ro = trees.read_only
        forest = (ro(self.vectors), mask, f["planes"], f["offsets"], f["children"], f["roots"], f["leaf_starts"],
                  f["leaf_rows"], ro(f["extra_head"]), ro(self._extra_next.view), ro(self._extra_row.view), search_k,
                  self._is_l2)
        if len(queries) < PARALLEL_FROM:  # a thread team costs more than it saves on a query or two
            trees.forest_search_range(queries, 0, len(queries), *forest, rows, raw, computed)
        else:
            trees.forest_search(queries, *forest, rows, raw, computed, numba.get_num_threads())
        total = int(computed.sum())
        self.last_stats = {"search_k": search_k, "distance_computations": total,
                           "mean_distance_computations": total / len(queries)}
        return rows, raw

    def _check_search_k(self, search_k: Any, k: int) -> int:
        if isinstance(search_k, bool) or not isinstance(search_k, numbers.Integral) or (
            search_k < 1 and search_k != -1
        ):
            raise InvalidParameterError(f"search_k must be -1 (automatic) or an integer >= 1, got {search_k!r}")
        return self.n_trees * k * SEARCH_K_FACTOR if search_k == -1 else int(search_k)

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        if self._forest is None:
            return {}
        return {**{name: self._forest[name] for name in _FOREST_ARRAYS},
                "extra_next": self._extra_next.view, "extra_row": self._extra_row.view}

    def _extra(self) -> dict[str, Any]:
        return {"built_rows": self._built_rows}

    def _restore(self, state: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        if "planes" not in state:
            return
        self._forest = {name: trees.read_only(state[name]) for name in _FOREST_ARRAYS}
        self._extra_next = GrowableArray((), np.int64, state["extra_next"])
        self._extra_row = GrowableArray((), np.int64, state["extra_row"])
        self._built_rows = int(extra["built_rows"])

    def memory_bytes(self) -> int:
        """Bytes held by the forest (vectors not included)."""
        if self._forest is None:
            return 0
        return sum(a.nbytes for a in self._forest.values()) + self._extra_next.view.nbytes * 2


def split_room(n: int, leaf_size: int) -> int:
    """Internal nodes to make room for in a tree over n points: leaves end up between half full and full."""
    return min(max(n - 1, 0), 4 * n // leaf_size + 64)


def _concatenate_trees(parts: list[dict[str, Any]], n_rows: int) -> dict[str, np.ndarray]:
    """Lay the trees end to end: node ids, leaf ids and leaf positions of tree t shift past trees 0..t-1."""
    roots, children, leaf_starts = [], [], []
    internal_before = leaves_before = 0
    for t, part in enumerate(parts):
        shift = lambda code: np.where(code >= 0, code + internal_before, code - leaves_before)  # noqa: E731
        roots.append(shift(np.int64(part["root"])))
        children.append(shift(part["children"]).astype(np.int32))
        leaf_starts.append(part["leaf_starts"][:-1] + t * n_rows)
        internal_before += len(part["children"])
        leaves_before += len(part["leaf_starts"]) - 1
    leaf_starts.append(np.array([len(parts) * n_rows]))
    return {
        "roots": np.array(roots, dtype=np.int32),
        "children": np.concatenate(children) if children else np.zeros((0, 2), np.int32),
        "leaf_starts": np.concatenate(leaf_starts).astype(np.int64),
        "leaf_rows": np.concatenate([p["leaf_rows"] for p in parts]).astype(np.int32),
        "planes": np.concatenate([p["planes"] for p in parts]),
        "offsets": np.concatenate([p["offsets"] for p in parts]),
        "extra_head": np.full(leaves_before, -1, dtype=np.int64),
    }
