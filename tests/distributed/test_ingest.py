"""Ray Data ingest: vectors (.npy, Parquet) and images give the same collection as a local ingest; resumable."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lookalike import Database
from lookalike.catalog.ingest import ingest
from lookalike.catalog.sources import FolderSource
from lookalike.distributed import ShardedDatabase, ingest_images, ingest_vectors
from lookalike.errors import DimensionMismatchError

from . import tiny_embedder
from .conftest import seeded

N_IMAGES = 300


@pytest.fixture(scope="module")
def sdb(ray_local, tmp_path_factory):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(tiny_embedder)  # the workers cannot import the tests package
    database = ShardedDatabase(tmp_path_factory.mktemp("ingest") / "db", n_shards=3)
    yield database
    database.close()


def _write_images(root, n: int, seed: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = root / ("tops" if i % 2 else "shoes")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(20 + i % 7, 16 + i % 5, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"item-{i:04d}.png")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """A few hundred small images in two folders, and one file that is not an image."""
    root = tmp_path_factory.mktemp("images")
    _write_images(root, N_IMAGES, seed=31)
    (root / "tops" / "broken.png").write_bytes(b"this is not a png")
    rows = "".join(f"shoes/item-{i:04d}.png,red\n" for i in range(0, 40, 2))
    (root / "labels.csv").write_text("file,colour\n" + rows)
    return root


def _collection_contents(col):
    ids = sorted(col.ids())
    points = col.get(ids)
    return ids, points.vectors, points.metadatas


def test_npy_ingest_writes_every_row_and_resumes(sdb, tmp_path):
    x = seeded(3_000, 16, seed=30)
    np.save(tmp_path / "x.npy", x)
    col = sdb.create_collection("npy", 16, "l2")
    col.add([5, 6], x[5:7])  # already stored: skipped, not an error
    report = ingest_vectors(sdb, "npy", tmp_path / "x.npy", batch_size=500, progress=False)
    assert (report.added, report.skipped_existing) == (2_998, 2)
    assert len(col) == 3_000
    np.testing.assert_array_equal(col.get(list(range(3_000))).vectors, x)
    again = ingest_vectors(sdb, "npy", tmp_path / "x.npy", batch_size=500, progress=False)
    assert (again.added, again.skipped_existing) == (0, 3_000)
    np.save(tmp_path / "wrong.npy", x[:, :8])
    with pytest.raises(DimensionMismatchError):
        ingest_vectors(sdb, "npy", tmp_path / "wrong.npy", progress=False)


def test_parquet_ingest_keeps_ids_and_metadata(sdb, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = seeded(400, 8, seed=32)
    ids = [f"sku-{i}" for i in range(400)]
    table = pa.table({"id": ids, "vector": x.tolist(), "colour": ["red", "blue"] * 200, "price": list(range(400))})
    (tmp_path / "parts").mkdir()
    pq.write_table(table.slice(0, 250), tmp_path / "parts" / "a.parquet")
    pq.write_table(table.slice(250), tmp_path / "parts" / "b.parquet")
    col = sdb.create_collection("parquet", 8, "cosine")
    report = ingest_vectors(sdb, "parquet", tmp_path / "parts", batch_size=100, progress=False)
    assert report.added == 400
    points = col.get(["sku-0", "sku-399"])
    np.testing.assert_allclose(points.vectors, x[[0, 399]], rtol=1e-6)  # cosine: unit vector x stored length
    assert points.metadatas == [{"colour": "red", "price": 0}, {"colour": "blue", "price": 399}]
    replaced = ingest_vectors(sdb, "parquet", tmp_path / "parts" / "a.parquet", upsert=True, progress=False)
    assert replaced.added == 250 and len(col) == 400
    pq.write_table(pa.table({"id": [1], "vector": [[1.0] * 5]}), tmp_path / "short.parquet")
    with pytest.raises(DimensionMismatchError):  # raised in a Ray Data worker, received as itself
        ingest_vectors(sdb, "parquet", tmp_path / "short.parquet", progress=False)


def test_image_ingest_equals_local_ingest_and_resumes(sdb, image_folder, tmp_path):
    embedder = tiny_embedder.ThumbnailEmbedder()
    local = Database(tmp_path / "local")
    local_col = local.create_collection("photos", embedder.dim, "cosine", embedder=embedder.name)
    local_report = ingest(local_col, FolderSource(image_folder, image_folder / "labels.csv"), embedder,
                          progress=False)

    first = ingest_images(sdb, "photos", image_folder, embedder, csv_path=image_folder / "labels.csv",
                          batch_size=32, limit=100, progress=False)
    assert first.added == 100
    report = ingest_images(sdb, "photos", image_folder, embedder, csv_path=image_folder / "labels.csv",
                           batch_size=32, progress=False)
    assert (report.added, report.skipped_existing) == (N_IMAGES - 100, 100)
    assert report.unreadable == local_report.unreadable == 1 and report.unreadable_ids == ["tops/broken.png"]

    col = sdb.get_collection("photos")
    assert col.embedder == embedder.name and col.dim == embedder.dim
    ids, vectors, metadatas = _collection_contents(col)
    want_ids, want_vectors, want_metadatas = _collection_contents(local_col)
    assert ids == want_ids and len(ids) == N_IMAGES
    np.testing.assert_allclose(vectors, want_vectors, rtol=1e-6, atol=1e-6)
    assert metadatas == want_metadatas
    assert json.dumps(metadatas[0]["colour"]) == '"red"'
    local.close()


@pytest.mark.slow
def test_image_ingest_with_the_default_embedder_equals_local(sdb, tmp_path):
    from lookalike.embed import DEFAULT_EMBEDDER, get_embedder

    try:
        embedder = get_embedder(DEFAULT_EMBEDDER)
    except Exception as exc:  # noqa: BLE001  (any reason it cannot load is a reason to skip)
        pytest.skip(f"the default embedder is not available yet: {type(exc).__name__}: {exc}")
    image_folder = tmp_path / "many"
    _write_images(image_folder, 2_000, seed=33)  # a few thousand, as a catalog batch
    local = Database(tmp_path / "local")
    local_col = local.create_collection("default", embedder.dim, "cosine", embedder=embedder.name)
    ingest(local_col, FolderSource(image_folder), embedder, progress=False)
    ingest_images(sdb, "default", image_folder, DEFAULT_EMBEDDER, progress=False)
    ids, vectors, metadatas = _collection_contents(sdb.get_collection("default"))
    want_ids, want_vectors, want_metadatas = _collection_contents(local_col)
    assert ids == want_ids and metadatas == want_metadatas
    np.testing.assert_allclose(vectors, want_vectors, rtol=1e-5, atol=1e-5)
    local.close()
