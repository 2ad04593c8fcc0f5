"""Recall floors of HNSWIndex against FlatIndex on seeded clustered data: plain, after deletes, under a
selective filter, after incremental adds, and memory-mapped after save/load."""

from __future__ import annotations

import numpy as np
import pytest

import lookalike.index.hnsw as hnsw_module
from lookalike.index.flat import FlatIndex
from lookalike.index.hnsw import HNSWIndex
from tests.conftest import clustered

pytestmark = pytest.mark.recall

K = 10
N, DIM, N_QUERIES = 20_000, 64, 200


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth)]))


@pytest.fixture(scope="module", params=["l2", "cosine"])
def setup(request, tmp_path_factory):
    """(index, flat, queries, saved copy) per metric.  The l2 index is built in two batches with a search in
    between (incremental adds), the cosine one in a single batch."""
    metric = request.param
    data = clustered(N + N_QUERIES, DIM, 20, seed=2024, spread=0.3)
    x, q = data[:N], data[N:]  # queries from the same mixture as the data, none of them stored
    index = HNSWIndex(DIM, metric, M=16, ef_construction=200)
    if metric == "l2":
        index.add(x[: N // 2])
        index.search(q[:5], k=K)
        index.add(x[N // 2 :], np.arange(N // 2, N))
    else:
        index.add(x)
    flat = FlatIndex(DIM, metric)
    flat.add(x)
    saved = tmp_path_factory.mktemp(f"hnsw-{metric}") / "ix"
    index.save(saved)
    return index, flat, q, saved


def test_recall_floor_at_default_ef(setup):
    index, flat, q, _ = setup
    truth = flat.search(q, K).ids
    curve = {ef: recall_at_k(index.search(q, K, ef=ef).ids, truth) for ef in (10, 16, 32, 64)}
    assert curve[64] >= 0.95, curve
    assert index.search(q, K).ids.tolist() == index.search(q, K, ef=64).ids.tolist()  # ef=64 is the default
    assert all(b >= a - 0.01 for a, b in zip(curve.values(), list(curve.values())[1:])), curve
    assert curve[10] < 0.99, curve  # the data is not so easy that any ef works


def test_recall_holds_after_deleting_a_fifth(setup):
    index, flat, q, saved = setup
    copy = HNSWIndex.load(saved, mmap=True)
    np.testing.assert_array_equal(copy.search(q, K).ids, index.search(q, K).ids)  # mmap: identical answers
    removed = np.random.default_rng(5).choice(N, size=N // 5, replace=False)
    copy.remove(removed)
    result = copy.search(q, K)
    assert not np.isin(result.ids, removed).any() and (result.ids >= 0).all()
    truth = flat.search(q, K, allowed_ids=np.setdiff1d(np.arange(N), removed)).ids
    assert recall_at_k(result.ids, truth) >= 0.95


@pytest.mark.parametrize("path", ["exact scan", "graph walk"])
def test_recall_under_a_five_percent_filter(setup, monkeypatch, path):
    index, flat, q, _ = setup
    if path == "graph walk":  # never fall back to scanning the allowed rows
        monkeypatch.setattr(hnsw_module, "FILTER_SCAN_FACTOR", 0)
    allowed = np.random.default_rng(6).choice(N, size=N // 20, replace=False)
    result = index.search(q, K, allowed_ids=allowed)
    assert np.isin(result.ids, allowed).all() and (result.ids >= 0).all()
    truth = flat.search(q, K, allowed_ids=allowed).ids
    assert recall_at_k(result.ids, truth) >= 0.9


@pytest.mark.slow
def test_recall_floor_100k_x_128():
    n, dim = 100_000, 128
    data = clustered(n + 500, dim, 100, seed=2025, spread=0.3)
    x, q = data[:n], data[n:]
    index = HNSWIndex(dim, "cosine")
    index.add(x)
    flat = FlatIndex(dim, "cosine")
    flat.add(x)
    assert recall_at_k(index.search(q, K, ef=64).ids, flat.search(q, K).ids) >= 0.95
