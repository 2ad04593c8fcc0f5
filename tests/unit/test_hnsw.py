"""HNSWIndex: parameters, level distribution, graph structure, ef, incremental adds, deletes, filters, and
save/load (in memory and memory-mapped) on small seeded data."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lookalike.index.hnsw as hnsw_module
from lookalike.errors import DimensionMismatchError, InvalidParameterError
from lookalike.index.flat import FlatIndex
from lookalike.index.hnsw import HNSWIndex
from lookalike.index.registry import from_config
from tests.conftest import clustered

pytestmark = pytest.mark.unit
DIM = 24


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b) - {-1}) / len(b) for a, b in zip(found, truth)]))


def data_and_queries(n=2000, n_queries=50, seed=7):
    data = clustered(n + n_queries, DIM, 10, seed)
    return data[:n], data[n:]


@pytest.fixture(scope="module")
def built():
    x, q = data_and_queries()
    index = HNSWIndex(DIM, "l2", M=8, ef_construction=64)
    index.add(x)
    return index, x, q


@pytest.mark.parametrize(
    "params", [{"M": 1}, {"M": 2.5}, {"ef_construction": 0}, {"seed": -1}, {"M": True}, {"ef_construction": "64"}]
)
def test_bad_build_parameters_raise(params):
    with pytest.raises(InvalidParameterError):
        HNSWIndex(DIM, "l2", **params)


def test_config_round_trips_through_the_registry():
    index = HNSWIndex(DIM, "cosine", M=12, ef_construction=50, seed=3)
    twin = from_config(index.config())
    assert isinstance(twin, HNSWIndex) and (twin.M, twin.ef_construction, twin.seed) == (12, 50, 3)
    assert HNSWIndex.query_defaults == {"ef": 64}


def test_bad_ef_raises(built):
    index, _, q = built
    for bad in (0, -3, 2.5, "10"):
        with pytest.raises(InvalidParameterError):
            index.search(q[:2], k=3, ef=bad)


def test_levels_follow_the_papers_distribution():
    index = HNSWIndex(DIM, "l2", M=16, seed=5)
    levels = index.draw_levels(200_000, start=0)
    # P(level >= l) = M^-l with mL = 1/ln(M)
    for level in (1, 2):
        assert np.mean(levels >= level) == pytest.approx(16.0**-level, rel=0.1)
    np.testing.assert_array_equal(levels, index.draw_levels(200_000, start=0))  # seeded
    assert not np.array_equal(levels[:1000], index.draw_levels(1000, start=5000))  # later batches differ


def test_graph_structure(built):
    index, _, _ = built
    levels, links0, counts0, upper_start, upper_links, upper_counts = index._graph()
    assert levels[index.entry_point] == levels.max() == index.max_level
    assert links0.shape == (index.n_rows, 2 * index.M) and upper_links.shape[1] == index.M
    assert (counts0 >= 1).all() and (counts0 <= 2 * index.M).all() and (upper_counts <= index.M).all()
    assert len(upper_counts) == levels.sum(), "one upper block per node and layer above 0"
    assert (upper_start[levels == 0] == -1).all()
    mean_degree = counts0.mean()
    assert index.M <= mean_degree <= 2 * index.M


def test_ef_below_k_is_raised_to_k(built):
    index, x, q = built
    result = index.search(q, k=20, ef=1)
    assert (result.ids >= 0).all() and result.ids.shape == (len(q), 20)
    flat = FlatIndex(DIM, "l2")
    flat.add(x)
    assert recall(result.ids, flat.search(q, k=20).ids) >= 0.9


def test_single_and_batch_search_agree(built):
    index, _, q = built
    batch = index.search(q, k=5, ef=32)
    for i in (0, 17, 49):
        one = index.search(q[i], k=5, ef=32)
        np.testing.assert_array_equal(one.ids[0], batch.ids[i])
        np.testing.assert_allclose(one.distances[0], batch.distances[i], rtol=1e-6)


@pytest.mark.parametrize("metric", ["l2", "cosine", "dot"])
def test_the_single_query_short_way_answers_as_the_general_path(metric):
    from lookalike.index.base import Index

    x, q = data_and_queries(n=800)
    index = HNSWIndex(DIM, metric, M=8, ef_construction=48)
    index.add(x, np.arange(800) * 5 + 1)
    for row, k, params in ((q[0], 10, {}), (q[1][None, :], 3, {"ef": 16}), (q[2], 900, {"ef": 20})):
        fast = index.search(row, k, **params)
        general = Index.search(index, row, k, **params)
        np.testing.assert_array_equal(fast.ids, general.ids)
        np.testing.assert_allclose(fast.distances, general.distances, rtol=1e-6, atol=1e-6)  # cosine: rounding
    assert (index.search(q[2], 900).ids[0, 800:] == -1).all()
    frozen = q[3].copy()
    frozen.flags.writeable = False  # e.g. np.frombuffer: read-only input is fine
    np.testing.assert_array_equal(index.search(frozen, 5).ids, Index.search(index, frozen, 5).ids)


def test_the_short_way_leaves_bad_input_to_the_general_checks(built):
    from lookalike.errors import DimensionMismatchError, InvalidKError, NonFiniteVectorError, ZeroVectorError

    index, _, q = built
    with pytest.raises(NonFiniteVectorError):
        index.search(np.full(DIM, np.nan, np.float32), k=3)
    with pytest.raises(DimensionMismatchError):
        index.search(np.ones((DIM, 1), np.float32), k=3)
    with pytest.raises(InvalidKError):
        index.search(q[0], k=True)
    with pytest.raises(InvalidParameterError):
        index.search(q[0], k=3, ef=True)
    cosine = HNSWIndex(DIM, "cosine")
    cosine.add(q)
    for zero in (np.zeros(DIM, np.float32), np.array([1e-30, -1e-30] + [0.0] * (DIM - 2), np.float32)):
        with pytest.raises(ZeroVectorError):  # the second one's squares underflow: no direction either
            cosine.search(zero, k=3)


def test_more_ef_does_not_lose_recall(built):
    index, x, q = built
    flat = FlatIndex(DIM, "l2")
    flat.add(x)
    truth = flat.search(q, k=10).ids
    values = [recall(index.search(q, k=10, ef=ef).ids, truth) for ef in (10, 20, 40, 80)]
    assert values[-1] >= 0.98 and all(b >= a - 0.02 for a, b in zip(values, values[1:])), values


def test_single_thread_builds_are_reproducible():
    import numba

    x, _ = data_and_queries(n=600)
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        graphs = []
        for _ in range(2):
            index = HNSWIndex(DIM, "l2", M=6, ef_construction=32, seed=11)
            index.add(x)
            graphs.append(index._graph())
    finally:
        numba.set_num_threads(previous)
    for a, b in zip(*graphs):
        np.testing.assert_array_equal(a, b)


def test_incremental_adds_after_search_are_found():
    x, q = data_and_queries(n=1500)
    index = HNSWIndex(DIM, "cosine", M=8, ef_construction=64)
    index.add(x[:500])
    index.search(q, k=5)  # builds the search scratch for 500 rows
    index.add(x[500:1000], np.arange(500, 1000))
    index.search(q[:1], k=5)
    index.add(x[1000:], np.arange(1000, 1500))
    own = index.search(x[::50], k=1)  # every point finds itself
    assert own.ids[:, 0].tolist() == list(range(0, 1500, 50))
    flat = FlatIndex(DIM, "cosine")
    flat.add(x)
    assert recall(index.search(q, k=10).ids, flat.search(q, k=10).ids) >= 0.95


def test_one_point_at_a_time_reuses_the_scratch():
    x, _ = data_and_queries(n=300)
    index = HNSWIndex(DIM, "l2", M=6, ef_construction=32)
    for i, row in enumerate(x):  # add one, find it at once: scratch grows by doubling, epochs carry over
        index.add(row, [i])
        assert index.search(row, k=1).ids[0, 0] == i
    assert index._workspace.tags.shape[1] < 2 * len(x)
    assert (index._workspace.locks == 0).all()


def test_a_single_point_and_k_beyond_the_size():
    index = HNSWIndex(DIM, "l2")
    index.add(np.ones((1, DIM), np.float32), [42])
    result = index.search(np.zeros(DIM, np.float32), k=3)
    assert result.ids.tolist() == [[42, -1, -1]]
    assert result.distances[0, 0] == pytest.approx(math.sqrt(DIM)) and np.isinf(result.distances[0, 1:]).all()


def test_deleted_points_are_walked_through_never_returned():
    x, q = data_and_queries(n=1500)
    index = HNSWIndex(DIM, "l2", M=8, ef_construction=64)
    index.add(x)
    removed = np.arange(0, 1500, 3)
    index.remove(removed)
    index.remove([index.labels[index.entry_point]] if index.live[index.entry_point] else [])  # dead entry point
    result = index.search(q, k=10)
    assert not np.isin(result.ids, removed).any() and (result.ids >= 0).all()
    assert not np.isin(result.ids, index.labels[~index.live]).any()


@pytest.mark.parametrize("force_graph", [False, True])
def test_filters_return_only_allowed_ids(monkeypatch, force_graph):
    if force_graph:  # never fall back to the exact scan of the allowed rows
        monkeypatch.setattr(hnsw_module, "FILTER_SCAN_FACTOR", 0)
    x, q = data_and_queries(n=2000)
    index = HNSWIndex(DIM, "l2", M=8, ef_construction=64)
    index.add(x)
    allowed = np.arange(0, 2000, 20)  # 5%
    result = index.search(q, k=10, allowed_ids=allowed)
    assert np.isin(result.ids, allowed).all() and (result.ids >= 0).all()
    flat = FlatIndex(DIM, "l2")
    flat.add(x)
    assert recall(result.ids, flat.search(q, k=10, allowed_ids=allowed).ids) >= 0.9


def test_selective_filters_use_the_exact_scan():
    index = HNSWIndex(DIM, "l2")
    index.add(clustered(1000, DIM, 5, 1))
    assert index._scan_is_cheaper(n_allowed=50, ef=64)
    assert not index._scan_is_cheaper(n_allowed=900, ef=16)


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_then_add(tmp_path, mmap):
    x, q = data_and_queries(n=1200)
    index = HNSWIndex(DIM, "cosine", M=8, ef_construction=48, seed=4)
    index.add(x[:1000])
    index.remove([3, 4])
    index.save(tmp_path / "ix")
    loaded = HNSWIndex.load(tmp_path / "ix", mmap=mmap)
    assert (loaded.M, loaded.ef_construction, loaded.seed, loaded.entry_point) == (8, 48, 4, index.entry_point)
    for a, b in zip(index._graph(), loaded._graph()):
        np.testing.assert_array_equal(a, b)
    for k, ef in ((10, 64), (3, 20)):
        before, after = index.search(q, k=k, ef=ef), loaded.search(q, k=k, ef=ef)
        np.testing.assert_array_equal(before.ids, after.ids)
        np.testing.assert_array_equal(before.distances, after.distances)
    on_disk = np.load(tmp_path / "ix" / "links0.npy")
    loaded.add(x[1000:], np.arange(1000, 1200))  # copy on write: the files do not change
    np.testing.assert_array_equal(np.load(tmp_path / "ix" / "links0.npy"), on_disk)
    assert loaded.search(x[1100], k=1).ids[0, 0] == 1100


def test_load_refuses_inconsistent_graph_files(tmp_path):
    from lookalike.errors import StorageFormatError

    index = HNSWIndex(DIM, "l2", M=8)
    index.add(clustered(100, DIM, 3, 2))
    index.save(tmp_path / "ix")
    state = {name: arr for name, arr in zip(hnsw_module.GRAPH_ARRAYS, index._graph())}
    fresh = HNSWIndex(DIM, "l2", M=8)
    fresh._labels.extend(index.labels)  # as load() does before _restore
    fresh._live.extend(index.live)
    with pytest.raises(StorageFormatError):
        fresh._restore({**state, "links0": state["links0"][:, :4]}, {"entry_point": 0})
    with pytest.raises(StorageFormatError):
        fresh._restore(state, {"entry_point": 100})
    with pytest.raises(StorageFormatError):
        fresh._restore({k: v for k, v in state.items() if k != "levels"}, {"entry_point": 0})
    entry = index.entry_point
    damaged = {  # each would send the bound-check-free kernels outside an array
        "links0": np.where(state["links0"] == 5, 100, state["links0"]),
        "counts0": state["counts0"] + 2 * index.M,
        "upper_start": np.where(state["upper_start"] >= 0, state["upper_start"] + 1000, -1).astype(np.int32),
        "levels": np.where(np.arange(100) == entry, 0, state["levels"]).astype(np.int32),
    }
    for name, bad in damaged.items():
        with pytest.raises(StorageFormatError):
            fresh._restore({**state, name: bad.astype(np.int32)}, {"entry_point": entry})
    fresh._restore(state, {"entry_point": entry})  # the intact arrays load
    assert fresh.entry_point == entry


def test_query_edges_lift_recall_of_out_of_distribution_queries_and_keep_the_graph_sound(tmp_path):
    """Queries from another distribution than the points (moved off the data along one direction, as text
    queries sit apart from photos): linking each sample query's nearest points raises recall at a fixed ef."""
    from lookalike import FlatIndex, HNSWIndex

    rng = np.random.default_rng(5)
    centers = rng.standard_normal((40, 32)).astype(np.float32)
    points = (centers[rng.integers(0, 40, 6000)] + 0.5 * rng.standard_normal((6000, 32))).astype(np.float32)
    gap = rng.standard_normal(32).astype(np.float32) * 2.0

    def off_distribution(n):
        return (centers[rng.integers(0, 40, n)] + 0.5 * rng.standard_normal((n, 32)) + gap).astype(np.float32)

    index = HNSWIndex(32, "cosine", M=8, ef_construction=40)
    index.add(points, np.arange(6000))
    exact = FlatIndex(32, "cosine")
    exact.add(points, np.arange(6000))
    test = off_distribution(300)
    truth = exact.search(test, 10).ids

    def recall():
        found = index.search(test, 10, ef=12).ids
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found.tolist(), truth.tolist())])

    before = recall()
    added = index.add_query_edges(off_distribution(2000), n_neighbors=10)
    after = recall()
    assert added > 0 and after > before, (before, after)
    _, links0, counts0, *_ = index._graph()
    assert counts0.max() <= 2 * index.M
    for row in range(0, 6000, 37):
        neighbours = links0[row, : counts0[row]]
        assert row not in neighbours and len(set(neighbours.tolist())) == len(neighbours)
    index.save(tmp_path / "hnsw")
    reloaded = HNSWIndex.load(tmp_path / "hnsw")
    np.testing.assert_array_equal(reloaded.search(test, 10, ef=12).ids, index.search(test, 10, ef=12).ids)
    with pytest.raises(DimensionMismatchError):
        index.add_query_edges(np.ones((3, 5), np.float32))


def test_collection_adapts_its_graph_index_and_keeps_it(tmp_path):
    import lookalike
    from lookalike.errors import InvalidInputError

    rng = np.random.default_rng(6)
    points = rng.standard_normal((1500, 16)).astype(np.float32)
    with lookalike.Database(tmp_path / "db") as db:
        col = db.create_collection("c", dim=16, metric="cosine")
        col.add(list(range(1500)), points)
        col.create_index("hnsw", M=8, ef_construction=32)
        col.create_index("ivf", nlist=16, default=False)
        report = col.adapt_index("hnsw", rng.standard_normal((200, 16)).astype(np.float32) + 1.0)
        assert report["links_added"] > 0 and report["queries"] == 200
        q = rng.standard_normal((20, 16)).astype(np.float32) + 1.0
        expected = col.query(q, k=5, index="hnsw", ef=10).ids
        with pytest.raises(InvalidInputError):
            col.adapt_index("ivf", q)
    with lookalike.Database(tmp_path / "db") as db:  # the learned links were saved with the graph
        np.testing.assert_array_equal(db.get_collection("c").query(q, k=5, index="hnsw", ef=10).ids, expected)
