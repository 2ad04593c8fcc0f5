"""LSHIndex: hashing and multi-probe kernels against NumPy references, bucket layout, lifecycle, persistence."""

from __future__ import annotations

import itertools
from functools import partial

import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.index.flat import FlatIndex
from lookalike.index.lsh import LSHIndex, _sorted_buckets
from lookalike.kernels import hashing
from tests.conftest import clustered
from tests.unit.test_rp_forest import assert_roundtrip, built

pytestmark = pytest.mark.unit


_lsh = partial(built, LSHIndex, {"n_tables": 4, "n_bits": 6}, n=800, metric="cosine")


def test_sign_codes_match_numpy(rng):
    n_tables, n_bits = 3, 11
    projections = rng.normal(size=(50, n_tables * n_bits)).astype(np.float32)
    bits = (projections > 0).reshape(50, n_tables, n_bits).astype(np.int64)
    expected = (bits << np.arange(n_bits)).sum(axis=2)
    np.testing.assert_array_equal(hashing.sign_codes(projections, n_tables, n_bits), expected)


def test_sign_codes_use_up_to_62_bits(rng):
    projections = rng.normal(size=(20, 62)).astype(np.float32)
    codes = hashing.sign_codes(projections, 1, 62)[:, 0]
    expected = [sum(1 << b for b in range(62) if p[b] > 0) for p in projections]
    assert codes.tolist() == expected


@pytest.mark.parametrize("n_probes", [1, 5, 40, 256])
def test_probe_masks_are_the_cheapest_flips_in_order(rng, n_probes):
    """Reference: enumerate every flip set of 8 bits, cost = sum of squared projections of the flipped bits."""
    n_bits = 8
    projection = rng.normal(size=n_bits).astype(np.float32)
    out = np.empty(n_probes, dtype=np.int64)
    count = hashing.probe_masks(projection, n_probes, out)
    assert count == n_probes and out[0] == 0
    sq = projection.astype(np.float64) ** 2
    cost = {mask: sum(sq[b] for b in range(n_bits) if mask >> b & 1) for mask in range(1 << n_bits)}
    got = [cost[m] for m in out[:count]]
    assert len(set(out[:count].tolist())) == count  # each bucket once
    assert got == sorted(got)  # cheapest first
    np.testing.assert_allclose(got, sorted(cost.values())[:count], rtol=1e-9)


def test_probe_masks_stop_at_every_bucket():
    out = np.empty(100, dtype=np.int64)
    count = hashing.probe_masks(np.array([0.5, -1.0, 2.0], np.float32), 100, out)
    assert count == 8 and sorted(out[:count].tolist()) == list(range(8))


def test_find_bucket(rng):
    keys = np.unique(rng.integers(0, 1000, size=300))
    for code in range(-1, 1001):
        pos = hashing.find_bucket(keys, 0, len(keys), code)
        assert (pos >= 0) == (code in set(keys.tolist()))
        if pos >= 0:
            assert keys[pos] == code


def test_sorted_buckets_layout(rng):
    codes = rng.integers(0, 20, size=(300, 3))
    b = _sorted_buckets(codes)
    for t in range(3):
        first, last = b["table_first_bucket"][t], b["table_first_bucket"][t + 1]
        keys = b["bucket_keys"][first:last]
        assert (np.diff(keys) > 0).all()
        np.testing.assert_array_equal(keys, np.unique(codes[:, t]))
        for j in range(first, last):
            rows = b["bucket_rows"][b["bucket_starts"][j] : b["bucket_starts"][j + 1]]
            np.testing.assert_array_equal(np.sort(rows), np.flatnonzero(codes[:, t] == b["bucket_keys"][j]))


def test_probing_every_bucket_is_exact():
    for metric in ("cosine", "l2", "dot"):
        index, x = _lsh(metric=metric)
        flat = FlatIndex(x.shape[1], metric)
        flat.add(x)
        q = clustered(20, x.shape[1], 6, seed=4)
        got, want = index.search(q, 5, n_probes=64), flat.search(q, 5)
        np.testing.assert_array_equal(got.ids, want.ids)
        np.testing.assert_allclose(got.distances, want.distances, rtol=1e-4, atol=1e-4)
        assert index.last_stats["mean_distance_computations"] == len(x)


def test_candidates_are_the_union_of_probed_buckets():
    """last_stats counts distinct rows of the probed buckets: check against a NumPy model of the tables."""
    index, x = _lsh(n_tables=3, n_bits=5)
    q = clustered(10, x.shape[1], 6, seed=8)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    proj = q @ index._planes.T
    codes = index._codes.view
    for i in range(len(q)):
        index.search(q[i], 3, n_probes=3)
        union = set()
        for t in range(3):
            p = proj[i, t * 5 : (t + 1) * 5].astype(np.float64)
            own = sum(1 << b for b in range(5) if p[b] > 0)
            flips = sorted((sum(p[b] ** 2 for b in s), sum(1 << b for b in s))
                           for r in range(6) for s in itertools.combinations(range(5), r))
            for _, flip in flips[:3]:
                union |= set(np.flatnonzero(codes[:, t] == own ^ flip).tolist())
        assert index.last_stats["distance_computations"] == len(union)


def test_pending_rows_are_found_before_the_rebuild():
    x = clustered(3000, 8, 6, seed=5)
    index = LSHIndex(8, "l2", n_tables=4, n_bits=8)
    index.add(x[:2900])
    index.add(x[2900:])  # 100 < REBUILD_MIN: pending, matched by code
    assert index._n_sorted == 2900
    np.testing.assert_array_equal(index.search(x[2900:], 1, n_probes=1).ids[:, 0], np.arange(2900, 3000))


def test_buckets_are_resorted_once_pending_rows_pile_up():
    x = clustered(3000, 8, 6, seed=5)
    index = LSHIndex(8, "cosine", n_tables=2, n_bits=6)
    sorted_after = []
    for start in range(0, 3000, 500):
        index.add(x[start : start + 500])
        sorted_after.append(index._n_sorted)
    # re-sorted when the pending rows pass max(REBUILD_MIN=1024, sorted / 8)
    assert sorted_after == [0, 0, 1500, 1500, 1500, 3000]
    np.testing.assert_array_equal(index.search(x, 1, n_probes=1).ids[:, 0], np.arange(3000))


def test_l2_hashes_centred_data():
    """Data far from the origin: without centring every code would be the same and a bucket the whole set."""
    x = clustered(2000, 8, 20, seed=6) + 50.0
    index = LSHIndex(8, "l2", n_tables=4, n_bits=8)
    index.add(x)
    index.search(x[:50], 10, n_probes=1)
    assert index.last_stats["mean_distance_computations"] < 0.2 * len(x)


def test_removed_ids_are_never_returned():
    index, x = _lsh()
    gone = np.arange(0, len(x), 3)
    index.remove(gone)
    ids = index.search(x[:50], 10, n_probes=64).ids
    assert not np.isin(ids, gone).any() and (ids >= 0).all()


def test_filtered_search_stays_in_the_allowed_set():
    index, x = _lsh()
    allowed = np.arange(5, len(x), 7)
    res = index.search(x[:20], 10, allowed_ids=allowed, n_probes=2)
    assert np.isin(res.ids, allowed).all() and (res.ids >= 0).all()


@pytest.mark.persistence
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_gives_identical_results(tmp_path, mmap):
    index, x = _lsh(metric="l2")
    index.add(clustered(30, 8, 6, seed=9), np.arange(1000, 1030))  # pending rows
    index.remove([3, 1001])
    loaded = assert_roundtrip(index, x[:30], tmp_path, mmap, n_probes=8)
    np.testing.assert_array_equal(loaded._center, index._center)
    assert isinstance(loaded._buckets["bucket_rows"], np.memmap) == mmap


def test_save_load_of_an_empty_index(tmp_path):
    LSHIndex(4).save(tmp_path / "empty")
    loaded = LSHIndex.load(tmp_path / "empty")
    assert len(loaded) == 0 and (loaded.search(np.ones(4), 3).ids == -1).all()
    loaded.add(np.eye(4, dtype=np.float32))
    assert loaded.search(np.eye(4), 1, n_probes=16).ids[:, 0].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "params",
    [{"n_bits": 63}, {"n_bits": 0}, {"n_tables": 0}, {"n_tables": 2.0}, {"seed": -1}, {"n_bits": True}],
)
def test_bad_build_params(params):
    with pytest.raises(InvalidParameterError):
        LSHIndex(4, **params)


@pytest.mark.parametrize("n_probes", [0, -1, 1.5, True, 1 << 20])
def test_bad_n_probes(n_probes):
    index, x = _lsh(n=50)
    with pytest.raises(InvalidParameterError):
        index.search(x[:1], 3, n_probes=n_probes)
