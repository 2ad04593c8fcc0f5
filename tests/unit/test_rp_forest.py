"""RPForestIndex: tree kernels against NumPy references, the flat forest layout, lifecycle and persistence."""

from __future__ import annotations

from functools import partial

import numba
import numpy as np
import pytest

from lookalike.errors import InvalidParameterError
from lookalike.index import rp_forest
from lookalike.index.flat import FlatIndex
from lookalike.index.rp_forest import RPForestIndex
from lookalike.kernels import trees
from tests.conftest import clustered

pytestmark = pytest.mark.unit


def built(index_class, defaults, n=600, dim=8, metric="l2", **params):
    """(index holding n seeded clustered points, the points); ``params`` override the build ``defaults``."""
    x = clustered(n, dim, 6, seed=3)
    index = index_class(dim, metric, **{**defaults, **params})
    index.add(x)
    return index, x


_forest = partial(built, RPForestIndex, {"n_trees": 4, "leaf_size": 10})


def _route_numpy(f, x, root):
    """Reference router over the flat arrays: right when <plane, x> + offset > 0."""
    node = root
    while node >= 0:
        side = int(f["planes"][node] @ x + f["offsets"][node] > 0)
        node = f["children"][node, side]
    return -node - 1


def _tree_leaves(f, tree):
    """Leaf ids of one tree: those reached from its root."""
    stack, leaves = [int(f["roots"][tree])], []
    while stack:
        node = stack.pop()
        if node < 0:
            leaves.append(-node - 1)
        else:
            stack.extend(int(c) for c in f["children"][node])
    return sorted(leaves)


@pytest.mark.parametrize("is_l2", [True, False])
def test_bisecting_plane_is_equidistant(rng, is_l2):
    p, q = rng.normal(size=(2, 16)).astype(np.float32)
    normal = np.empty(16, dtype=np.float32)
    offset = trees.bisecting_plane(p, q, is_l2, normal)
    assert np.linalg.norm(normal) == pytest.approx(1.0, abs=1e-5)
    if is_l2:  # margin(x) = (|x - q|^2 - |x - p|^2) / (2 |p - q|)
        x = rng.normal(size=16).astype(np.float32)
        expected = (np.sum((x - q) ** 2) - np.sum((x - p) ** 2)) / (2 * np.linalg.norm(p - q))
        assert normal @ x + offset == pytest.approx(expected, rel=1e-4)
    else:  # through the origin, along the difference of the directions
        direction = p / np.linalg.norm(p) - q / np.linalg.norm(q)
        np.testing.assert_allclose(normal, direction / np.linalg.norm(direction), atol=1e-5)
        assert offset == 0.0


def test_coinciding_points_give_a_zero_plane():
    p = np.ones(4, dtype=np.float32)
    normal = np.empty(4, dtype=np.float32)
    assert trees.bisecting_plane(p, p.copy(), True, normal) == 0.0
    assert not normal.any()


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_every_leaf_holds_the_rows_that_route_to_it(metric):
    index, _ = _forest(metric=metric)
    f = index._forest
    for tree in range(index.n_trees):
        for leaf in _tree_leaves(f, tree):
            for row in f["leaf_rows"][f["leaf_starts"][leaf] : f["leaf_starts"][leaf + 1]]:
                x = index.vectors[row]
                assert _route_numpy(f, x, f["roots"][tree]) == leaf
                assert trees.route_to_leaf(x, f["planes"], f["offsets"], f["children"], f["roots"][tree]) == leaf


def test_each_tree_is_a_partition_into_small_leaves():
    index, x = _forest(n=777)
    f = index._forest
    assert len(f["leaf_rows"]) == index.n_trees * len(x)
    for tree in range(index.n_trees):
        leaves = _tree_leaves(f, tree)
        rows = np.concatenate([f["leaf_rows"][f["leaf_starts"][j] : f["leaf_starts"][j + 1]] for j in leaves])
        np.testing.assert_array_equal(np.sort(rows), np.arange(len(x)))
        sizes = np.diff(f["leaf_starts"])[leaves]
        assert sizes.max() <= index.leaf_size and sizes.min() >= 1


def test_a_tree_that_outgrows_its_room_is_grown_again(monkeypatch):
    expected, _ = _forest()
    monkeypatch.setattr(rp_forest, "split_room", lambda n, leaf_size: 3)
    regrown, _ = _forest()
    for name in ("planes", "children", "leaf_starts", "leaf_rows"):
        np.testing.assert_array_equal(regrown._forest[name], expected._forest[name])


def test_duplicate_points_still_split():
    x = np.repeat(np.eye(3, dtype=np.float32), 50, axis=0)  # 3 distinct points, 50 copies each
    index = RPForestIndex(3, "l2", n_trees=2, leaf_size=4)
    index.add(x)
    assert np.diff(index._forest["leaf_starts"]).max() <= 4
    assert index.search(x[:1], 5).distances[0].max() == 0.0


@pytest.mark.parametrize("is_l2", [True, False])
def test_rerank_matches_numpy(rng, is_l2):
    vectors = rng.normal(size=(300, 12)).astype(np.float32)
    query = rng.normal(size=12).astype(np.float32)
    candidates = rng.integers(0, 300, size=500)  # with repeats
    out_raw, out_rows = np.empty(7, np.float32), np.empty(7, np.int64)
    seen = trees.new_seen_bits(len(vectors))
    computed = trees.rerank(query, candidates.copy(), vectors, is_l2, seen, out_raw, out_rows)
    assert not seen.any()  # left clean for the next query
    unique = np.unique(candidates)
    raw = ((vectors[unique] - query) ** 2).sum(1) if is_l2 else -(vectors[unique] @ query)
    assert computed == len(unique)
    np.testing.assert_array_equal(out_rows, unique[np.argsort(raw, kind="stable")[:7]])
    np.testing.assert_allclose(out_raw, np.sort(raw)[:7], rtol=1e-5, atol=1e-5)


def test_drop_repeats_keeps_first_occurrences_in_order(rng):
    candidates = rng.integers(0, 1000, size=3000)
    expected = candidates[np.sort(np.unique(candidates, return_index=True)[1])]
    kept = candidates.copy()
    n = trees.drop_repeats(kept, trees.new_seen_bits(1000))
    np.testing.assert_array_equal(kept[:n], expected)


def test_rerank_pads_when_few_candidates():
    vectors = np.eye(4, dtype=np.float32)
    out_raw, out_rows = np.empty(3, np.float32), np.empty(3, np.int64)
    trees.rerank(vectors[0], np.array([2, 2], np.int64), vectors, True, trees.new_seen_bits(4), out_raw, out_rows)
    assert out_rows.tolist() == [2, -1, -1] and np.isinf(out_raw[1:]).all()


@pytest.mark.parametrize("metric", ["l2", "cosine", "dot"])
def test_exhaustive_search_equals_flat(metric):
    index, x = _forest(metric=metric)
    flat = FlatIndex(x.shape[1], metric)
    flat.add(x)
    q = clustered(20, x.shape[1], 6, seed=4)
    got, want = index.search(q, 5, search_k=10**6), flat.search(q, 5)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_allclose(got.distances, want.distances, rtol=1e-4, atol=1e-4)
    assert index.last_stats["mean_distance_computations"] == len(x)


def test_search_k_bounds_the_work():
    index, x = _forest(n=2000)
    index.search(x[:10], 10, search_k=100)
    assert index.last_stats["mean_distance_computations"] <= 100
    index.search(x[:10], 10)  # -1: n_trees * k * factor
    assert index.last_stats["search_k"] > 100


def test_single_query_and_batch_agree():
    index, x = _forest()
    batch = index.search(x[:8], 5, search_k=60)
    for i in range(8):
        one = index.search(x[i], 5, search_k=60)
        np.testing.assert_array_equal(one.ids[0], batch.ids[i])


def test_forest_does_not_depend_on_thread_count():
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one, x = _forest()
        numba.set_num_threads(before)
        many, _ = _forest()
    finally:
        numba.set_num_threads(before)
    for name in ("planes", "children", "leaf_rows"):
        np.testing.assert_array_equal(one._forest[name], many._forest[name])


def test_removed_ids_are_never_returned():
    index, x = _forest()
    gone = np.arange(0, len(x), 3)
    index.remove(gone)
    ids = index.search(x[:50], 10, search_k=10**6).ids
    assert not np.isin(ids, gone).any()
    assert (ids >= 0).all()


def test_filtered_search_stays_in_the_allowed_set():
    index, x = _forest()
    allowed = np.arange(5, len(x), 7)
    res = index.search(x[:20], 10, allowed_ids=allowed)
    assert np.isin(res.ids, allowed).all()
    assert (res.ids >= 0).all()  # enough allowed points: rows are completed


def test_incremental_add_links_into_leaves_then_rebuilds():
    x = clustered(1000, 8, 6, seed=5)
    index = RPForestIndex(8, "l2", n_trees=3, leaf_size=10)
    index.add(x[:400])
    forest = index._forest
    index.add(x[400:700])  # below twice the built size: linked into leaves
    assert index._forest is forest and len(index._extra_row.view) == 300 * 3
    np.testing.assert_array_equal(index.search(x[400:700], 1, search_k=200).ids[:, 0], np.arange(400, 700))
    index.add(x[700:])  # past twice the built size: rebuilt from the live rows
    assert index._built_rows == 1000 and len(index._extra_row.view) == 0
    np.testing.assert_array_equal(index.search(x, 1, search_k=200).ids[:, 0], np.arange(1000))


def assert_roundtrip(index, queries, tmp_path, mmap, **params):
    """Saved and loaded (mapped or read), the index answers exactly as before, and still takes writes."""
    before = index.search(queries, 10, **params)
    index.save(tmp_path / "index")
    loaded = type(index).load(tmp_path / "index", mmap=mmap)
    after = loaded.search(queries, 10, **params)
    np.testing.assert_array_equal(before.ids, after.ids)
    np.testing.assert_array_equal(before.distances, after.distances)
    fresh = queries[:5] + 0.01
    loaded.add(fresh, np.arange(5000, 5005))  # after a mapped load, the first write copies what it touches
    np.testing.assert_array_equal(loaded.search(fresh, 1, **params).ids[:, 0], np.arange(5000, 5005))
    return loaded


@pytest.mark.persistence
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_gives_identical_results(tmp_path, mmap):
    index, x = _forest(metric="cosine")
    index.add(clustered(50, 8, 6, seed=9), np.arange(1000, 1050))  # some rows linked into leaves
    index.remove([3, 1001])
    loaded = assert_roundtrip(index, x[:30], tmp_path, mmap, search_k=200)
    np.testing.assert_array_equal(loaded._forest["planes"], index._forest["planes"])


def test_load_with_mmap_maps_the_tree_arrays(tmp_path):
    index, _ = _forest()
    index.save(tmp_path / "forest")
    loaded = RPForestIndex.load(tmp_path / "forest", mmap=True)
    for name in ("planes", "offsets", "children", "leaf_starts", "leaf_rows"):
        assert isinstance(loaded._forest[name], np.memmap), name


def test_save_load_of_an_empty_index(tmp_path):
    RPForestIndex(4).save(tmp_path / "empty")
    loaded = RPForestIndex.load(tmp_path / "empty")
    assert len(loaded) == 0 and (loaded.search(np.ones(4), 3).ids == -1).all()


@pytest.mark.parametrize(
    "params",
    [{"n_trees": 0}, {"n_trees": 1.5}, {"leaf_size": 0}, {"leaf_size": "8"}, {"seed": -1}, {"n_trees": True}],
)
def test_bad_build_params(params):
    with pytest.raises(InvalidParameterError):
        RPForestIndex(4, **params)


@pytest.mark.parametrize("search_k", [0, -2, 2.5, True, "all"])
def test_bad_search_k(search_k):
    index, x = _forest(n=50)
    with pytest.raises(InvalidParameterError):
        index.search(x[:1], 3, search_k=search_k)
