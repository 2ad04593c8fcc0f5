"""Scan of inverted lists: the inner loop of IVF search (Jégou et al. 2011, Sivic & Zisserman 2003).

The lists live in one buffer: list ``p`` is the slots ``[list_start[p], list_start[p] + list_size[p])`` of
``slot_vectors`` (one vector per slot, contiguous) and ``slot_rows`` (the index row each slot holds).  A query
scans its probed lists one after the other, computing the raw distance of every slot and keeping the k best in a
max-heap (the worst of the k at the root, so a candidate is tested with a single comparison).  Queries are
independent: ``prange`` runs them in parallel.
"""

from __future__ import annotations

import numba
import numpy as np

#: fastmath without "no infs / no NaNs": the heaps start full of +inf and compare against it
FASTMATH = {"reassoc", "contract", "arcp", "nsz"}


@numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
def scan_lists(queries, probes, list_start, list_size, slot_vectors, slot_rows, row_mask, k, l2):
    """k nearest slots of each query among its probed lists.

    queries (nq, d) float32; probes (nq, nprobe) int64 list numbers (-1 = none); ``row_mask`` a bool per index
    row (False = skip: tombstone or filtered out), or an empty array for "every row"; ``l2`` True for raw =
    ||q - x||^2, False for raw = -<q, x>.  Returns (rows (nq, k) int64 padded -1, raw (nq, k) float32 padded
    +inf), each row sorted by raw ascending."""
    nq = queries.shape[0]
    out_rows = np.full((nq, k), -1, dtype=np.int64)
    out_raw = np.full((nq, k), np.inf, dtype=np.float32)
    use_mask = row_mask.shape[0] > 0
    for qi in numba.prange(nq):
        query = queries[qi]
        heap_raw = out_raw[qi]
        heap_rows = out_rows[qi]
        for p in range(probes.shape[1]):
            lst = probes[qi, p]
            if lst < 0:
                continue
            first = list_start[lst]
            for slot in range(first, first + list_size[lst]):
                row = slot_rows[slot]
                if use_mask and not row_mask[row]:
                    continue
                if l2:
                    raw = _sq_l2(query, slot_vectors[slot])
                else:
                    raw = -_dot(query, slot_vectors[slot])
                if raw < heap_raw[0]:
                    _replace_top(heap_raw, heap_rows, raw, row)
        _sort_heap(heap_raw, heap_rows)
    return out_rows, out_raw


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def _sq_l2(a, b):
    acc = np.float32(0.0)
    for j in range(a.shape[0]):
        diff = a[j] - b[j]
        acc += diff * diff
    return acc


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def _dot(a, b):
    acc = np.float32(0.0)
    for j in range(a.shape[0]):
        acc += a[j] * b[j]
    return acc


@numba.njit(cache=True)
def _replace_top(heap_raw, heap_rows, raw, row):
    """Put (raw, row) in place of the root of the max-heap, then sift it down to where it belongs."""
    k = heap_raw.shape[0]
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= k:
            break
        if child + 1 < k and heap_raw[child + 1] > heap_raw[child]:
            child += 1
        if heap_raw[child] <= raw:
            break
        heap_raw[pos] = heap_raw[child]
        heap_rows[pos] = heap_rows[child]
        pos = child
    heap_raw[pos] = raw
    heap_rows[pos] = row


@numba.njit(cache=True)
def _sort_heap(heap_raw, heap_rows):
    """Heap order -> ascending raw distance (ties by row, so results do not depend on the scan order)."""
    order = np.argsort(heap_raw, kind="mergesort")
    raw = heap_raw[order]
    rows = heap_rows[order]
    start = 0
    while start < raw.shape[0]:
        stop = start + 1
        while stop < raw.shape[0] and raw[stop] == raw[start]:
            stop += 1
        if stop - start > 1:
            rows[start:stop] = np.sort(rows[start:stop])
        start = stop
    heap_raw[:] = raw
    heap_rows[:] = rows
