"""k-means (Lloyd 1982) with k-means++ seeding (Arthur & Vassilvitskii 2007), for IVF coarse quantizers and
product-quantization codebooks.

    centroids = kmeans(x, k)             # (k, d) float32
    labels, sq_dist = assign(x, centroids)

The steps, as in the papers:
  1. train on a seeded sample of at most ``max_points`` rows (256 per centroid by default, as faiss does):
     more points barely move the centroids and every iteration costs n * k * d;
  2. k-means++: the first centre is a uniform pick, each next one a point drawn with probability proportional
     to its squared distance to the nearest centre chosen so far (D^2 sampling).  It runs on a smaller seeded
     subsample (``INIT_POINTS_PER_CENTROID`` per centroid, as scikit-learn's ``init_size``) because it is k
     sequential passes over the points;
  3. Lloyd iterations: assign every point to its nearest centroid (a BLAS product by blocks), move each centroid
     to the mean of its points; stop early when no assignment changes;
  4. an empty cluster takes half of the largest cluster: it restarts as a copy of that centroid, the two copies
     pushed apart along a random direction, so the next assignment splits the big cluster between them;
  5. ``spherical=True`` renormalises the centroids after each update (spherical k-means, Dhillon & Modha 2001):
     the nearest unit centroid in L2 is then the one of largest inner product, what cosine and dot search need.
"""

from __future__ import annotations

import numba
import numpy as np

from .._validation import check_positive_int
from ..errors import InvalidParameterError

#: default training sample per centroid (faiss: max_points_per_centroid = 256)
MAX_POINTS_PER_CENTROID = 256
#: points per centroid that k-means++ seeding looks at
INIT_POINTS_PER_CENTROID = 16
#: scores held at once by ``assign``: rows_per_block * k <= this (16 MiB of float32)
ASSIGN_BLOCK_SCORES = 1 << 22
#: how far apart (relative to the cluster's RMS radius) the two halves of a split cluster start
SPLIT_OFFSET = 1e-2
#: fastmath without "no infs / no NaNs": the kernels compare against +inf sentinels
FASTMATH = {"reassoc", "contract", "arcp", "nsz"}
#: a k-means++ pass over at least this many coordinates runs on every thread
PARALLEL_PASS = 1 << 23


def kmeans(
    x: np.ndarray,
    k: int,
    *,
    n_iter: int = 20,
    seed: int = 0,
    max_points: int | None = None,
    spherical: bool = False,
) -> np.ndarray:
    """Cluster the rows of ``x`` (n, d) into ``k`` groups; returns the centroids, (k, d) float32."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidParameterError(f"kmeans expects a 2-D (n, d) array, got shape {x.shape}")
    k = check_positive_int(k, "k")
    n_iter = check_positive_int(n_iter, "n_iter")
    n = len(x)
    if k > n:
        raise InvalidParameterError(f"k-means with k={k} clusters needs at least k points, got n={n}")
    if max_points is None:
        max_points = MAX_POINTS_PER_CENTROID * k
    max_points = check_positive_int(max_points, "max_points")
    if max_points < k:
        raise InvalidParameterError(f"max_points={max_points} is below k={k}: each centroid needs a point")
    rng = np.random.default_rng(seed)

    train = _sample_rows(x, max_points, rng)
    centroids = kmeans_plusplus(_sample_rows(train, INIT_POINTS_PER_CENTROID * k, rng), k, rng)
    if spherical:
        centroids = _unit_rows(centroids)
    labels = None
    for _ in range(n_iter):
        new_labels, sq_dist = assign(train, centroids)
        if labels is not None and np.array_equal(new_labels, labels):
            break  # converged: the same assignment gives the same means
        labels = new_labels
        centroids = _update_centroids(train, labels, sq_dist, centroids, rng)
        if spherical:
            centroids = _unit_rows(centroids)
    return centroids


def assign(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of each row: (labels (n,) int64, squared L2 distances (n,) float32).

    ||x - c||^2 = ||x||^2 - 2<x, c> + ||c||^2: the middle term is one matrix product per block of rows, and
    ||x||^2 does not change which centroid wins, so it is added to the winner only."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    n, k = len(x), len(centroids)
    labels = np.empty(n, dtype=np.int64)
    sq_dist = np.empty(n, dtype=np.float32)
    centroid_sq_norms = np.einsum("ij,ij->i", centroids, centroids)
    minus_two_centroids_t = np.ascontiguousarray(-2.0 * centroids.T)  # the -2 rides along the product
    rows_per_block = max(1, ASSIGN_BLOCK_SCORES // max(k, 1))
    for start in range(0, n, rows_per_block):
        block = x[start : start + rows_per_block]
        scores = block @ minus_two_centroids_t
        scores += centroid_sq_norms[None, :]
        best = np.argmin(scores, axis=1)
        stop = start + len(block)
        labels[start:stop] = best
        best_scores = scores[np.arange(len(block)), best]
        sq_dist[start:stop] = np.maximum(best_scores + np.einsum("ij,ij->i", block, block), 0.0)
    return labels, sq_dist


def kmeans_plusplus(x: np.ndarray, k: int, rng: np.random.Generator | int = 0) -> np.ndarray:
    """k-means++ seeding: k rows of ``x`` (copied, float32) chosen by D^2 sampling; the same rng, the same rows."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    k = check_positive_int(k, "k")
    if k > len(x):
        raise InvalidParameterError(f"k-means++ with k={k} needs at least k points, got n={len(x)}")
    rng = np.random.default_rng(rng)
    # every random draw is made here, by NumPy, so the result depends on the seed only (not on Numba's RNG)
    uniforms = rng.random(k)
    return x[_kmeanspp_rows(x, k, uniforms)].copy()


# ---------------------------------------------------------------------------------------------- Lloyd update
def _update_centroids(
    x: np.ndarray, labels: np.ndarray, sq_dist: np.ndarray, old: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Each centroid moves to the mean of its points; empty clusters split the largest ones."""
    k = len(old)
    sums, counts = _cluster_sums(x, labels, k)
    centroids = old.astype(np.float64)
    filled = counts > 0
    centroids[filled] = sums[filled] / counts[filled, None]
    if not filled.all():
        sq_radius = np.bincount(labels, weights=sq_dist, minlength=k) / np.maximum(counts, 1)
        _split_largest_clusters(centroids, counts.astype(np.float64), sq_radius, rng)
    return centroids.astype(np.float32)


def _split_largest_clusters(
    centroids: np.ndarray, counts: np.ndarray, sq_radius: np.ndarray, rng: np.random.Generator
) -> None:
    """In place: each empty cluster takes half of the currently largest cluster.

    Both halves start at the big centroid, one pushed by +delta and the other by -delta along a random direction:
    the hyperplane through the old centroid orthogonal to delta then cuts its points in two at the next assignment.
    """
    for empty in np.flatnonzero(counts == 0):
        largest = int(np.argmax(counts))
        direction = rng.normal(size=centroids.shape[1])
        direction /= np.linalg.norm(direction)
        radius = np.sqrt(sq_radius[largest])
        scale = radius if radius > 0 else max(np.abs(centroids[largest]).max(), 1.0)
        delta = SPLIT_OFFSET * scale * direction
        centroids[empty] = centroids[largest] + delta
        centroids[largest] -= delta
        counts[empty] = counts[largest] / 2
        counts[largest] -= counts[empty]
        sq_radius[empty] = sq_radius[largest]


# ---------------------------------------------------------------------------------------------- helpers
def _sample_rows(x: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    if len(x) <= max_rows:
        return x
    rows = np.sort(rng.choice(len(x), size=max_rows, replace=False))  # sorted: reads memory in order
    return x[rows]


def _unit_rows(centroids: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    return (centroids / np.where(norms > 0, norms, 1.0)).astype(np.float32)


# ---------------------------------------------------------------------------------------------- Numba kernels
@numba.njit(cache=True)
def _kmeanspp_rows(x, k, uniforms):
    """Rows picked by k-means++: ``uniforms`` (k draws in [0, 1)) drive the picks, D^2 weights the points."""
    n = x.shape[0]
    chosen = np.empty(k, dtype=np.int64)
    taken = np.zeros(n, dtype=np.bool_)
    chosen[0] = min(int(uniforms[0] * n), n - 1)
    taken[chosen[0]] = True
    nearest_sq = np.full(n, np.inf)
    _lower_to_centre(x, chosen[0], nearest_sq)
    for c in range(1, k):
        total = 0.0
        for i in range(n):
            total += nearest_sq[i]
        pick = -1
        if total > 0.0:
            target = uniforms[c] * total
            running = 0.0
            for i in range(n):
                running += nearest_sq[i]
                if running > target and nearest_sq[i] > 0.0:
                    pick = i
                    break
        if pick < 0 or taken[pick]:
            # every point sits on a centre already (duplicates), or rounding ran past the end: take any unused row
            for i in range(n):
                if not taken[i]:
                    pick = i
                    break
        chosen[c] = pick
        taken[pick] = True
        _lower_to_centre(x, pick, nearest_sq)
    return chosen


@numba.njit(cache=True)
def _lower_to_centre(x, centre_row, nearest_sq):
    """nearest_sq[i] = min(nearest_sq[i], ||x[i] - x[centre_row]||^2).  A pass is short and there are k of them
    in a row: only a big pass pays for waking the thread pool (milliseconds each time on a busy machine)."""
    if x.shape[0] * x.shape[1] >= PARALLEL_PASS:
        _lower_to_centre_parallel(x, x[centre_row].copy(), nearest_sq)
    else:
        _lower_to_centre_serial(x, x[centre_row].copy(), nearest_sq)


@numba.njit(cache=True, fastmath=FASTMATH)
def _lower_to_centre_serial(x, centre, nearest_sq):
    for i in range(x.shape[0]):
        _lower_one(x[i], centre, nearest_sq, i)


@numba.njit(cache=True, parallel=True)
def _lower_to_centre_parallel(x, centre, nearest_sq):
    for i in numba.prange(x.shape[0]):
        _lower_one(x[i], centre, nearest_sq, i)


@numba.njit(cache=True, fastmath=FASTMATH)
def _lower_one(point, centre, nearest_sq, i):
    acc = np.float32(0.0)
    for j in range(point.shape[0]):
        diff = point[j] - centre[j]
        acc += diff * diff
    if acc < nearest_sq[i]:
        nearest_sq[i] = acc


@numba.njit(cache=True)
def _cluster_sums(x, labels, k):
    """Per-cluster sums of the rows (float64, so a million additions keep their digits) and point counts."""
    n, d = x.shape
    sums = np.zeros((k, d), dtype=np.float64)
    counts = np.zeros(k, dtype=np.int64)
    for i in range(n):
        c = labels[i]
        counts[c] += 1
        for j in range(d):
            sums[c, j] += x[i, j]
    return sums, counts
