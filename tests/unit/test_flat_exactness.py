"""FlatIndex against a brute-force NumPy reference: exact, ties tolerated."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.index import FlatIndex
from lookalike.kernels import topk
from tests.conftest import clustered

pytestmark = pytest.mark.exactness


def brute_force(queries, data, k, metric):
    q, x = queries.astype(np.float64), data.astype(np.float64)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        d = 1 - q @ x.T
    elif metric == "dot":
        d = -(q @ x.T)
    else:
        d = np.sqrt(((q[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


@pytest.mark.parametrize("metric", ["l2", "cosine", "dot"])
@pytest.mark.parametrize("base_block", [topk.BASE_BLOCK, 97])  # 97: many blocks, merges exercised
def test_flat_matches_brute_force(metric, base_block, monkeypatch):
    monkeypatch.setattr(topk, "BASE_BLOCK", base_block)
    monkeypatch.setattr(topk, "QUERY_BLOCK", 7)
    data = clustered(1000, 24, 10, seed=0)
    queries = clustered(30, 24, 10, seed=1)
    index = FlatIndex(24, metric)
    index.add(data)
    got = index.search(queries, k=10)
    want_ids, want_d = brute_force(queries, data, 10, metric)
    # the k returned distances are the k smallest true distances ...
    np.testing.assert_allclose(got.distances, want_d, rtol=1e-4, atol=1e-4)
    # ... and each returned id really is at the distance reported (so a different id can only be a tie)
    all_ids, all_d = brute_force(queries, data, len(data), metric)
    true_d = np.empty_like(all_d)
    np.put_along_axis(true_d, all_ids, all_d, axis=1)
    np.testing.assert_allclose(np.take_along_axis(true_d, got.ids, axis=1), got.distances, rtol=1e-4, atol=1e-4)
    assert (got.ids == want_ids).mean() > 0.95  # ties are rare in continuous data


def test_exact_ties_are_tolerated_but_distances_agree():
    data = np.array([[1, 0], [1, 0], [0, 1], [-1, 0]], dtype=np.float32)  # two identical points
    index = FlatIndex(2, "l2")
    index.add(data)
    result = index.search([[1, 0]], k=2)
    assert set(result.ids[0]) == {0, 1}
    np.testing.assert_allclose(result.distances[0], [0, 0], atol=1e-6)


@pytest.mark.unit
@pytest.mark.parametrize("l2", [False, True])
@pytest.mark.parametrize("use_mask", [False, True])
def test_heap_kernel_against_sort(use_mask, l2):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(20, 50)).astype(np.float32)  # the products <q, x> of 20 queries and 50 rows
    sq_norms = rng.random(50).astype(np.float32) if l2 else np.zeros(1, np.float32)
    raw = sq_norms[None, :] - np.float32(2.0) * scores if l2 else -scores  # what the kernel ranks by
    mask = rng.random(50) < 0.5 if use_mask else np.ones(50, bool)
    keys = np.full((20, 7), np.inf, dtype=np.float32)
    rows = np.full((20, 7), -1, dtype=np.int64)
    topk.push_block(np.ascontiguousarray(scores[:, :30]), 0, l2, sq_norms, mask, use_mask, keys, rows)  # two
    topk.push_block(np.ascontiguousarray(scores[:, 30:]), 30, l2, sq_norms, mask, use_mask, keys, rows)  # blocks
    topk.sort_heaps(keys, rows)
    masked = np.where(mask[None, :], raw, np.inf)
    np.testing.assert_array_equal(keys, np.sort(masked, axis=1)[:, :7])
    np.testing.assert_array_equal(np.take_along_axis(masked, rows, axis=1), keys)


def test_memory_stays_bounded_by_blocks(monkeypatch):
    """The search never materialises a (queries x points) matrix larger than one block."""
    seen = []
    real = topk._products

    def spy(q, block, out):
        seen.append((len(q), len(block)))
        assert out.shape == (len(q), len(block))
        return real(q, block, out)

    monkeypatch.setattr(topk, "_products", spy)
    monkeypatch.setattr(topk, "BASE_BLOCK", 1000)
    monkeypatch.setattr(topk, "QUERY_BLOCK", 64)
    index = FlatIndex(8, "dot")
    index.add(np.random.default_rng(0).normal(size=(5000, 8)))
    index.search(np.ones((200, 8)), k=3)
    assert max(q * b for q, b in seen) <= 64 * 1000
    assert len(seen) == 4 * 5
