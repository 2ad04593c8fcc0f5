"""Product quantization (Jégou, Douze & Schmid, "Product quantization for nearest neighbor search", TPAMI 2011)
and its optimized rotation (Ge, He, Ke & Sun, "Optimized Product Quantization", CVPR 2013), as Numba kernels.

A vector of d dimensions is cut into ``m`` sub-vectors of d/m dimensions; each sub-space has its own codebook of
``ksub = 2**nbits`` centroids (k-means on that sub-space), and a vector is stored as the m numbers of its
nearest sub-centroids: m bytes instead of 4d.  The IVFADC system of the paper encodes the *residual* x - c of a
vector to its coarse (IVF) centroid c, which is smaller and so better quantized.

Searching (asymmetric distance computation, ADC): the query stays exact.  One table per query holds
<q_j, codebook_j[c]> for every sub-space j and code c (m * ksub inner products); the approximate score of a
stored code is then m table lookups:

    inner product   <q, x>  ~ <q, c> + sum_j table[j, code_j]
    squared L2      ||q - x||^2 ~ ||q||^2 + ||x'||^2 - 2 (<q, c> + sum_j table[j, code_j])

where x' = c + r' is the decoded vector, whose squared norm is stored beside its code (4 bytes; ``code_width``)
so that the L2 form needs no per-list table (faiss's "precomputed table" costs nlist * m * ksub floats instead).
Cosine vectors are unit vectors, so they are scanned with the L2 form (measured:
recall@10 after re-ranking 0.97 against 0.67 with the inner-product form on the same codes: the L2 form also
counts the error in the decoded vector's length) and re-ranked by inner product.  The ``n_candidates`` best approximate
scores are then *re-ranked* with exact distances read from the float vectors: only those rows are touched,
so the floats may stay on disk (memory-mapped) while the codes are in RAM.

OPQ rotates the vectors by an orthogonal matrix R before cutting them, chosen so that the sub-spaces carry
balanced, less correlated variance; distances are unchanged by R, so the query is simply rotated too.
"""

from __future__ import annotations

import numba
import numpy as np

from .heaps import heap_sort, offer
from .invlists import FASTMATH, SERIAL_WORK, _dot, _rank_centroids, _sq_l2
from .kmeans import assign, kmeans
from .prefetch import AHEAD, prefetch_row

#: training points per codebook centroid (faiss also samples at most 256 * ksub for PQ training)
TRAIN_POINTS_PER_CODE = 256


def code_width(m: int) -> int:
    """Bytes per stored vector: m codes, padded to 4, then the float32 squared norm of the decoded vector."""
    return -(-m // 4) * 4 + 4


def pack_codes(codes: np.ndarray, decoded_sq_norms: np.ndarray) -> np.ndarray:
    """(n, code_width(m)) uint8: the codes, then each decoded vector's squared norm as float32 bytes."""
    n, m = codes.shape
    packed = np.zeros((n, code_width(m)), dtype=np.uint8)
    packed[:, :m] = codes
    packed[:, -4:] = np.ascontiguousarray(decoded_sq_norms, dtype="<f4").view(np.uint8).reshape(n, 4)
    return packed


# ---------------------------------------------------------------------------------------------- training
def train_codebooks(x: np.ndarray, m: int, ksub: int, *, n_iter: int = 20, seed: int = 0) -> np.ndarray:
    """One k-means codebook per sub-space: (m, ksub, d/m) float32.  With fewer than ``ksub`` distinct points
    the extra codewords repeat the last one (they are never the unique nearest, so never used)."""
    n, d = x.shape
    dsub = d // m
    k = min(ksub, n)
    codebooks = np.empty((m, ksub, dsub), dtype=np.float32)
    for j in range(m):
        sub = np.ascontiguousarray(x[:, j * dsub : (j + 1) * dsub])
        codebooks[j, :k] = kmeans(sub, k, n_iter=n_iter, seed=seed + j, max_points=TRAIN_POINTS_PER_CODE * k)
        codebooks[j, k:] = codebooks[j, k - 1]
    return codebooks


def encode(x: np.ndarray, codebooks: np.ndarray) -> np.ndarray:
    """(n, m) uint8 codes: per sub-space, the nearest codeword."""
    m, _, dsub = codebooks.shape
    codes = np.empty((len(x), m), dtype=np.uint8)
    for j in range(m):
        nearest, _ = assign(x[:, j * dsub : (j + 1) * dsub], codebooks[j])
        codes[:, j] = nearest
    return codes


def decode(codes: np.ndarray, codebooks: np.ndarray) -> np.ndarray:
    """(n, d) float32 reconstruction of codes."""
    m = codebooks.shape[0]
    return np.concatenate([codebooks[j][codes[:, j]] for j in range(m)], axis=1).astype(np.float32)


def train_rotation(x: np.ndarray, m: int, ksub: int, *, n_rounds: int = 4, seed: int = 0) -> np.ndarray:
    """OPQ's non-parametric solution (Ge et al. 2013, section 3.1): alternate between (a) PQ codebooks for the
    rotated data and (b) the rotation that best maps the data onto its reconstruction, an orthogonal
    Procrustes problem solved by one SVD.  Returns R (d, d), orthogonal: x @ R is what gets quantized."""
    d = x.shape[1]
    rotation = np.eye(d, dtype=np.float32)
    for round_ in range(n_rounds):
        rotated = x @ rotation
        codebooks = train_codebooks(rotated, m, ksub, n_iter=4, seed=seed + 1000 * round_)
        reconstruction = decode(encode(rotated, codebooks), codebooks)
        u, _, vt = np.linalg.svd(x.T.astype(np.float64) @ reconstruction.astype(np.float64))
        rotation = (u @ vt).astype(np.float32)  # argmin_R ||x R - reconstruction||, R orthogonal
    return rotation


# ---------------------------------------------------------------------------------------------- search
def search_pq_lists(queries, rotated_queries, centroids, centroid_sq_norms, nprobe, list_start, list_size, slot_codes,
                    slot_rows, codebooks_t, vectors, row_mask, k, n_candidates, l2, adc_l2):
    """k nearest rows of each query: the ``n_candidates`` best ADC scores among its ``nprobe`` nearest lists,
    re-ranked exactly with ``vectors`` (by row); ``n_candidates == 0`` returns the ADC scores themselves.

    queries (nq, d) prepared; rotated_queries = queries @ R (R = identity without OPQ); slot_codes as
    ``pack_codes`` lays them out; codebooks_t (m, d/m, ksub): the codebooks with each sub-dimension's values
    for all codewords contiguous (so the table is built by whole rows).  ``l2``: raw distances are squared L2
    (else -<q, x>); ``adc_l2``: the codes are scored in the L2 form (always with ``l2``; with unit vectors
    under cosine too).  Returns (rows (nq, k) int64 padded -1, raw (nq, k) float32 padded +inf), sorted."""
    nq, dim = queries.shape
    nprobe = min(nprobe, len(centroids))
    scanned = nprobe * len(slot_rows) / max(len(centroids), 1)
    small = nq * (dim * len(centroids) + scanned * codebooks_t.shape[0]) < SERIAL_WORK
    slot_sq_norms = slot_codes.view(np.float32)[:, -1]  # the last 4 bytes of each packed code
    n_chunks = 1 if small else min(nq, 8 * numba.get_num_threads())
    # a batch ranks the cells with one BLAS product (||c||^2 - 2 <q, c> for every pair: 3x the speed of the
    # per-query loop here), on one BLAS thread: idle BLAS threads spin and would take the cores from the kernel
    # that follows (measured: 40 against 55 us per query); a few queries rank them in the kernel
    coarse = _NO_SCORES
    if not small:
        with single_blas_thread():
            coarse = centroid_sq_norms[None, :] - 2.0 * (queries @ centroids.T)
    return _search_chunks(queries, rotated_queries, centroids, centroid_sq_norms, coarse, nprobe, list_start,
                          list_size, slot_codes, slot_sq_norms, slot_rows, codebooks_t, vectors, row_mask, k,
                          n_candidates, l2, adc_l2, n_chunks)


_NO_SCORES = np.empty((0, 0), dtype=np.float32)
_blas_controller = None


def single_blas_thread():
    """A context in which BLAS runs on one thread (threadpoolctl; the controller is made once)."""
    global _blas_controller
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


@numba.njit(cache=True, parallel=True)
def _search_chunks(queries, rotated_queries, centroids, centroid_sq_norms, coarse, nprobe, list_start, list_size,
                   slot_codes, slot_sq_norms, slot_rows, codebooks_t, vectors, row_mask, k, n_candidates, l2, adc_l2,
                   n_chunks):
    """The queries in ``n_chunks`` contiguous chunks, in parallel; each chunk allocates its scratch once (one
    allocation per query costs as much as a short scan when the threads share the allocator)."""
    nq = queries.shape[0]
    m, _, ksub = codebooks_t.shape
    out_rows = np.full((nq, k), -1, dtype=np.int64)
    out_raw = np.full((nq, k), np.inf, dtype=np.float32)
    size = max(n_candidates, k)
    for chunk in numba.prange(n_chunks):
        probes = np.empty(nprobe, dtype=np.int64)
        probe_scores = np.empty(nprobe, dtype=np.float32)
        table = np.empty((m, ksub), dtype=np.float32)
        cand_rows = np.empty(size, dtype=np.int64)
        cand_raw = np.empty(size, dtype=np.float32)
        for qi in range(chunk * nq // n_chunks, (chunk + 1) * nq // n_chunks):
            probes[:] = -1
            probe_scores[:] = np.inf
            cand_rows[:] = -1
            cand_raw[:] = np.inf
            if coarse.shape[0] > 0:
                for c in range(coarse.shape[1]):
                    offer(probe_scores, probes, coarse[qi, c], c)
            else:
                _rank_centroids(queries[qi], centroids, centroid_sq_norms, probes, probe_scores)
            _search_one(queries[qi], rotated_queries[qi], centroid_sq_norms, list_start, list_size, slot_codes,
                        slot_sq_norms, slot_rows, codebooks_t, vectors, row_mask, n_candidates > 0, l2, adc_l2,
                        probes, probe_scores, table, cand_rows, cand_raw, out_rows[qi], out_raw[qi])
    return out_rows, out_raw


@numba.njit(cache=True)
def _search_one(query, rotated_query, centroid_sq_norms, list_start, list_size, slot_codes, slot_sq_norms, slot_rows,
                codebooks_t, vectors, row_mask, rerank, l2, adc_l2, probes, probe_scores, table, cand_rows, cand_raw,
                out_rows, out_raw):
    """One query whose nprobe nearest cells are in the max-heap (probes, probe_scores)."""
    heap_sort(probe_scores, probes)  # nearest list first: the candidate heap tightens early
    _query_table(rotated_query, codebooks_t, table)
    query_sq_norm = _dot(query, query)
    for p in range(probes.shape[0]):
        lst = probes[p]
        if lst < 0:
            continue
        query_dot_centroid = np.float32(0.5) * (centroid_sq_norms[lst] - probe_scores[p])  # score: ||c||^2 - 2<q,c>
        _scan_codes(lst, query_sq_norm, query_dot_centroid, table, adc_l2, list_start, list_size, slot_codes,
                    slot_sq_norms, slot_rows, row_mask, cand_rows, cand_raw)
    if not rerank:
        heap_sort(cand_raw, cand_rows)
        out_rows[:] = cand_rows[: out_rows.shape[0]]
        out_raw[:] = cand_raw[: out_rows.shape[0]]
        if adc_l2 and not l2:  # unit vectors: -<q, x> = ||q - x||^2 / 2 - 1
            for i in range(out_raw.shape[0]):
                out_raw[i] = np.float32(0.5) * out_raw[i] - np.float32(1.0)
        return
    n_candidates = cand_rows.shape[0]
    for i in range(min(AHEAD, n_candidates)):  # the candidates are rows at random: start loading them now
        if cand_rows[i] >= 0:
            prefetch_row(vectors, cand_rows[i])
    for i in range(n_candidates):  # re-rank: exact distances of the candidates, from the float vectors
        if i + AHEAD < n_candidates and cand_rows[i + AHEAD] >= 0:
            prefetch_row(vectors, cand_rows[i + AHEAD])
        row = cand_rows[i]
        if row < 0:
            continue
        raw = _sq_l2(query, vectors[row]) if l2 else -_dot(query, vectors[row])
        offer(out_raw, out_rows, raw, row)
    heap_sort(out_raw, out_rows)


@numba.njit(cache=True, fastmath=FASTMATH)
def _query_table(rotated_query, codebooks_t, table):
    """table[j, c] = <q_j, codebook_j[c]>: the per-query part of every ADC score, built a whole row of
    codewords at a time (the inner loop runs over the ksub codewords: contiguous, vectorised)."""
    m, dsub, ksub = codebooks_t.shape
    for j in range(m):
        row = table[j]
        row[:] = 0.0
        for t in range(dsub):
            value = rotated_query[j * dsub + t]
            words = codebooks_t[j, t]
            for c in range(ksub):
                row[c] += value * words[c]


@numba.njit(cache=True, fastmath=FASTMATH)
def _scan_codes(lst, query_sq_norm, query_dot_centroid, table, adc_l2, list_start, list_size, slot_codes,
                slot_sq_norms, slot_rows, row_mask, heap_rows, heap_raw):
    """ADC score of every code of one list into the candidate max-heap (raw: smaller is nearer)."""
    use_mask = row_mask.shape[0] > 0
    m = table.shape[0]
    first = list_start[lst]
    for slot in range(first, first + list_size[lst]):
        row = slot_rows[slot]
        if use_mask and not row_mask[row]:
            continue
        codes = slot_codes[slot]
        # four running sums: one sum would be a chain of dependent additions, each waiting for the last
        acc0 = acc1 = acc2 = acc3 = np.float32(0.0)
        j = 0
        while j + 4 <= m:
            acc0 += table[j, codes[j]]
            acc1 += table[j + 1, codes[j + 1]]
            acc2 += table[j + 2, codes[j + 2]]
            acc3 += table[j + 3, codes[j + 3]]
            j += 4
        for j in range(j, m):
            acc0 += table[j, codes[j]]
        dot = query_dot_centroid + ((acc0 + acc1) + (acc2 + acc3))
        if adc_l2:
            raw = query_sq_norm + slot_sq_norms[slot] - np.float32(2.0) * dot
        else:
            raw = -dot
        offer(heap_raw, heap_rows, raw, row)
