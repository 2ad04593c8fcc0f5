"""Kernels of random-hyperplane LSH with multi-probe (``index/lsh.py``).

Codes.  Table t has ``n_bits`` random hyperplanes; bit b of a point's code in table t is 1 when its projection on
plane ``t * n_bits + b`` is positive (Charikar's SimHash: two vectors at angle theta agree on a bit with
probability 1 - theta / pi).  Projections are one BLAS product, done by the caller; the kernels pack and probe.

Buckets.  Per table the rows are sorted by code; the flat arrays are
  * ``bucket_keys`` (n_buckets,) int64: the distinct codes, table after table, ascending within a table;
  * ``table_first_bucket`` (n_tables + 1,): the buckets of table t are [table_first_bucket[t], ...[t + 1]);
  * ``bucket_starts`` (n_buckets + 1,) and ``bucket_rows``: bucket j holds ``bucket_rows[bucket_starts[j]:
    bucket_starts[j + 1]]``.
Rows added since the last sort ("pending") keep only their codes, ``pending_codes``; a query matches them
against its probed codes directly.

Multi-probe (Lv, Josephson, Wang, Charikar, Li, "Multi-probe LSH", VLDB 2007).  Besides its own bucket, a query
probes the buckets whose codes differ in the bits it is least sure of.  Flipping bit b costs the squared distance
of the query to plane b (its squared projection: the index draws unit normals), and a set of flips costs the sum.
The sets are produced in ascending cost, without enumerating them all, by the paper's heap: sort the bit costs,
start from {cheapest}, and each set popped pushes its "shift" (its largest element replaced by the next one) and
its "expand" (the next element added); every set is generated exactly once.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .heaps import heap_pop, heap_push, heap_sort
from .trees import chunk_bounds, ensure_room, new_seen_bits, rerank


@njit(cache=True)
def sign_codes(projections, n_tables, n_bits):
    """(n, n_tables) int64 codes from (n, n_tables * n_bits) projections: bit b of table t set when
    ``projections[:, t * n_bits + b] > 0``.  (Serial: a few ns a bit, far below the BLAS product before it.)"""
    n = projections.shape[0]
    codes = np.zeros((n, n_tables), dtype=np.int64)
    for i in range(n):
        for t in range(n_tables):
            code = 0
            for b in range(n_bits):
                if projections[i, t * n_bits + b] > 0:
                    code |= 1 << b
            codes[i, t] = code
    return codes


@njit(cache=True)
def _highest_bit(mask) -> int:
    top = -1
    while mask:
        mask >>= 1
        top += 1
    return top


@njit(cache=True)
def probe_masks(projection, n_probes, out) -> int:
    """Flip masks of the ``n_probes`` cheapest buckets to probe, cheapest first, into ``out``; returns how many
    (at most 2 ** n_bits).  ``out[0] == 0`` is the query's own bucket.  See the module docstring."""
    n_bits = projection.shape[0]
    sorted_cost = projection.astype(np.float64) ** 2
    by_cost = np.arange(n_bits)  # rank r -> bit by_cost[r]; the heap works on sets of ranks
    heap_sort(sorted_cost, by_cost)
    out[0] = 0
    count = 1
    capacity = 2 * n_probes + 2  # each set popped pushes at most two
    scores = np.empty(capacity, dtype=np.float64)
    sets = np.empty(capacity, dtype=np.int64)
    size = 0
    if n_bits > 0:
        size = heap_push(scores, sets, size, -sorted_cost[0], np.int64(1))  # negated: a max-heap pops the cheapest
    while count < n_probes and size > 0:
        neg_score, ranks, size = heap_pop(scores, sets, size)
        flips = 0
        for r in range(n_bits):
            if ranks >> r & 1:
                flips |= 1 << by_cost[r]
        out[count] = flips
        count += 1
        top = _highest_bit(ranks)
        if top + 1 < n_bits:
            nxt = np.int64(1) << (top + 1)
            size = heap_push(scores, sets, size, neg_score - sorted_cost[top + 1], ranks | nxt)  # expand
            shifted = (ranks ^ (np.int64(1) << top)) | nxt
            size = heap_push(scores, sets, size, neg_score + sorted_cost[top] - sorted_cost[top + 1], shifted)
    return count


@njit(cache=True)
def find_bucket(bucket_keys, first, last, code) -> int:
    """Index of ``code`` among bucket_keys[first:last] (sorted), or -1."""
    lo, hi = first, last
    while lo < hi:
        mid = (lo + hi) // 2
        if bucket_keys[mid] < code:
            lo = mid + 1
        else:
            hi = mid
    if lo < last and bucket_keys[lo] == code:
        return lo
    return -1


@njit(cache=True)
def _probe_codes(projection, n_tables, n_bits, n_probes, codes, flips):
    """codes[t, :count] = the buckets table t probes for this query, sorted; returns count (same for all)."""
    count = 0
    for t in range(n_tables):
        own = 0
        for b in range(n_bits):
            if projection[t * n_bits + b] > 0:
                own |= 1 << b
        count = probe_masks(projection[t * n_bits : (t + 1) * n_bits], n_probes, flips)
        for j in range(count):
            codes[t, j] = own ^ flips[j]
        heap_sort(codes[t, :count], flips[:count])  # flips only ride along: they are not needed any more
    return count


@njit(cache=True)
def gather_candidates(projection, n_tables, n_bits, n_probes, mask, bucket_keys, table_first_bucket,
                      bucket_starts, bucket_rows, pending_codes, first_pending_row, codes, flips, candidates):
    """Rows of every probed bucket of every table (masked rows left out, repeats kept), and the pending rows
    whose code in some table is one of that table's probed codes.  Returns (candidates, count), the buffer
    grown if needed."""
    count = _probe_codes(projection, n_tables, n_bits, n_probes, codes, flips)
    found = 0
    for t in range(n_tables):
        first, last = table_first_bucket[t], table_first_bucket[t + 1]
        for j in range(count):
            bucket = find_bucket(bucket_keys, first, last, codes[t, j])
            if bucket < 0:
                continue
            candidates = ensure_room(candidates, found, bucket_starts[bucket + 1] - bucket_starts[bucket])
            for pos in range(bucket_starts[bucket], bucket_starts[bucket + 1]):
                if mask[bucket_rows[pos]]:
                    candidates[found] = bucket_rows[pos]
                    found += 1
    for p in range(pending_codes.shape[0]):
        row = first_pending_row + p
        if not mask[row]:
            continue
        for t in range(n_tables):
            if find_bucket(codes[t], 0, count, pending_codes[p, t]) >= 0:
                candidates = ensure_room(candidates, found, 1)
                candidates[found] = row
                found += 1
                break
    return candidates, found


@njit(cache=True)
def lsh_search_range(queries, projections, first, last, n_tables, n_bits, n_probes, vectors, mask, bucket_keys,
                     table_first_bucket, bucket_starts, bucket_rows, pending_codes, first_pending_row, is_l2,
                     out_rows, out_raw, n_computed) -> None:
    """Search queries [first, last) one after the other: gather the probed buckets' rows, re-rank exactly."""
    codes = np.empty((n_tables, n_probes), dtype=np.int64)
    flips = np.empty(n_probes, dtype=np.int64)
    candidates = np.empty(1024, dtype=np.int64)
    seen = new_seen_bits(vectors.shape[0])
    for qi in range(first, last):
        candidates, found = gather_candidates(
            projections[qi], n_tables, n_bits, n_probes, mask, bucket_keys, table_first_bucket, bucket_starts,
            bucket_rows, pending_codes, first_pending_row, codes, flips, candidates,
        )
        n_computed[qi] = rerank(queries[qi], candidates[:found], vectors, is_l2, seen, out_raw[qi], out_rows[qi])


@njit(cache=True, parallel=True)
def lsh_search(queries, projections, n_tables, n_bits, n_probes, vectors, mask, bucket_keys, table_first_bucket,
               bucket_starts, bucket_rows, pending_codes, first_pending_row, is_l2, out_rows, out_raw, n_computed,
               n_threads) -> None:
    """``lsh_search_range`` over a batch, one contiguous chunk of queries per thread."""
    n_chunks = min(queries.shape[0], n_threads)
    for chunk in prange(n_chunks):
        first, last = chunk_bounds(queries.shape[0], n_chunks, chunk)
        lsh_search_range(queries, projections, first, last, n_tables, n_bits, n_probes, vectors, mask, bucket_keys,
                         table_first_bucket, bucket_starts, bucket_rows, pending_codes, first_pending_row, is_l2,
                         out_rows, out_raw, n_computed)
