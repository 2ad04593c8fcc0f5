"""k-means kernels against NumPy references: assignment, Lloyd iterations, k-means++ seeding, empty-cluster split."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.kernels import kmeans as km
from tests.conftest import clustered

pytestmark = pytest.mark.unit


def reference_assign(x, centroids):
    d2 = ((x[:, None, :].astype(np.float64) - centroids[None, :, :]) ** 2).sum(-1)
    return d2.argmin(1), d2.min(1)


def reference_lloyd(x, centroids, n_iter):
    """Textbook Lloyd in float64 (no empty clusters expected on the data it is given)."""
    c = centroids.astype(np.float64)
    labels = None
    for _ in range(n_iter):
        new_labels, _ = reference_assign(x, c)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        c = np.stack([x[labels == j].mean(0) for j in range(len(c))])
    return c


def objective(x, centroids):
    return float(reference_assign(x, centroids)[1].sum())


def test_assign_matches_brute_force(monkeypatch):
    x = clustered(700, 12, 6, seed=1)
    centroids = clustered(37, 12, 6, seed=2)
    monkeypatch.setattr(km, "ASSIGN_BLOCK_SCORES", 37 * 50)  # several blocks of 50 rows
    labels, sq = km.assign(x, centroids)
    ref_labels, ref_sq = reference_assign(x, centroids)
    assert labels.dtype == np.int64 and sq.dtype == np.float32
    np.testing.assert_allclose(sq, ref_sq, rtol=1e-4, atol=1e-5)
    # a different label is allowed only for a near tie
    differ = labels != ref_labels
    own = ((x[differ] - centroids[labels[differ]]) ** 2).sum(1)
    np.testing.assert_allclose(own, ref_sq[differ], rtol=1e-4, atol=1e-5)


def test_lloyd_matches_numpy_reference_from_the_same_seeding():
    x = clustered(150, 8, 10, seed=3, spread=0.4)
    k, seed = 10, 7
    assert len(x) <= km.INIT_POINTS_PER_CENTROID * k  # no sample drawn: kmeans's first draws are the seeding's
    seeds = km.kmeans_plusplus(x, k, np.random.default_rng(seed))
    ours = km.kmeans(x, k, n_iter=15, seed=seed)
    ref = reference_lloyd(x, seeds, 15)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)
    assert objective(x, ours) < objective(x, seeds)


def test_kmeans_on_a_sample_still_fits_the_data():
    x = clustered(5000, 16, 8, seed=4)
    full = km.kmeans(x, 8, seed=0)
    sampled = km.kmeans(x, 8, seed=0, max_points=400)
    assert sampled.shape == (8, 16) and sampled.dtype == np.float32
    assert objective(x, sampled) <= 1.2 * objective(x, full)


def test_kmeanspp_is_deterministic_by_seed_and_picks_distinct_rows():
    x = clustered(2000, 10, 20, seed=5)
    a = km.kmeans_plusplus(x, 20, 11)
    b = km.kmeans_plusplus(x, 20, 11)
    c = km.kmeans_plusplus(x, 20, 12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    rows = [int(np.flatnonzero((x == centre).all(1))[0]) for centre in a]
    assert len(set(rows)) == 20
    np.testing.assert_array_equal(km.kmeans(x, 20, seed=3), km.kmeans(x, 20, seed=3))


def test_kmeanspp_spreads_seeds_over_separated_blobs():
    """D^2 sampling: once a blob holds a seed, its points weigh almost nothing, so each blob gets one seed."""
    rng = np.random.default_rng(0)
    blobs = np.repeat(np.eye(6, dtype=np.float32) * 100, 50, axis=0)
    x = blobs + rng.normal(scale=0.01, size=blobs.shape).astype(np.float32)
    seeds = km.kmeans_plusplus(x, 6, 0)
    assert len(set(np.argmax(seeds, axis=1).tolist())) == 6


def test_empty_cluster_takes_half_of_the_largest():
    rng = np.random.default_rng(1)
    big = rng.normal(size=(300, 4)).astype(np.float32)
    small = rng.normal(size=(20, 4)).astype(np.float32) + 50
    x = np.vstack([big, small])
    labels = np.r_[np.zeros(300), np.ones(20)].astype(np.int64)
    old = np.zeros((3, 4), np.float32)
    sq = np.zeros(len(x), np.float32)
    centroids = km._update_centroids(x, labels, sq + 1.0, old, rng)
    # the empty cluster 2 restarts next to the big cluster's mean, pushed apart from cluster 0
    assert np.linalg.norm(centroids[2] - big.mean(0)) < 0.1
    assert np.linalg.norm(centroids[0] - big.mean(0)) < 0.1
    assert not np.allclose(centroids[0], centroids[2])
    # and the next assignment cuts the big cluster in two non-empty halves
    new_labels, _ = km.assign(x, centroids)
    counts = np.bincount(new_labels[:300], minlength=3)
    assert counts[0] > 30 and counts[2] > 30 and counts[1] == 0


def test_kmeans_recovers_from_a_seeding_that_empties_a_cluster(monkeypatch):
    x = clustered(1000, 8, 4, seed=6)
    far = np.full((1, 8), 1e3, np.float32)

    def bad_seeding(sample, k, rng):  # one seed far from every point: its cluster is empty after assignment
        return np.vstack([sample[: k - 1], far])

    monkeypatch.setattr(km, "kmeans_plusplus", bad_seeding)
    centroids = km.kmeans(x, 6, n_iter=10, seed=0)
    labels, _ = km.assign(x, centroids)
    assert np.bincount(labels, minlength=6).min() > 0
    assert np.abs(centroids).max() < 100


def test_duplicate_points_give_k_finite_centroids():
    x = np.repeat(np.eye(3, dtype=np.float32), 10, axis=0)  # 3 distinct points, k = 5
    centroids = km.kmeans(x, 5, seed=0)
    assert centroids.shape == (5, 3) and np.isfinite(centroids).all()
    assert km.assign(x, centroids)[1].max() < 1e-3


def test_spherical_centroids_are_unit_and_rank_by_inner_product():
    x = clustered(800, 16, 5, seed=8)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    centroids = km.kmeans(x, 5, seed=0, spherical=True)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, rtol=1e-5)
    labels, _ = km.assign(x, centroids)
    np.testing.assert_array_equal(labels, np.argmax(x @ centroids.T, axis=1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": 11}, "at least k points"),
        ({"k": 0}, "k must be"),
        ({"k": 2.0}, "k must be"),
        ({"k": 4, "max_points": 3}, "max_points"),
        ({"k": 2, "n_iter": 0}, "n_iter"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    x = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    with pytest.raises(InvalidParameterError, match=match):
        km.kmeans(x, **kwargs)
