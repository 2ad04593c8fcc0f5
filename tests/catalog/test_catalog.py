"""Catalog ingest on real embedders and real files the tests write: an H&M-shaped fixture, a folder with a
corrupt image, resumable runs."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

import lookalike
from lookalike.catalog.images import open_item_image, thumbnail
from lookalike.catalog.ingest import catalog_collection, ingest
from lookalike.catalog.sources import FashionMNISTSource, FolderSource, HMSource
from lookalike.errors import EmbedderMismatchError, IdNotFoundError, InvalidInputError

PIL = pytest.importorskip("PIL.Image")
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def embedder():
    from lookalike.embed import get_embedder

    try:
        return get_embedder("minilm-fmnist")
    except lookalike.LookalikeError as exc:
        pytest.skip(f"default embedder unavailable: {exc}")


def garment(kind: str, seed: int):
    """A light garment silhouette on a dark or light background, as a photo would be."""
    rng = np.random.default_rng(seed)
    img = np.full((64, 48, 3), rng.integers(0, 30), dtype=np.uint8)
    if kind == "trouser":
        img[8:60, 12:22] = 220
        img[8:60, 26:36] = 220
        img[8:16, 12:36] = 220
    else:
        img[12:56, 10:38] = 200
        img[12:24, 2:46] = 200
    return PIL.fromarray(img)


def write_hm(root, n=12):
    rows = []
    for i in range(n):
        article = f"0{108775015 + i:09d}"
        kind = "trouser" if i % 2 else "top"
        folder = root / "images" / article[:3]
        folder.mkdir(parents=True, exist_ok=True)
        if i != 5:  # article 5 has no image file
            garment(kind, i).save(folder / f"{article}.jpg")
        rows.append({"article_id": article, "prod_name": f"Item {i}", "product_type_name": kind.title(),
                     "product_group_name": "Garment", "colour_group_name": ["Black", "White"][i % 2],
                     "graphical_appearance_name": "Solid", "detail_desc": f"a {kind} number {i}"})
    with open(root / "articles.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def test_hm_layout_ingest_and_metadata(tmp_path, embedder):
    rows = write_hm(tmp_path / "hm")
    db = lookalike.Database(tmp_path / "db")
    col = catalog_collection(db, "hm", embedder)
    source = HMSource(tmp_path / "hm")
    report = ingest(col, source, embedder, batch_size=4, progress=False)
    assert report.added == 11 and source.missing == 1 and len(col) == 11
    meta = col.get([rows[0]["article_id"]]).metadatas[0]
    assert meta["prod_name"] == "Item 0" and meta["colour_group_name"] == "Black" and meta["class"] == "Top"
    assert open_item_image(meta).size == (48, 64)
    hits = col.query(embedder.embed_texts(["trousers"]), k=3, where={"colour": "White"})
    assert all(m["colour"] == "White" for m in hits.metadatas[0] if m)


def test_folder_with_corrupt_image_is_skipped_and_counted(tmp_path, embedder, caplog):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    garment("top", 0).save(folder / "a.png")
    garment("trouser", 1).save(folder / "sub" / "b.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    buf = io.BytesIO()
    garment("top", 2).save(buf, format="PNG")
    (folder / "truncated.png").write_bytes(buf.getvalue()[:60])
    (tmp_path / "meta.csv").write_text("file,price\na.png,10\nsub/b.jpg,20\n")
    db = lookalike.Database(tmp_path / "db")
    col = catalog_collection(db, "folder", embedder)
    report = ingest(col, FolderSource(folder, csv_path=tmp_path / "meta.csv"), embedder, progress=False)
    assert report.added == 2 and report.unreadable == 2
    assert sorted(report.unreadable_ids) == ["broken.jpg", "truncated.png"]
    assert col.get(["sub/b.jpg"]).metadatas[0]["price"] == 20
    assert "unreadable" in caplog.text or "skipping" in caplog.text


def test_ingest_is_resumable(tmp_path, embedder):
    source = FashionMNISTSource(splits=("test",), limit=300)
    db = lookalike.Database(tmp_path / "db")
    col = catalog_collection(db, "fm", embedder)
    items = list(source)

    class Interrupted(Exception):
        pass

    def interrupted():
        for i, item in enumerate(items):
            if i == 150:
                raise Interrupted
            yield item

    with pytest.raises(Interrupted):
        ingest(col, interrupted(), embedder, batch_size=64, progress=False)
    assert len(col) == 128  # two whole batches landed; the batch in flight did not
    report = ingest(col, items, embedder, batch_size=64, progress=False)
    assert report.skipped_existing == 128 and report.added == 172 and len(col) == 300
    again = ingest(col, items, embedder, batch_size=64, progress=False)
    assert again.added == 0 and again.skipped_existing == 300


def test_fashion_mnist_items_and_images(embedder):
    items = list(FashionMNISTSource(splits=("train",), limit=3))
    assert [i.id for i in items] == ["train-00000", "train-00001", "train-00002"]
    meta = items[0].metadata
    assert meta["split"] == "train" and meta["index"] == 0 and meta["class"] in meta["name"]
    image = open_item_image(meta)
    assert image.size == (28, 28)
    assert thumbnail(image, 112).size == (112, 112)


def test_wrong_embedder_is_refused(tmp_path, embedder):
    db = lookalike.Database(tmp_path / "db")
    db.create_collection("other", dim=512, metric="cosine", embedder="clip:whatever")
    with pytest.raises(EmbedderMismatchError):
        catalog_collection(db, "other", embedder)


def test_bad_sources(tmp_path):
    with pytest.raises(InvalidInputError):
        HMSource(tmp_path)
    with pytest.raises(InvalidInputError):
        FolderSource(tmp_path / "missing")
    with pytest.raises(IdNotFoundError):
        open_item_image({"name": "no image"})
    with pytest.raises(IdNotFoundError):
        open_item_image({"image": str(tmp_path / "gone.jpg")})


def test_item_pictures_load_once_and_can_be_warmed_before_the_first_page():
    import threading

    from lookalike.catalog import images

    try:
        from lookalike.bench.datasets import fashion_mnist_files

        fashion_mnist_files()
    except Exception:  # noqa: BLE001 - the Debian data set is what this test reads
        pytest.skip("dataset-fashion-mnist is not installed")
    images._load_fashion_mnist_split.cache_clear()
    assert not images.warm_item_images([{"image": "/srv/a.jpg"}, None])  # nothing of the data set to load
    assert images._load_fashion_mnist_split.cache_info().currsize == 0
    pictures = []
    threads = [threading.Thread(target=lambda: pictures.append(
        images.open_item_image({"image": "fashion-mnist:test:3"}))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(pictures) == 8 and images._load_fashion_mnist_split.cache_info().misses == 1  # decompressed once
    assert images.warm_item_images([{"image": "fashion-mnist:train:0"}])
    assert images._load_fashion_mnist_split.cache_info().currsize == 2  # both splits ready
