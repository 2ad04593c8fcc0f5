"""IVF search over inverted lists (Sivic & Zisserman 2003; Jégou, Douze & Schmid 2011) as Numba kernels.

Two steps per query:
  1. coarse: rank the centroids, ||q - c||^2 = ||c||^2 - 2<q, c> (+ ||q||^2, the same for every c), and keep
     the ``nprobe`` nearest;
  2. scan: compute the raw distance of every slot of those lists and keep the k best in a max-heap (the worst
     of the k at the root, so a candidate costs one comparison unless it belongs in the answer).

The lists live in one buffer: list ``p`` is the slots ``[list_start[p], list_start[p] + list_size[p])`` of
``slot_rows`` (the index row each slot holds); a slot's vector is ``vectors[row]``.  The scan reads the vectors
through the rows, so the index keeps no second copy of them: its rows are kept in list order (``IVFIndex`` sorts
each added batch by list, a collection orders its shared store by the IVF lists), which makes the reads of one
list consecutive in memory and the indirection as fast as a copy (measured: within 5-10% at 1M x 128, against
3.5x slower for rows in random order).

``search_lists`` runs both steps query by query in one compiled call: on one thread for a small job (one query,
a handful), since waking a thread pool costs more than it does (milliseconds on a busy machine); with ``prange``
over the queries for a batch.
"""

from __future__ import annotations

import numba
import numpy as np

from .answers import finish_answer, start_answer
from .heaps import heap_sort, offer
from .prefetch import AHEAD, prefetch_row

#: fastmath without "no infs / no NaNs": the heaps start full of +inf and compare against it
FASTMATH = {"reassoc", "contract", "arcp", "nsz"}
#: below this many multiply-adds (about half a millisecond on one core) a search runs on one thread
SERIAL_WORK = 1 << 22


def search_lists(queries, centroids, centroid_sq_norms, nprobe, list_start, list_size, vectors, slot_rows,
                 row_mask, k, l2):
    """k nearest slots of each query among its ``nprobe`` nearest lists.

    queries (nq, d) float32; centroids (nlist, d) with their squared norms; ``row_mask`` a bool per index row
    (False = skip: tombstone or filtered out), or an empty array for "every row"; ``l2`` True for raw =
    ||q - x||^2, False for raw = -<q, x>.  Returns (rows (nq, k) int64 padded -1, raw (nq, k) float32 padded
    +inf), each row sorted by raw ascending, ties by row.

    Both steps run in one compiled loop over the queries, with no BLAS call: interleaving BLAS's thread pool
    with Numba's costs more than BLAS saves on the coarse step (the two pools fight for the cores)."""
    nq, dim = queries.shape
    nprobe = min(nprobe, len(centroids))
    scanned = nprobe * len(slot_rows) / max(len(centroids), 1)
    small = nq * dim * (len(centroids) + scanned) < SERIAL_WORK
    driver = _search_serial if small else _search_parallel
    return driver(queries, centroids, centroid_sq_norms, nprobe, list_start, list_size, vectors, slot_rows,
                  row_mask, k, l2)


@numba.njit(cache=True, nogil=True)  # nogil: no shared scratch, so searches of other threads run beside it
def _search_serial(queries, centroids, centroid_sq_norms, nprobe, list_start, list_size, vectors, slot_rows,
                   row_mask, k, l2):
    out_rows = np.full((queries.shape[0], k), -1, dtype=np.int64)
    out_raw = np.full((queries.shape[0], k), np.inf, dtype=np.float32)
    for qi in range(queries.shape[0]):
        _search_one(queries[qi], centroids, centroid_sq_norms, nprobe, list_start, list_size, vectors,
                    slot_rows, row_mask, l2, out_rows[qi], out_raw[qi])
    return out_rows, out_raw


@numba.njit(cache=True, parallel=True, nogil=True)
def _search_parallel(queries, centroids, centroid_sq_norms, nprobe, list_start, list_size, vectors, slot_rows,
                     row_mask, k, l2):
    out_rows = np.full((queries.shape[0], k), -1, dtype=np.int64)
    out_raw = np.full((queries.shape[0], k), np.inf, dtype=np.float32)
    for qi in numba.prange(queries.shape[0]):
        _search_one(queries[qi], centroids, centroid_sq_norms, nprobe, list_start, list_size, vectors,
                    slot_rows, row_mask, l2, out_rows[qi], out_raw[qi])
    return out_rows, out_raw


@numba.njit(cache=True)
def _search_one(query, centroids, centroid_sq_norms, nprobe, list_start, list_size, vectors, slot_rows,
                row_mask, l2, heap_rows, heap_raw):
    probes = np.full(nprobe, -1, dtype=np.int64)
    probe_scores = np.full(nprobe, np.inf, dtype=np.float32)
    _rank_centroids(query, centroids, centroid_sq_norms, probes, probe_scores)
    heap_sort(probe_scores, probes)  # nearest list first: the k-best heap tightens early
    _scan_one(query, probes, list_start, list_size, vectors, slot_rows, row_mask, l2, heap_rows, heap_raw)


@numba.njit(cache=True, fastmath=FASTMATH)
def _rank_centroids(query, centroids, centroid_sq_norms, heap_lists, heap_scores):
    """The nprobe smallest ||c||^2 - 2<q, c> into the max-heap (heap_lists, heap_scores).  Four centroids per
    pass over the query: each query coordinate is loaded once for four products (the BLAS trick, in small)."""
    n_lists, dim = centroids.shape
    c = 0
    while c + 4 <= n_lists:
        dot0 = dot1 = dot2 = dot3 = np.float32(0.0)
        for j in range(dim):
            qj = query[j]
            dot0 += qj * centroids[c, j]
            dot1 += qj * centroids[c + 1, j]
            dot2 += qj * centroids[c + 2, j]
            dot3 += qj * centroids[c + 3, j]
        offer(heap_scores, heap_lists, centroid_sq_norms[c] - np.float32(2.0) * dot0, c)
        offer(heap_scores, heap_lists, centroid_sq_norms[c + 1] - np.float32(2.0) * dot1, c + 1)
        offer(heap_scores, heap_lists, centroid_sq_norms[c + 2] - np.float32(2.0) * dot2, c + 2)
        offer(heap_scores, heap_lists, centroid_sq_norms[c + 3] - np.float32(2.0) * dot3, c + 3)
        c += 4
    for c in range(c, n_lists):
        offer(heap_scores, heap_lists, centroid_sq_norms[c] - np.float32(2.0) * _dot(query, centroids[c]), c)


@numba.njit(cache=True, fastmath=FASTMATH)
def _scan_one(query, probes, list_start, list_size, vectors, slot_rows, row_mask, l2, heap_rows, heap_raw):
    """One query: scan its probed lists into the max-heap (heap_rows, heap_raw), then sort the heap.  Without a
    mask, four slots at a time: each query coordinate is loaded once for four rows."""
    use_mask = row_mask.shape[0] > 0
    for p in range(probes.shape[0]):
        lst = probes[p]
        if lst < 0:
            continue
        slot = list_start[lst]
        end = slot + list_size[lst]
        if p + 1 < probes.shape[0] and probes[p + 1] >= 0:  # the next list's first rows, while this one is read
            following = list_start[probes[p + 1]]
            for ahead in range(following, following + min(AHEAD, list_size[probes[p + 1]])):
                prefetch_row(vectors, slot_rows[ahead])
        if not use_mask:
            while slot + 4 <= end:
                for ahead in range(slot + AHEAD, min(slot + AHEAD + 4, end)):
                    prefetch_row(vectors, slot_rows[ahead])
                r0, r1, r2, r3 = slot_rows[slot], slot_rows[slot + 1], slot_rows[slot + 2], slot_rows[slot + 3]
                raw0, raw1, raw2, raw3 = _four_raw(query, vectors, r0, r1, r2, r3, l2)
                offer(heap_raw, heap_rows, raw0, r0)  # offer costs one comparison for a row that loses
                offer(heap_raw, heap_rows, raw1, r1)
                offer(heap_raw, heap_rows, raw2, r2)
                offer(heap_raw, heap_rows, raw3, r3)
                slot += 4
        for slot in range(slot, end):
            row = slot_rows[slot]
            if use_mask and not row_mask[row]:
                continue
            if slot + AHEAD < end:
                prefetch_row(vectors, slot_rows[slot + AHEAD])
            if l2:
                raw = _sq_l2(query, vectors[row])
            else:
                raw = -_dot(query, vectors[row])
            offer(heap_raw, heap_rows, raw, row)
    heap_sort(heap_raw, heap_rows)


@numba.njit(cache=True, fastmath=FASTMATH)
def _four_raw(query, vectors, r0, r1, r2, r3, l2):
    """Raw distances of four rows to the query (||q - x||^2 under ``l2``, else -<q, x>)."""
    a0 = a1 = a2 = a3 = np.float32(0.0)
    if l2:
        for j in range(query.shape[0]):
            qj = query[j]
            d0, d1, d2, d3 = qj - vectors[r0, j], qj - vectors[r1, j], qj - vectors[r2, j], qj - vectors[r3, j]
            a0 += d0 * d0
            a1 += d1 * d1
            a2 += d2 * d2
            a3 += d3 * d3
        return a0, a1, a2, a3
    for j in range(query.shape[0]):
        qj = query[j]
        a0 += qj * vectors[r0, j]
        a1 += qj * vectors[r1, j]
        a2 += qj * vectors[r2, j]
        a3 += qj * vectors[r3, j]
    return -a0, -a1, -a2, -a3


@numba.njit(cache=True, nogil=True)
def answer_one(q, centroids, centroid_sq_norms, nprobe, list_start, list_size, vectors, slot_rows, labels, k, l2,
               normalize, final):
    """One query (q: (1, d)), no mask, answered as the user gets it: the labels of its k nearest in the
    ``nprobe`` nearest lists and their distances as ``metrics.finalize`` makes them (``final``: one of
    kernels/answers.py's codes), the query normalised here under ``normalize``.  Fewer than k hits gives
    ids[0, k-1] = -1 (the caller probes wider); a query that is not searched gives ids[0, 0] = ZERO_QUERY or
    NON_FINITE_QUERY (the caller's general path raises the error)."""
    query, ids, distances, rows, raw = start_answer(q, k, normalize)
    if ids[0, 0] < -1:  # not to be searched
        return ids, distances
    _search_one(query, centroids, centroid_sq_norms, nprobe, list_start, list_size, vectors, slot_rows,
                np.empty(0, dtype=np.bool_), l2, rows, raw)
    finish_answer(rows, raw, labels, final, ids, distances)
    return ids, distances


# ---------------------------------------------------------------------------------------------- distances
# (no inline="always": a Numba-inlined body takes its caller's flags, and without fastmath the sum would not be
# vectorised; LLVM inlines these anyway, keeping their own fastmath)
@numba.njit(cache=True, fastmath=FASTMATH)
def _sq_l2(a, b):
    acc = np.float32(0.0)
    for j in range(a.shape[0]):
        diff = a[j] - b[j]
        acc += diff * diff
    return acc


@numba.njit(cache=True, fastmath=FASTMATH)
def _dot(a, b):
    acc = np.float32(0.0)
    for j in range(a.shape[0]):
        acc += a[j] * b[j]
    return acc
