"""The contract every index class honours, one suite parametrized over the registry (as scikit-learn's
test_neighbors runs every algorithm through the same tests)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lookalike.errors import (
    DimensionMismatchError,
    DuplicateIdError,
    EmptyBatchError,
    IdNotFoundError,
    InvalidKError,
    InvalidParameterError,
    NonFiniteVectorError,
    StorageFormatError,
    ZeroVectorError,
)
from lookalike.index import FlatIndex, Index
from tests.conftest import EXHAUSTIVE_QUERY, INDEX_TYPES, clustered, make_index

pytestmark = pytest.mark.contract
METRICS = ["l2", "cosine", "dot"]
DIM = 16


@pytest.fixture(params=INDEX_TYPES)
def index_type(request):
    return request.param


def built(index_type: str, metric: str = "l2", n: int = 300, seed: int = 0):
    data = clustered(n, DIM, 6, seed)
    index = make_index(index_type, DIM, metric)
    index.add(data, np.arange(n) * 3 + 7)  # labels that are not row numbers
    return index, data


def test_shapes_and_dtypes(index_type):
    index, data = built(index_type)
    result = index.search(data[:5], k=4, **EXHAUSTIVE_QUERY[index_type])
    assert result.ids.shape == (5, 4) and result.ids.dtype == np.int64
    assert result.distances.shape == (5, 4) and result.distances.dtype == np.float32
    assert (np.diff(result.distances, axis=1) >= -1e-6).all(), "distances must be sorted ascending"
    one = index.search(data[0], k=4, **EXHAUSTIVE_QUERY[index_type])
    assert one.ids.shape == (1, 4), "a 1-D query is a batch of one"
    assert len(index) == 300 and index.dim == DIM and index.metric == "l2"


@pytest.mark.parametrize("metric", METRICS)
def test_exhaustive_parameters_find_the_exact_neighbours(index_type, metric):
    index, data = built(index_type, metric)
    flat = FlatIndex(DIM, metric)
    flat.add(data, np.arange(300) * 3 + 7)
    queries = clustered(20, DIM, 6, seed=1)
    got = index.search(queries, k=5, **EXHAUSTIVE_QUERY[index_type])
    want = flat.search(queries, k=5)
    overlap = np.mean([len(set(g) & set(w)) / 5 for g, w in zip(got.ids, want.ids)])
    floor = 0.9 if index_type in ("lsh", "ivfpq", "sq8") else 0.99
    assert overlap >= floor
    assert got.ids[:, 0].tolist() == want.ids[:, 0].tolist() or overlap < 1


def test_k_larger_than_index_pads(index_type):
    index, data = built(index_type, n=30)
    result = index.search(data[:2], k=50, **EXHAUSTIVE_QUERY[index_type])
    assert result.ids.shape == (2, 50)
    assert (result.ids[:, 30:] == -1).all() and np.isinf(result.distances[:, 30:]).all()
    assert (result.ids[:, :1] >= 0).all()


def test_empty_index_answers_padded_rows(index_type):
    index = make_index(index_type, DIM, "l2")
    result = index.search(np.ones((3, DIM), np.float32), k=5)
    assert (result.ids == -1).all() and np.isinf(result.distances).all()
    assert len(index) == 0


def test_bad_input_raises_typed_errors_and_changes_nothing(index_type):
    index, data = built(index_type, n=50)
    with pytest.raises(DimensionMismatchError):
        index.add(np.ones((2, DIM + 1)), [1000, 1001])
    with pytest.raises(NonFiniteVectorError):
        index.add(np.full((1, DIM), np.nan), [1000])
    with pytest.raises(NonFiniteVectorError):
        index.search(np.full(DIM, np.inf), k=3)
    with pytest.raises(EmptyBatchError):
        index.add(np.empty((0, DIM)), [])
    with pytest.raises(DuplicateIdError):
        index.add(np.ones((2, DIM)), [1000, 1000])
    with pytest.raises(DuplicateIdError):
        index.add(np.ones((1, DIM)), [7])  # 7 is the first label of `built`
    for bad_k in (0, -1, "10", 2.0, True):
        with pytest.raises(InvalidKError):
            index.search(data[0], k=bad_k)
    with pytest.raises(DimensionMismatchError):
        index.search(np.ones(DIM - 1), k=3)
    with pytest.raises(InvalidParameterError):
        index.search(data[0], k=3, no_such_parameter=1)
    with pytest.raises(IdNotFoundError):
        index.remove([7, 123456])
    assert len(index) == 50 and 7 in index


def test_zero_vector_refused_under_cosine(index_type):
    index = make_index(index_type, DIM, "cosine")
    with pytest.raises(ZeroVectorError):
        index.add(np.zeros((1, DIM)), [1])
    assert len(index) == 0


def test_removed_ids_are_never_returned(index_type):
    index, data = built(index_type)
    removed = (np.arange(0, 300, 2) * 3 + 7)
    index.remove(removed)
    assert len(index) == 150
    result = index.search(data[:40], k=10, **EXHAUSTIVE_QUERY[index_type])
    assert not np.isin(result.ids, removed).any()
    assert (result.ids[:, 0] >= 0).all()
    compacted = index.compact()
    assert len(compacted) == 150 and compacted.n_deleted == 0
    again = compacted.search(data[:40], k=10, **EXHAUSTIVE_QUERY[index_type])
    assert not np.isin(again.ids, removed).any()


def test_allowed_ids_filter_returns_k_allowed_hits(index_type):
    index, data = built(index_type)
    allowed = (np.arange(0, 300, 10) * 3 + 7)  # 30 allowed labels
    result = index.search(data[:10], k=8, allowed_ids=allowed)
    assert np.isin(result.ids, allowed).all()
    flat = FlatIndex(DIM, "l2")
    flat.add(data, np.arange(300) * 3 + 7)
    want = flat.search(data[:10], k=8, allowed_ids=allowed)
    assert (result.ids >= 0).sum(axis=1).tolist() == [8] * 10
    overlap = np.mean([len(set(g) & set(w)) / 8 for g, w in zip(result.ids, want.ids)])
    assert overlap >= 0.8


def test_save_load_gives_identical_results(index_type, tmp_path):
    index, data = built(index_type, "cosine")
    index.remove([7, 10])
    queries = clustered(10, DIM, 6, seed=3)
    before = index.search(queries, k=6)
    index.save(tmp_path / "ix")
    for mmap in (False, True):
        loaded = Index.load(tmp_path / "ix", mmap=mmap)
        assert type(loaded) is type(index) and len(loaded) == len(index)
        after = loaded.search(queries, k=6)
        np.testing.assert_array_equal(before.ids, after.ids)
        np.testing.assert_allclose(before.distances, after.distances, rtol=1e-6)
    loaded.add(data[:1] + 0.01, [999_999])  # a memory-mapped index still takes writes (copy on write)
    assert 999_999 in loaded


def test_corrupt_or_foreign_files_raise_storage_format_error(index_type, tmp_path):
    index, _ = built(index_type, n=40)
    index.save(tmp_path / "ix")
    with pytest.raises(StorageFormatError):
        Index.load(tmp_path / "nothing-here")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(StorageFormatError):
        Index.load(tmp_path / "foreign")
    vectors = tmp_path / "ix" / "vectors.npy"
    raw = vectors.read_bytes()
    vectors.write_bytes(raw[: len(raw) // 2])  # truncated
    with pytest.raises(StorageFormatError):
        Index.load(tmp_path / "ix")
    vectors.write_bytes(raw[:-8] + b"\x00" * 8)  # same size, flipped bytes
    with pytest.raises(StorageFormatError):
        Index.load(tmp_path / "ix")
    (tmp_path / "ix" / "manifest.json").write_text("{not json")
    with pytest.raises(StorageFormatError):
        Index.load(tmp_path / "ix")


def test_incremental_adds_are_searchable(index_type):
    index, data = built(index_type, n=200)
    extra = clustered(50, DIM, 6, seed=9) + 5.0  # far away from the first points
    index.add(extra, np.arange(50) + 100_000)
    result = index.search(extra[:5], k=1, **EXHAUSTIVE_QUERY[index_type])
    assert result.ids[:, 0].tolist() == list(range(100_000, 100_005))
    assert len(index) == 250
