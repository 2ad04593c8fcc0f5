"""Exact top-k by blocks: BLAS matmul for the scores, ``argpartition`` for the selection.

Memory stays bounded whatever the sizes: at most ``query_block x base_block`` scores live at once
(256 x 65,536 float32 = 64 MiB), so 1M x 512 vectors are searched without a (q, n) matrix.
"""

from __future__ import annotations

import numpy as np

QUERY_BLOCK = 256
BASE_BLOCK = 65_536


def smallest_k(raw: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column positions and values of the k smallest entries of each row, sorted ascending.

    Rows with fewer than k finite entries keep +inf at their tail (their positions are meaningless)."""
    n = raw.shape[1]
    if k < n:
        part = np.argpartition(raw, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), (raw.shape[0], n))
    values = np.take_along_axis(raw, part, axis=1)
    order = np.argsort(values, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(values, order, axis=1)


def merge_topk(
    rows_a: np.ndarray, dist_a: np.ndarray, rows_b: np.ndarray, dist_b: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge two sorted (q, *) candidate lists into the k best (a is the running best, b the new block)."""
    rows = np.concatenate([rows_a, rows_b], axis=1)
    dist = np.concatenate([dist_a, dist_b], axis=1)
    pos, best = smallest_k(dist, min(k, dist.shape[1]))
    return np.take_along_axis(rows, pos, axis=1), best


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
    for q0 in range(0, nq, QUERY_BLOCK):
        q = queries[q0 : q0 + QUERY_BLOCK]
        best_rows = np.full((len(q), 0), -1, dtype=np.int64)
        best_raw = np.full((len(q), 0), np.inf, dtype=np.float32)
        for b0 in range(0, n, BASE_BLOCK):
            block = vectors[b0 : b0 + BASE_BLOCK]
            raw = _block_raw(q, block, kind, None if vector_sq_norms is None else vector_sq_norms[b0 : b0 + len(block)])
            if row_mask is not None:
                raw[:, ~row_mask[b0 : b0 + len(block)]] = np.inf
            pos, vals = smallest_k(raw, min(k, raw.shape[1]))
            best_rows, best_raw = merge_topk(best_rows, best_raw, pos + b0, vals, k)
        if kind == "l2":  # the expansion ||q||^2 - 2<q,x> + ||x||^2 loses digits: recompute the winners exactly
            best_raw = _exact_l2(q, vectors, best_rows, best_raw)
            order = np.argsort(best_raw, axis=1, kind="stable")
            best_rows = np.take_along_axis(best_rows, order, axis=1)
            best_raw = np.take_along_axis(best_raw, order, axis=1)
        found = np.isfinite(best_raw)
        width = best_rows.shape[1]
        out_rows[q0 : q0 + len(q), :width] = np.where(found, best_rows, -1)
        out_raw[q0 : q0 + len(q), :width] = best_raw
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
    found = np.isfinite(raw)
    diff = vectors[np.where(found, rows, 0)] - q[:, None, :]
    exact = np.einsum("qkd,qkd->qk", diff, diff).astype(np.float32)
    return np.where(found, exact, np.inf).astype(np.float32)
