"""LSHIndex: random-hyperplane locality-sensitive hashing (Charikar, "Similarity estimation techniques from
rounding algorithms", STOC 2002) with multi-probe querying (Lv et al., "Multi-probe LSH", VLDB 2007).

Hashing.  ``n_tables`` tables, each with ``n_bits`` random Gaussian hyperplanes; a point's code in a table is the
sign pattern of its projections (SimHash).  Two points at angle theta collide in a table with probability
(1 - theta / pi) ** n_bits: more bits make buckets purer and smaller, more tables give a near neighbour more
chances to share a bucket with the query.

Search.  Each table is probed at the query's own bucket and at the ``n_probes - 1`` next buckets in order of
how likely they hold its neighbours: those reached by flipping the bits whose hyperplanes pass closest to the
query (``kernels/hashing.py``).  The rows of every probed bucket of every table are deduplicated and re-ranked by
exact distance, so ``last_stats["distance_computations"]`` is the real cost of a query.

Metrics.  cosine: SimHash is made for angles.  dot: the hash sees directions only; the re-ranking is by the
exact inner product.  l2: SimHash of the data centred on its mean (the mean of the first batch added, kept
fixed afterwards so codes stay valid; ``compact()`` recomputes it).  Chosen over p-stable LSH (Datar et al. 2004)
because its codes need no bucket width tied to the scale of the data, and nearby points around the centre have
nearby directions; the exact re-ranking makes the answer a true l2 ranking of the candidates.

Incremental add.  New rows are hashed at once and kept "pending" (matched against the probed codes by a scan);
the sorted bucket arrays are rebuilt when the pending rows exceed 1/8 of the sorted ones, so the sorting work
is amortised.  Removed rows stay in their buckets, skipped through the live mask.

``choose_lsh_params`` picks (n_tables, n_bits, n_probes) for a recall target by measuring on held-out queries.
"""

from __future__ import annotations

import numbers
from typing import Any

import numba
import numpy as np

from .._validation import as_matrix, check_k, check_positive_int
from ..errors import InvalidParameterError
from ..kernels import hashing
from ..kernels.trees import read_only
from .base import GrowableArray, Index

MAX_BITS = 62  # codes are int64; two bits of room keep every shift in the kernels well defined
MAX_PROBES = 1 << 16  # buckets probed per table at most (the probe heap is sized by it)
REBUILD_FRACTION = 8  # re-sort the buckets when pending rows exceed sorted rows / REBUILD_FRACTION ...
REBUILD_MIN = 1024  # ... and this many
PARALLEL_FROM = 4  # batches smaller than this are searched on the calling thread
_BUCKET_ARRAYS = ("bucket_keys", "table_first_bucket", "bucket_starts", "bucket_rows")


class LSHIndex(Index):
    type_name = "lsh"
    query_defaults: dict = {"n_probes": 8}

    def __init__(self, dim: int, metric: str = "cosine", n_tables: int = 8, n_bits: int = 12, seed: int = 0):
        n_tables = check_positive_int(n_tables, "n_tables")
        n_bits = check_positive_int(n_bits, "n_bits")
        if n_bits > MAX_BITS:
            raise InvalidParameterError(f"n_bits must be <= {MAX_BITS} (codes are 64-bit integers), got {n_bits}")
        seed = check_positive_int(seed, "seed", minimum=0)
        super().__init__(dim, metric, n_tables=n_tables, n_bits=n_bits, seed=seed)
        self.n_tables, self.n_bits, self.seed = n_tables, n_bits, seed
        rng = np.random.default_rng(seed)
        planes = rng.standard_normal((n_tables * n_bits, self.dim), dtype=np.float32)
        # unit normals: a projection is then the distance to the plane, which multi-probe ranks flips by
        self._planes = planes / np.linalg.norm(planes, axis=1, keepdims=True)
        self._center: np.ndarray | None = None
        self._codes = GrowableArray((n_tables,), np.int64)
        self._buckets = _sorted_buckets(np.zeros((0, n_tables), np.int64))
        self._n_sorted = 0  # rows [0, n_sorted) are in the bucket arrays, the rest are pending
        self.last_stats: dict[str, Any] = {}

    # ------------------------------------------------------------------ hashing
    def _project(self, x: np.ndarray) -> np.ndarray:
        if self.spec.kind == "l2":
            x = x - self._center
        return x @ self._planes.T

    def _on_add(self, start: int, stop: int) -> None:
        if self._center is None:
            fresh = self.vectors[start:stop]
            self._center = fresh.mean(axis=0) if self.spec.kind == "l2" else np.zeros(self.dim, np.float32)
            self._center = self._center.astype(np.float32)
        projections = self._project(self.vectors[start:stop])
        self._codes.extend(hashing.sign_codes(projections, self.n_tables, self.n_bits))
        if stop - self._n_sorted > max(REBUILD_MIN, self._n_sorted // REBUILD_FRACTION):
            self._buckets = _sorted_buckets(self._codes.view)
            self._n_sorted = stop

    # ------------------------------------------------------------------ search
    def _search_rows(self, queries: np.ndarray, k: int, mask: np.ndarray | None, n_probes: int = 8):
        n_probes = self._check_n_probes(n_probes)
        if mask is None:
            mask = np.ones(self.n_rows, dtype=np.bool_)
        projections = self._project(queries)
        rows = np.empty((len(queries), k), dtype=np.int64)
        raw = np.empty((len(queries), k), dtype=np.float32)
        computed = np.zeros(len(queries), dtype=np.int64)
        b = self._buckets
        tables = (self.n_tables, self.n_bits, n_probes, read_only(self.vectors), mask, b["bucket_keys"],
                  b["table_first_bucket"], b["bucket_starts"], b["bucket_rows"],
                  read_only(self._codes.view[self._n_sorted :]), self._n_sorted, self.spec.kind == "l2", rows, raw,
                  computed)
        if len(queries) < PARALLEL_FROM:
            hashing.lsh_search_range(queries, projections, 0, len(queries), *tables)
        else:
            hashing.lsh_search(queries, projections, *tables, numba.get_num_threads())
        total = int(computed.sum())
        self.last_stats = {"n_probes": n_probes, "distance_computations": total,
                           "mean_distance_computations": total / len(queries)}
        return rows, raw

    def _check_n_probes(self, n_probes: Any) -> int:
        if isinstance(n_probes, bool) or not isinstance(n_probes, numbers.Integral) or not 1 <= n_probes <= MAX_PROBES:
            raise InvalidParameterError(f"n_probes must be an integer in [1, {MAX_PROBES}], got {n_probes!r}")
        return min(int(n_probes), 1 << self.n_bits)  # more than every bucket of a table is every bucket

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        state = {"planes": self._planes, "codes": self._codes.view, **self._buckets}
        if self._center is not None:
            state["center"] = self._center
        return state

    def _extra(self) -> dict[str, Any]:
        return {"n_sorted": self._n_sorted}

    def _restore(self, state: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self._planes = state["planes"]
        self._center = state.get("center")
        self._codes = GrowableArray((self.n_tables,), np.int64, state["codes"])
        self._buckets = {name: read_only(state[name]) for name in _BUCKET_ARRAYS}
        self._n_sorted = int(extra["n_sorted"])

    def memory_bytes(self) -> int:
        """Bytes held by the hash tables (vectors not included)."""
        return self._planes.nbytes + self._codes.view.nbytes + sum(a.nbytes for a in self._buckets.values())


def _sorted_buckets(codes: np.ndarray) -> dict[str, np.ndarray]:
    """The flat bucket arrays of ``kernels/hashing.py`` for rows [0, len(codes)), table after table (read-only:
    see ``kernels.trees.read_only``)."""
    n, n_tables = codes.shape
    keys, starts, rows, first_bucket = [], [], [], [0]
    for t in range(n_tables):
        order = np.argsort(codes[:, t], kind="stable")
        sorted_codes = codes[order, t]
        new_bucket = np.flatnonzero(np.diff(sorted_codes)) + 1 if n else np.zeros(0, np.int64)
        bucket_start = np.concatenate([[0], new_bucket]) if n else new_bucket
        keys.append(sorted_codes[bucket_start])
        starts.append(bucket_start + t * n)
        rows.append(order)
        first_bucket.append(first_bucket[-1] + len(bucket_start))
    buckets = {
        "bucket_keys": np.concatenate(keys).astype(np.int64),
        "table_first_bucket": np.array(first_bucket, dtype=np.int64),
        "bucket_starts": np.concatenate([*starts, [n_tables * n]]).astype(np.int64),
        "bucket_rows": np.concatenate(rows).astype(np.int32),
    }
    return {name: read_only(array) for name, array in buckets.items()}


# ---------------------------------------------------------------------------------------------- parameters
TABLE_CHOICES = (1, 2, 4, 8, 16, 32)
PROBE_CHOICES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
PRUNE_ABOVE = 2.0  # settings costlier than this times the cheapest one that met the target are not explored


def choose_lsh_params(vectors: Any, target_recall: float, k: int = 10, *, metric: str = "cosine",
                      sample: int = 200, max_tables: int = 32, seed: int = 0) -> dict[str, Any]:
    """Pick ``n_tables``, ``n_bits`` and ``n_probes`` that reach ``target_recall`` (recall@k) at the least cost.

    Like datasketch's ``lsh.py`` this turns a quality target into parameters, but it measures instead of
    integrating collision probabilities.  ``2 * sample`` rows are held out as queries and the rest indexed:
      1. on the first half, every (n_bits, n_tables) of a grid gets the fewest n_probes whose mean recall
         reaches the target; cost = distance computations + bucket look-ups (n_tables * n_probes);
      2. the settings are then checked on the second half, cheapest first, and the first whose recall there,
         minus two standard errors, still reaches the target is returned.  Step 2 is what makes the promise hold
         on other queries: the cheapest setting of step 1 is the luckiest as often as the best.
    Bucket sizes depend on n, so pass the vectors you will index (or a sample of the same size).

    Returns {"n_tables", "n_bits", "n_probes", "recall" (on the second half), "distance_computations",
    "met_target"}; when no setting qualifies, the one with the best recall and ``met_target=False``.
    """
    from .flat import FlatIndex

    if isinstance(target_recall, bool) or not isinstance(target_recall, numbers.Real) or not 0 < target_recall <= 1:
        raise InvalidParameterError(f"target_recall must be a number in (0, 1], got {target_recall!r}")
    k = check_k(k)
    sample = check_positive_int(sample, "sample")
    max_tables = check_positive_int(max_tables, "max_tables")
    x = as_matrix(vectors, np.asarray(vectors).shape[-1])
    if len(x) < 4 * sample:
        raise InvalidParameterError(f"choose_lsh_params needs at least 4 * sample = {4 * sample} vectors, got {len(x)}")
    held_out = np.random.default_rng(seed).choice(len(x), 2 * sample, replace=False)
    base = np.delete(x, held_out, axis=0)
    exact = FlatIndex(x.shape[1], metric)
    exact.add(base)
    choose_q, check_q = x[held_out[:sample]], x[held_out[sample:]]
    choose_truth, check_truth = exact.search(choose_q, k).ids, exact.search(check_q, k).ids

    def build(n_tables: int, n_bits: int) -> LSHIndex:
        index = LSHIndex(x.shape[1], metric, n_tables=n_tables, n_bits=n_bits, seed=seed)
        index.add(base)
        return index

    settings: list[dict[str, Any]] = []
    cheapest = np.inf  # cost of the cheapest setting that met the target so far
    log_n = int(np.log2(len(base)))
    # from ~1/2 row a bucket down to ~256: small buckets first, they are cheap to measure and set ``cheapest``
    for n_bits in range(min(MAX_BITS, log_n + 1), max(1, log_n - 8) - 1, -1):
        for n_tables in (t for t in TABLE_CHOICES if t <= max_tables):
            index = build(n_tables, n_bits)
            for n_probes in (p for p in PROBE_CHOICES if p <= 1 << n_bits):
                found = _measure(index, choose_q, choose_truth, k, n_probes)
                settings.append(found)
                if found["recall"] >= target_recall:
                    cheapest = min(cheapest, found["cost"])
                if found["recall"] >= target_recall or found["cost"] > PRUNE_ABOVE * cheapest:
                    break  # more probes only cost more
            if settings[-1]["n_probes"] == 1 and settings[-1]["cost"] > PRUNE_ABOVE * cheapest:
                break  # and so do more tables
    meeting = sorted((s for s in settings if s["recall"] >= target_recall), key=lambda s: s["cost"])
    for setting in meeting:
        checked = _measure(build(setting["n_tables"], setting["n_bits"]), check_q, check_truth, k, setting["n_probes"])
        if checked["lower_bound"] >= target_recall:
            return _summary(checked, met=True)
    return _summary(max(settings, key=lambda s: s["recall"]), met=False)


def _measure(index: LSHIndex, queries: np.ndarray, truth: np.ndarray, k: int, n_probes: int) -> dict[str, Any]:
    """Recall@k of one setting on queries with known answers (mean, and mean - 2 standard errors), and its cost."""
    ids = index.search(queries, k, n_probes=n_probes).ids
    hits = ((ids[:, :, None] == truth[:, None, :]) & (truth[:, None, :] >= 0)).any(axis=2).sum(axis=1)
    per_query = hits / np.maximum((truth >= 0).sum(axis=1), 1)
    computed = index.last_stats["mean_distance_computations"]
    return {
        "n_tables": index.n_tables, "n_bits": index.n_bits, "n_probes": n_probes,
        "recall": float(per_query.mean()),
        "lower_bound": float(per_query.mean() - 2 * per_query.std(ddof=1) / np.sqrt(len(per_query))),
        "distance_computations": computed,
        "cost": computed + index.n_tables * n_probes,
    }


def _summary(setting: dict[str, Any], met: bool) -> dict[str, Any]:
    keys = ("n_tables", "n_bits", "n_probes", "recall", "distance_computations")
    return {**{key: setting[key] for key in keys}, "met_target": met}
