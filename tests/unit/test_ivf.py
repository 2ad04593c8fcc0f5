"""IVFIndex: exactness at nprobe = nlist, nprobe rules, list maintenance, tombstones, persistence, compaction."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import IndexNotBuiltError, InvalidParameterError
from lookalike.index.flat import FlatIndex
from lookalike.index.ivf import InvertedLists, IVFIndex
from lookalike.kernels.kmeans import assign
from tests.conftest import clustered

pytestmark = pytest.mark.unit

DIM = 16


@pytest.fixture(scope="module")
def data():
    x = clustered(2100, DIM, 12, seed=21)
    return x[:2000], x[2000:]


def built(x, metric="l2", nlist=16, **params):
    index = IVFIndex(DIM, metric, nlist=nlist, **params)
    index.add(x)
    return index


def assert_same_neighbours(a, b):
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.distances, b.distances, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("metric", ["l2", "cosine", "dot"])
def test_nprobe_nlist_is_exactly_flat(data, metric):
    x, q = data
    ivf = built(x, metric)
    flat = FlatIndex(DIM, metric)
    flat.add(x)
    assert_same_neighbours(ivf.search(q, 10, nprobe=16), flat.search(q, 10))
    assert_same_neighbours(ivf.search(q[0], 10, nprobe=16), flat.search(q[0], 10))  # the one-thread path


def test_nprobe_above_nlist_is_clamped(data):
    x, q = data
    ivf = built(x)
    assert_same_neighbours(ivf.search(q, 5, nprobe=1000), ivf.search(q, 5, nprobe=16))


def test_probing_fewer_lists_scans_fewer_and_recall_grows(data):
    x, q = data
    ivf = built(x, nlist=32)
    exact = ivf.search(q, 10, nprobe=32).ids
    recalls = [np.mean([len(set(a) & set(b)) for a, b in zip(ivf.search(q, 10, nprobe=p).ids, exact)]) / 10
               for p in (1, 4, 32)]
    assert recalls[0] <= recalls[1] <= recalls[2] == 1.0
    assert recalls[0] < 1.0  # nprobe=1 really skipped lists


@pytest.mark.parametrize("nprobe", [0, -3, 2.0, True, "4"])
def test_bad_nprobe_raises(data, nprobe):
    x, q = data
    ivf = built(x)
    with pytest.raises(InvalidParameterError, match="nprobe"):
        ivf.search(q, 5, nprobe=nprobe)


def test_unknown_query_parameter_raises(data):
    x, q = data
    with pytest.raises(InvalidParameterError, match="ef"):
        built(x).search(q, 5, ef=10)


@pytest.mark.parametrize(
    "params", [{"nlist": 0}, {"nlist": 1.5}, {"n_iter": 0}, {"seed": -1}, {"nlist": 8, "max_train_points": 4}]
)
def test_bad_build_parameters_raise(params):
    with pytest.raises(InvalidParameterError):
        IVFIndex(DIM, **params)


def test_adds_after_training_land_in_their_nearest_list(data):
    x, _ = data
    ivf = built(x[:1000])
    for chunk in (x[1000:1500], x[1500:1501], x[1501:2000]):
        ivf.add(chunk)
    offsets, rows, _ = ivf._lists.packed()
    assert sorted(rows.tolist()) == list(range(2000))
    vectors = ivf.vectors[rows]
    list_of_slot = np.repeat(np.arange(ivf.trained_nlist), np.diff(offsets))
    np.testing.assert_array_equal(list_of_slot, assign(vectors, ivf.centroids)[0])


def test_a_first_add_smaller_than_nlist_trains_fewer_lists_then_grows(data):
    x, q = data
    ivf = IVFIndex(DIM, nlist=16)
    ivf.add(x[:5])
    assert ivf.trained_nlist == 5
    assert (ivf.search(q, 5, nprobe=1).ids >= 0).all()  # k hits whenever k points exist
    for i in range(5, 40):  # one by one, as a collection receives them
        ivf.add(x[i])
    assert ivf.trained_nlist == 16 and len(ivf) == 40
    flat = FlatIndex(DIM)
    flat.add(x[:40])
    assert_same_neighbours(ivf.search(q, 7, nprobe=16), flat.search(q, 7))


def test_thin_lists_are_widened_to_k_hits(data):
    x, q = data
    ivf = built(x[:100], nlist=50)
    result = ivf.search(q, 20, nprobe=1)
    assert (result.ids >= 0).all() and (np.diff(result.distances, axis=1) >= 0).all()


def test_deleted_points_are_never_returned(data):
    x, q = data
    ivf = built(x)
    flat = FlatIndex(DIM)
    flat.add(x)
    gone = np.arange(0, 2000, 2)
    ivf.remove(gone)
    flat.remove(gone)
    for nprobe in (1, 4, 16):
        ids = ivf.search(q, 10, nprobe=nprobe).ids
        assert not np.isin(ids, gone).any() and (ids >= 0).all()
    assert_same_neighbours(ivf.search(q, 10, nprobe=16), flat.search(q, 10))
    allowed = np.arange(0, 200)  # half of them deleted
    ids = ivf.search(q, 10, nprobe=2, allowed_ids=allowed).ids
    assert np.isin(ids, allowed[1::2]).all()


def test_untrained_index():
    ivf = IVFIndex(DIM, nlist=4)
    assert not ivf.is_trained and ivf.trained_nlist == 0
    assert (ivf.search(np.ones(DIM), 3).ids == -1).all()  # empty index: padded rows
    with pytest.raises(IndexNotBuiltError):
        ivf._search_rows(np.ones((1, DIM), np.float32), 3, None)


def test_explicit_train_redistributes_stored_rows(data):
    x, q = data
    ivf = built(x[:300], nlist=4)
    ivf.train(x)
    assert ivf.trained_nlist == 4 and int(ivf.list_sizes().sum()) == 300
    flat = FlatIndex(DIM)
    flat.add(x[:300])
    assert_same_neighbours(ivf.search(q, 5, nprobe=4), flat.search(q, 5))


@pytest.mark.persistence
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_gives_identical_results(tmp_path, data, mmap):
    x, q = data
    ivf = built(x, metric="cosine")
    ivf.remove([3, 4, 5])
    ivf.save(tmp_path / "ivf")
    back = IVFIndex.load(tmp_path / "ivf", mmap=mmap)
    assert back.trained_nlist == ivf.trained_nlist and len(back) == len(ivf)
    for nprobe in (1, 3, 16):
        assert_same_neighbours(back.search(q, 10, nprobe=nprobe), ivf.search(q, 10, nprobe=nprobe))
    # writes after a memory-mapped load copy first, then behave like the in-memory twin
    extra = clustered(50, DIM, 3, seed=99)
    for index in (ivf, back):
        index.add(extra, np.arange(5000, 5050))
    assert_same_neighbours(back.search(q, 10, nprobe=3), ivf.search(q, 10, nprobe=3))


@pytest.mark.persistence
def test_save_load_of_an_untrained_index(tmp_path):
    IVFIndex(DIM, nlist=4).save(tmp_path / "empty")
    back = IVFIndex.load(tmp_path / "empty")
    assert not back.is_trained and len(back) == 0


@pytest.mark.persistence
def test_restore_refuses_arrays_that_disagree(data):
    from lookalike.errors import StorageFormatError

    x, _ = data
    state = built(x)._state()

    def twin():  # as load does: the base arrays first, then _restore
        index = IVFIndex(DIM, nlist=16)
        index._vectors.extend(x)
        index._labels.extend(np.arange(len(x)))
        index._live.extend(np.ones(len(x), bool))
        return index

    twin()._restore(state, {})  # the intact state is accepted
    for broken in (
        {**state, "list_offsets": state["list_offsets"][:-1]},  # one list short
        {**state, "list_rows": state["list_rows"] + 5000},  # rows past the end
        {k: v for k, v in state.items() if k != "list_rows"},
    ):
        with pytest.raises(StorageFormatError):
            twin()._restore(broken, {})


def test_a_bulk_add_puts_each_list_in_consecutive_rows(data):
    """The scan reads vectors[row]: after one bulk add every list's rows are consecutive (sequential reads)."""
    x, q = data
    ivf = built(x)
    offsets, rows, _ = ivf._lists.packed()
    np.testing.assert_array_equal(rows, np.arange(len(x)))
    flat = FlatIndex(DIM)
    flat.add(x)
    got = ivf.search(q, 10, nprobe=ivf.trained_nlist)  # every list: exact, labels follow their vectors
    np.testing.assert_array_equal(got.ids, flat.search(q, 10).ids)


def test_compact_keeps_the_centroids_and_the_answers(data):
    x, q = data
    ivf = built(x)
    ivf.remove(np.arange(0, 2000, 3))
    fresh = ivf.compact()
    np.testing.assert_array_equal(fresh.centroids, ivf.centroids)
    assert len(fresh) == len(ivf) and fresh.n_deleted == 0
    for nprobe in (2, 16):
        assert_same_neighbours(fresh.search(q, 10, nprobe=nprobe), ivf.search(q, 10, nprobe=nprobe))


def test_compact_retrains_when_more_lists_became_possible(data):
    x, _ = data
    ivf = built(x[:6], nlist=16)
    ivf.add(x[6:16])  # 16 points: growth already retrained to the full nlist
    assert ivf.trained_nlist == 16
    small = built(x[:6], nlist=16)
    small.add(x[6:9])  # 9 points: 6 lists, not yet doubled
    assert small.trained_nlist == 6
    assert small.compact().trained_nlist == 9


def test_inverted_lists_keep_every_entry_through_moves_and_repacks():
    rng = np.random.default_rng(0)
    lists = InvertedLists(7, 3, np.int64)
    expected: dict[int, list[int]] = {p: [] for p in range(7)}
    row = 0
    for batch in [500, 1, 1, 3, 40, 1, 2, 9000, 1, 5]:
        ids = rng.integers(0, 7, size=batch)
        rows = np.arange(row, row + batch)
        lists.append(ids, rows, np.repeat(rows[:, None], 3, axis=1))  # each slot's code: its row, thrice
        for p, r in zip(ids.tolist(), rows.tolist()):
            expected[p].append(r)
        row += batch
        offsets, got_rows, got_codes = lists.packed()
        for p in range(7):
            assert got_rows[offsets[p] : offsets[p + 1]].tolist() == expected[p]
        np.testing.assert_array_equal(got_codes[:, 0], got_rows)
    assert lists.holes <= max(int(lists.size.sum()), 4096)


@pytest.mark.parametrize("metric", ["l2", "cosine", "dot"])
def test_single_query_short_path_answers_as_the_general_path(metric):
    from lookalike import IVFIndex

    rng = np.random.default_rng(11)
    data = rng.standard_normal((3000, 24)).astype(np.float32)
    index = IVFIndex(24, metric, nlist=32)
    index.add(data, np.arange(3000) * 7)
    for row in range(20):
        q = rng.standard_normal(24).astype(np.float32)
        short = index.search(q, 10, nprobe=4)  # one float32 vector: the short path
        general = index.search(q.astype(np.float64).tolist(), 10, nprobe=4)  # a list: the general path
        np.testing.assert_array_equal(short.ids, general.ids)
        np.testing.assert_allclose(short.distances, general.distances, rtol=1e-5, atol=1e-6)
    assert index.search(np.zeros(24, np.float32) if metric != "cosine" else np.ones(24, np.float32), 3).ids.shape == (1, 3)


@pytest.mark.parametrize("index_type", ["ivf", "hnsw"])
def test_the_kernels_refuse_a_nan_or_a_zero_query_through_the_general_path(index_type):
    """The single-query kernels check the query themselves (NaN or inf; zero under cosine) and hand it back to
    the general path, which raises the typed error."""
    from lookalike.errors import NonFiniteVectorError, ZeroVectorError
    from lookalike.index.registry import from_config

    rng = np.random.default_rng(3)
    index = from_config({"type": index_type, "dim": 24, "metric": "cosine"})
    index.add(rng.standard_normal((500, 24)).astype(np.float32))
    bad = rng.standard_normal(24).astype(np.float32)
    for value in (np.nan, np.inf, -np.inf):
        bad[5] = value
        with pytest.raises(NonFiniteVectorError):
            index.search(bad, 3)
    with pytest.raises(ZeroVectorError):
        index.search(np.zeros(24, np.float32), 3)
