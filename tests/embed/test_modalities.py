"""Text vs photo queries on a catalog's indexes, from the command line: `lookalike bench --modalities` and
`lookalike index adapt` on a small Fashion-MNIST catalog embedded by the shopper's route."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def small_catalog(route_embedder, fmnist_test, tmp_path_factory):
    import lookalike
    from lookalike.catalog.fashion_mnist import CLASS_NAMES

    pixels, labels = fmnist_test
    pixels, labels = pixels[:800], labels[:800]
    path = tmp_path_factory.mktemp("modalities") / "db"
    with lookalike.Database(path) as db:
        col = db.create_collection("fashion-mnist", dim=384, metric="cosine", embedder=route_embedder.name)
        col.add([f"test-{i:05d}" for i in range(len(pixels))], route_embedder.embed_pixels(pixels),
                [{"class": CLASS_NAMES[c]} for c in labels])
        col.create_index("ivf", nlist=16)
        col.create_index("hnsw", M=8, ef_construction=40)
    return path


def test_bench_modalities_draws_photo_and_text_curves(small_catalog, tmp_path, capsys):
    from lookalike.cli import main

    out = tmp_path / "results"
    assert main(["bench", "--modalities", f"{small_catalog}:fashion-mnist", "--queries", "40",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for header in ("hnsw / photo", "hnsw / text (minilm-fmnist+use-m)", "ivf / photo", "ivf / text"):
        assert header in printed
    assert (out / "modalities-fashion-mnist.png").stat().st_size > 1000


def test_index_adapt_links_generated_text_queries(small_catalog, capsys):
    import numpy as np

    import lookalike
    from lookalike.cli import main

    assert main(["index", "adapt", "fashion-mnist", "--generated", "120", "--db", str(small_catalog)]) == 0
    assert "links from 120 sample queries" in capsys.readouterr().out
    with lookalike.Database(small_catalog) as db:  # the adapted graph still answers, unchanged in shape
        result = db.get_collection("fashion-mnist").query(np.ones(384, np.float32), k=5, index="hnsw")
        assert result.ids.shape == (1, 5) and None not in result.ids[0].tolist()
    assert main(["index", "adapt", "fashion-mnist", "--type", "ivf", "--generated", "20",
                 "--db", str(small_catalog)]) == 2  # not a graph: a clear error, exit status 2
