"""What a kernel that answers one query whole needs at both ends: the query copied (and normalised) with its
checks, and the user's distances made from the raw scores, so that the Python around a single query is a call
and a result, not a round of NumPy calls (each costs about a microsecond, as much as a small search).

Raw scores are what the kernels rank by: ||q - x||^2 (l2) or -<q, x> (cosine on unit vectors, dot).  The user's
distances are ``metrics.finalize``'s: sqrt(raw) for l2, 1 + raw (clipped at 0) for cosine, raw for dot.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FINAL_L2, FINAL_COSINE, FINAL_DOT = 0, 1, 2
#: query statuses a kernel reports in ids[0, 0] instead of an answer
ZERO_QUERY, NON_FINITE_QUERY = -2, -3


def final_code(metric_name: str) -> int:
    """The ``final`` argument for a metric's name (see ``metrics.finalize``)."""
    return {"l2": FINAL_L2, "cosine": FINAL_COSINE}.get(metric_name, FINAL_DOT)


@njit(cache=True)
def query_copy(q, normalize):
    """Row 0 of q as a fresh float32 vector (q may be read-only), scaled to unit length under ``normalize``, and
    a status: 0, ZERO_QUERY (a zero query under ``normalize``) or NON_FINITE_QUERY (a NaN or an inf in it)."""
    dim = q.shape[1]
    query = np.empty(dim, dtype=np.float32)
    squares = np.float32(0.0)
    total = np.float32(0.0)
    for j in range(dim):
        query[j] = q[0, j]
        squares += q[0, j] * q[0, j]
        total += q[0, j]
    if total - total != 0.0:  # NaN or inf anywhere makes the sum NaN or inf
        return query, NON_FINITE_QUERY
    if normalize:
        if not squares > 0.0:
            return query, ZERO_QUERY
        scale = np.float32(1.0) / np.sqrt(squares)
        for j in range(dim):
            query[j] *= scale
    return query, 0


@njit(cache=True)
def start_answer(q, k, normalize):
    """What an answering kernel starts from: the checked query (see ``query_copy``), the answer (ids (1, k) -1,
    distances (1, k) +inf; a query that is not to be searched has its status in ids[0, 0]) and the (rows, raw)
    buffers of the search."""
    ids = np.full((1, k), -1, dtype=np.int64)
    distances = np.full((1, k), np.inf, dtype=np.float32)
    query, status = query_copy(q, normalize)
    if status != 0:
        ids[0, 0] = status
    return query, ids, distances, np.full(k, -1, dtype=np.int64), np.full(k, np.inf, dtype=np.float32)


@njit(cache=True)
def finish_answer(rows, raw, labels, final, ids, distances):
    """Fill ids[0] / distances[0] from the sorted (rows, raw) of one query: labels of the rows, final distances;
    padding (-1 rows) stays -1 / +inf."""
    for i in range(rows.shape[0]):
        if rows[i] < 0:
            distances[0, i] = np.inf
            continue
        ids[0, i] = labels[rows[i]]
        score = raw[i]
        if final == FINAL_L2:
            distances[0, i] = np.sqrt(max(score, np.float32(0.0)))
        elif final == FINAL_COSINE:
            distances[0, i] = max(np.float32(1.0) + score, np.float32(0.0))
        else:
            distances[0, i] = score
