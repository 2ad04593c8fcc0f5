"""Exact top-k by blocks: BLAS matmul for the scores, a Numba bounded max-heap per query for the selection.

Memory stays bounded whatever the sizes: at most ``query_block x base_block`` scores live at once
(256 x 65,536 float32 = 64 MiB), so 1M x 512 vectors are searched without a (q, n) matrix.  Each query keeps
its k best so far in a max-heap whose root is the worst of them: a score that does not beat the root (nearly
all of them, after the first few thousand) costs one comparison, which is why this beats ``argpartition``
(which reorders every block row) several times over.
"""

from __future__ import annotations

import numba
import numpy as np

from .heaps import heap_sort, offer, sift_down
from .prefetch import AHEAD, prefetch_row

QUERY_BLOCK = 256
BASE_BLOCK = 65_536


def _push_block(raw, offset, row_mask, use_mask, heap_keys, heap_rows):
    """Offer every score of ``raw`` (q, b), whose column j is row ``offset + j``, to each query's heap (q, k)."""
    n_queries, n_cols = raw.shape
    k = heap_keys.shape[1]
    for qi in numba.prange(n_queries):
        keys = heap_keys[qi]
        rows = heap_rows[qi]
        worst = keys[0]
        for j in range(n_cols):
            value = raw[qi, j]
            if value < worst:
                if use_mask and not row_mask[offset + j]:
                    continue
                keys[0] = value
                rows[0] = offset + j
                sift_down(keys, rows, 0, k)
                worst = keys[0]


def _sort_heaps(heap_keys, heap_rows):
    """Heaps -> ascending rows, in place."""
    for qi in numba.prange(heap_keys.shape[0]):
        order = np.argsort(heap_keys[qi], kind="mergesort")
        heap_keys[qi] = heap_keys[qi][order]
        heap_rows[qi] = heap_rows[qi][order]


# Each kernel compiled twice: waking a thread pool costs more than a few queries' work, so small batches run
# on the calling thread (prange is a plain range there).
# nogil: a search in one thread and an indexing step or another search in another run on two cores at once
push_block = numba.njit(parallel=True, cache=True, nogil=True)(_push_block)
push_block_serial = numba.njit(cache=True, nogil=True)(_push_block)
sort_heaps = numba.njit(parallel=True, cache=True, nogil=True)(_sort_heaps)
sort_heaps_serial = numba.njit(cache=True, nogil=True)(_sort_heaps)
PARALLEL_MIN_QUERIES = 16


def exact_topk(
    queries: np.ndarray,
    vectors: np.ndarray,
    k: int,
    kind: str,
    row_mask: np.ndarray | None = None,
    vector_sq_norms: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of ``vectors`` for each query, as (rows (q,k) int64 padded -1, raw (q,k) float32).

    ``kind`` "ip": raw = -<q,x>; "l2": raw = ||q-x||^2.  ``row_mask`` (bool, len n) excludes rows where False.
    """
    nq, n = len(queries), len(vectors)
    out_rows = np.full((nq, k), -1, dtype=np.int64)
    out_raw = np.full((nq, k), np.inf, dtype=np.float32)
    if n == 0 or nq == 0:
        return out_rows, out_raw
    if kind == "l2" and vector_sq_norms is None:
        vector_sq_norms = np.einsum("ij,ij->i", vectors, vectors)
    use_mask = row_mask is not None
    mask = row_mask if use_mask else np.ones(1, dtype=np.bool_)
    parallel = min(nq, QUERY_BLOCK) >= PARALLEL_MIN_QUERIES
    push, sort = (push_block, sort_heaps) if parallel else (push_block_serial, sort_heaps_serial)
    for q0 in range(0, nq, QUERY_BLOCK):
        q = queries[q0 : q0 + QUERY_BLOCK]
        heap_raw = np.full((len(q), k), np.inf, dtype=np.float32)
        heap_rows = np.full((len(q), k), -1, dtype=np.int64)
        for b0 in range(0, n, BASE_BLOCK):
            block = vectors[b0 : b0 + BASE_BLOCK]
            norms = None if vector_sq_norms is None else vector_sq_norms[b0 : b0 + len(block)]
            raw = np.ascontiguousarray(_block_raw(q, block, kind, norms), dtype=np.float32)
            push(raw, b0, mask, use_mask, heap_raw, heap_rows)
        sort(heap_raw, heap_rows)
        if kind == "l2":  # the expansion ||q||^2 - 2<q,x> + ||x||^2 loses digits: recompute the winners exactly
            heap_raw = _exact_l2(q, vectors, heap_rows, heap_raw)
            order = np.argsort(heap_raw, axis=1, kind="stable")
            heap_rows = np.take_along_axis(heap_rows, order, axis=1)
            heap_raw = np.take_along_axis(heap_raw, order, axis=1)
        found = np.isfinite(heap_raw)
        out_rows[q0 : q0 + len(q)] = np.where(found, heap_rows, -1)
        out_raw[q0 : q0 + len(q)] = heap_raw
    return out_rows, out_raw


def _block_raw(q: np.ndarray, block: np.ndarray, kind: str, block_sq_norms: np.ndarray | None) -> np.ndarray:
    scores = q @ block.T
    if kind == "ip":
        np.negative(scores, out=scores)
        return scores
    scores *= -2.0
    scores += block_sq_norms[None, :]
    # ||q||^2 is the same for the whole row: it does not change the order, so it is added only to the winners.
    return scores


def _exact_l2(q: np.ndarray, vectors: np.ndarray, rows: np.ndarray, raw: np.ndarray) -> np.ndarray:
    found = np.isfinite(raw) & (rows >= 0)
    diff = vectors[np.where(found, rows, 0)] - q[:, None, :]
    exact = np.einsum("qkd,qkd->qk", diff, diff).astype(np.float32)
    return np.where(found, exact, np.inf).astype(np.float32)


@numba.njit(cache=True, nogil=True, fastmath=True)
def scan_rows(q, vectors, rows, live, use_live, k, is_ip, normalize):
    """Exact k nearest of one query (q: (1, dim)) among ``rows`` (those live, when ``use_live``), reading only
    those rows: under a filter that passes few rows this beats scoring every row with BLAS and masking the
    scores, copying the rows out first, or walking a bool mask (a branch per row, mispredicted at random).
    ``normalize`` scales the query to unit length first (cosine).  Returns (rows (1,k) padded -1, raw (1,k)
    padded +inf); a zero query under ``normalize`` gives rows[0,0] = -2."""
    dim = vectors.shape[1]
    keys = np.full(k, np.inf, dtype=np.float32)
    found = np.full(k, -1, dtype=np.int64)
    query = q[0].copy()
    if normalize:
        squares = np.float32(0.0)
        for d in range(dim):
            squares += query[d] * query[d]
        if not squares > 0.0:
            found[0] = -2
            return found.reshape(1, k), keys.reshape(1, k)
        query *= np.float32(1.0) / np.sqrt(squares)
    for i in range(rows.shape[0]):
        r = rows[i]
        if i + AHEAD < rows.shape[0]:  # rows at random: load the coming one while this one is scored
            prefetch_row(vectors, rows[i + AHEAD])
        if use_live and not live[r]:
            continue
        score = np.float32(0.0)
        if is_ip:
            for d in range(dim):
                score += query[d] * vectors[r, d]
            score = -score
        else:
            for d in range(dim):
                diff = query[d] - vectors[r, d]
                score += diff * diff
        if score < keys[0]:
            offer(keys, found, score, r)
    heap_sort(keys, found)
    for i in range(k):
        if keys[i] == np.inf:
            found[i] = -1
    return found.reshape(1, k), keys.reshape(1, k)
