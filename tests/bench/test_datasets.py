"""Data sets: the ann-benchmarks HDF5 reader on a file the test writes, synthetic specs, the IDX parser,
Fashion-MNIST from the Debian package, the collection hook; ground truth and its cache."""

from __future__ import annotations

import gzip
import struct

import h5py
import numpy as np
import pytest

from lookalike.bench import datasets as ds
from lookalike.bench import groundtruth as gt
from lookalike.errors import InvalidInputError, StorageFormatError, UnknownMetricError

pytestmark = pytest.mark.unit


def _write_ann_file(path, train, test, distance="angular", neighbors=None):
    """An HDF5 file laid out as ann-benchmarks publishes them (int32 neighbours, attrs)."""
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = distance
        f.attrs["dimension"] = train.shape[1]
        f.create_dataset("train", data=train)
        f.create_dataset("test", data=test)
        if neighbors is not None:
            f.create_dataset("neighbors", data=neighbors.astype(np.int32))
            f.create_dataset("distances", data=np.zeros(neighbors.shape, np.float32))


def test_hdf5_reader_on_an_ann_benchmarks_file(tmp_path, rng):
    train = rng.normal(size=(30, 5)).astype(np.float64)  # files may hold float64: the reader casts
    test = rng.normal(size=(4, 5)).astype(np.float64)
    neighbors = rng.integers(0, 30, size=(4, 7))
    _write_ann_file(tmp_path / "tiny-5-angular.hdf5", train, test, "angular", neighbors)
    data = ds.read_hdf5(tmp_path / "tiny-5-angular.hdf5")
    assert data.name == "tiny-5-angular"
    assert data.metric == "cosine" and data.distance == "angular"
    assert data.train.dtype == np.float32 and data.train.shape == (30, 5)
    np.testing.assert_allclose(data.test, test.astype(np.float32))
    assert data.neighbors.dtype == np.int64 and data.neighbors.tolist() == neighbors.tolist()
    # resolved by name from the cache dir too, with the first queries only
    by_name = ds.load_dataset("tiny-5-angular", tmp_path, n_queries=2)
    assert by_name.test.shape == (2, 5) and by_name.neighbors.shape == (2, 7)


def test_hdf5_round_trip_and_bad_files(tmp_path, rng):
    data = ds.Dataset("x", rng.normal(size=(10, 3)).astype(np.float32), rng.normal(size=(2, 3)).astype(np.float32),
                      "l2", neighbors=np.arange(6).reshape(2, 3))
    back = ds.read_hdf5(ds.write_hdf5(tmp_path / "x.hdf5", data))
    assert back.metric == "l2" and back.distance == "euclidean"
    np.testing.assert_array_equal(back.train, data.train)
    np.testing.assert_array_equal(back.neighbors, data.neighbors)
    with h5py.File(tmp_path / "no-train.hdf5", "w") as f:
        f.create_dataset("test", data=np.zeros((2, 3), np.float32))
    with pytest.raises(StorageFormatError):
        ds.read_hdf5(tmp_path / "no-train.hdf5")
    (tmp_path / "junk.hdf5").write_bytes(b"not hdf5 at all")
    with pytest.raises(StorageFormatError):
        ds.read_hdf5(tmp_path / "junk.hdf5")
    with pytest.raises(StorageFormatError):
        ds.load_dataset("glove-100-angular", tmp_path)  # not downloaded into this cache dir
    _write_ann_file(tmp_path / "ham.hdf5", data.train, data.test, "hamming")
    with pytest.raises(UnknownMetricError):
        ds.read_hdf5(tmp_path / "ham.hdf5")


def test_synthetic_sets_are_seeded_and_on_the_sphere():
    a = ds.load_dataset("synthetic:2k:16:4", "/nonexistent", n_queries=50, seed=3)
    b = ds.synthetic(2000, 16, 4, 50, seed=3)
    c = ds.synthetic(2000, 16, 4, 50, seed=4)
    assert a.train.shape == (2000, 16) and a.test.shape == (50, 16) and a.metric == "cosine"
    np.testing.assert_array_equal(a.train, b.train)
    assert not np.array_equal(a.train, c.train)
    np.testing.assert_allclose(np.linalg.norm(a.train, axis=1), 1.0, rtol=1e-5)
    assert ds.parse_synthetic_spec("synthetic:1m:128") == (1_000_000, 128, ds.DEFAULT_SYNTHETIC_CLUSTERS)
    assert ds.load_dataset("synthetic:100:4", "/x", metric="euclidean").metric == "l2"
    for bad in ("synthetic:10", "synthetic:a:3", "synthetic:1:2:3:4"):
        with pytest.raises(InvalidInputError):
            ds.parse_synthetic_spec(bad)


def _write_idx_gz(path, array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.tobytes())


def test_idx_parser(tmp_path, rng):
    images = rng.integers(0, 256, size=(3, 4, 5), dtype=np.uint8)
    _write_idx_gz(tmp_path / "img.gz", images)
    np.testing.assert_array_equal(ds.read_idx_gz(tmp_path / "img.gz"), images)
    with gzip.open(tmp_path / "bad.gz", "wb") as fh:
        fh.write(b"\x01\x02\x03\x04rest")
    with pytest.raises(StorageFormatError):
        ds.read_idx_gz(tmp_path / "bad.gz")
    _write_idx_gz(tmp_path / "short.gz", images)
    with gzip.open(tmp_path / "short.gz", "rb") as fh:
        raw = fh.read()
    with gzip.open(tmp_path / "short.gz", "wb") as fh:
        fh.write(raw[:-7])
    with pytest.raises(StorageFormatError):
        ds.read_idx_gz(tmp_path / "short.gz")


def test_fashion_mnist_files_from_the_debian_package():
    try:
        files = ds.fashion_mnist_files()
    except StorageFormatError:
        pytest.skip("dataset-fashion-mnist is not installed")
    test_images = ds.read_idx_gz(files["t10k-images-idx3-ubyte"])
    assert test_images.shape == (10_000, 28, 28) and test_images.dtype == np.uint8


@pytest.mark.slow
def test_fashion_mnist_is_built_and_cached_as_hdf5(tmp_path):
    try:
        ds.fashion_mnist_files()
    except StorageFormatError:
        pytest.skip("dataset-fashion-mnist is not installed")
    data = ds.load_dataset(ds.FASHION_MNIST, tmp_path)
    assert data.train.shape == (60_000, 784) and data.test.shape == (10_000, 784) and data.metric == "l2"
    assert data.neighbors.shape == (10_000, 100)
    assert (tmp_path / f"{ds.FASHION_MNIST}.hdf5").exists()
    again = ds.load_dataset(ds.FASHION_MNIST, tmp_path, n_queries=10)
    np.testing.assert_array_equal(again.neighbors, data.neighbors[:10])


class _FakeCollection:
    metric = "l2"

    def __init__(self, vectors):
        self._vectors = vectors

    def get_vectors(self):
        return self._vectors


def test_collection_hook_through_a_fake_database(monkeypatch, rng):
    import lookalike

    vectors = rng.normal(size=(40, 3)).astype(np.float32)

    class FakeDatabase:
        def __init__(self, path):
            self.path = path

        def get_collection(self, name):
            assert name == "shoes"
            return _FakeCollection(vectors)

    monkeypatch.setattr(lookalike, "Database", FakeDatabase, raising=False)
    data = ds.load_dataset("collection:/some/db:shoes", "/x", n_queries=10, seed=1)
    assert data.train.shape == (30, 3) and data.test.shape == (10, 3) and data.metric == "l2"
    # queries are held out: together they are the collection again
    np.testing.assert_array_equal(np.sort(np.vstack([data.train, data.test]), axis=0), np.sort(vectors, axis=0))


def test_collection_hook_on_a_real_database(tmp_path, rng):
    try:
        from lookalike import Database
    except ImportError:
        pytest.skip("lookalike.Database is not available")
    db = Database(tmp_path / "db")
    collection = db.create_collection("tops", 6, "cosine")
    collection.add(list(range(50)), rng.normal(size=(50, 6)).astype(np.float32))
    data = ds.load_collection_dataset(tmp_path / "db", "tops", n_queries=5)
    assert data.train.shape == (45, 6) and data.test.shape == (5, 6) and data.metric == "cosine"


def test_ground_truth_is_exact_and_cached(tmp_path, monkeypatch, rng):
    data = ds.synthetic(500, 8, 4, 20, seed=0, metric="euclidean")
    first = gt.ground_truth(data, 5, tmp_path)
    assert first.source == "computed" and first.neighbors.shape == (20, 5)
    brute = np.argsort(((data.test[:, None, :] - data.train[None]) ** 2).sum(2), axis=1)[:, :5]
    assert (first.neighbors == brute).mean() > 0.99  # ties may order differently

    def no_recompute(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(gt, "exact_neighbors", no_recompute)
    second = gt.ground_truth(data, 5, tmp_path)
    assert second.source == "cache"
    np.testing.assert_array_equal(second.neighbors, first.neighbors)
    # another k or metric is another key
    assert gt.data_key(data.train, data.test, 5, "l2") != gt.data_key(data.train, data.test, 6, "l2")
    assert gt.data_key(data.train, data.test, 5, "l2") != gt.data_key(data.train, data.test, 5, "cosine")
    # a file's own neighbours are used when it has k of them
    data.neighbors = first.neighbors
    assert gt.ground_truth(data, 3, tmp_path).source == "file"
