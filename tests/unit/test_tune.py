"""The auto-tuner picks the smallest grid value that reaches the target, and says what it measured."""

from __future__ import annotations

import numpy as np
import pytest

import lookalike
from lookalike.errors import InvalidParameterError
from lookalike.evaluation import evaluate
from lookalike.index import FlatIndex
from lookalike.tune import tune
from tests.conftest import clustered

pytestmark = pytest.mark.recall


@pytest.fixture(scope="module")
def ivf():
    pytest.importorskip("lookalike.index.ivf")
    index = lookalike.IVFIndex(16, "l2", nlist=32)
    index.add(clustered(5000, 16, 50, seed=0))
    return index


def test_tune_reaches_target_with_the_smallest_value(ivf):
    report = tune(ivf, target_recall=0.9, k=10, sample=100)
    assert report.param == "nprobe" and report.reached and report.recall >= 0.9
    below = [r for r in report.tried if r["nprobe"] < report.value]
    assert all(r["recall"] < 0.9 for r in below), "a smaller value already reached the target"
    # the recall it reports is what an independent evaluation measures on fresh queries, give or take sampling
    fresh = clustered(300, 16, 50, seed=0)[:300] + 0.01
    assert evaluate(ivf, fresh, 10, nprobe=report.value)["recall"] >= 0.8


def test_tune_exact_index_needs_no_parameter():
    flat = FlatIndex(8, "cosine")
    flat.add(clustered(100, 8, 3, seed=0))
    report = tune(flat, 0.99)
    assert report.param is None and report.recall == 1.0


def test_bad_targets(ivf):
    for target in (0, 1.5, -1):
        with pytest.raises(InvalidParameterError):
            tune(ivf, target)
    tiny = FlatIndex(4)
    tiny.add(np.eye(4))
    with pytest.raises(InvalidParameterError):
        tune(tiny, 0.9, k=10)


def test_collection_tune_applies_the_value(tmp_path):
    pytest.importorskip("lookalike.index.ivf")
    db = lookalike.Database(tmp_path / "db")
    col = db.create_collection("c", dim=16, metric="cosine")
    data = clustered(3000, 16, 30, seed=1)
    col.add(list(range(3000)), data)
    col.create_index("ivf", nlist=32)
    report = col.tune(target_recall=0.95, k=5, sample=100)
    assert col.tuned_params("ivf") == {"nprobe": report.value}
    result = col.query(data[:50] + 0.001, k=5, with_recall=True)
    assert result.recall.mean() >= 0.85
    col.create_index("ivf", nlist=16)  # a rebuild forgets the old tuning
    assert col.tuned_params("ivf") == {}
    db.close()


def shifted_queries(n: int, dim: int, seed: int) -> np.ndarray:
    """Queries from another distribution than the points (the modality gap of text vs photos, in miniature):
    the same clusters, moved off the data along one common direction."""
    rng = np.random.default_rng(seed)
    base = clustered(n, dim, 50, seed=seed)
    gap = rng.standard_normal(dim).astype(np.float32)
    return base + 3.0 * gap / np.linalg.norm(gap)


def test_tune_on_given_queries_measures_those_queries(ivf):
    queries = shifted_queries(150, 16, seed=4)
    own = tune(ivf, target_recall=0.95, k=10, sample=150)
    given = tune(ivf, target_recall=0.95, k=10, queries=queries)
    assert given.n_queries == 150 and given.reached
    # the given queries' exact neighbours are the truth: the chosen nprobe reaches the target on them
    assert evaluate(ivf, queries, 10, nprobe=given.value)["recall"] >= 0.95
    assert given.value >= own.value  # off-distribution queries never need less


def test_parameters_tuned_per_modality_are_used_by_queries_of_that_modality(tmp_path):
    pytest.importorskip("lookalike.index.ivf")
    with lookalike.Database(tmp_path / "db") as db:
        col = db.create_collection("c", dim=16, metric="l2")
        points = clustered(4000, 16, 50, seed=1)
        col.add(list(range(len(points))), points)
        col.create_index("ivf", nlist=64)
        text_queries = shifted_queries(100, 16, seed=2)
        image = col.tune("ivf", 0.9, modality="image")
        text = col.tune("ivf", 0.99, queries=text_queries, modality="text")
        assert col.tuned_params("ivf", "image") == {"nprobe": image.value}
        assert col.tuned_params("ivf", "text") == {"nprobe": text.value}
        assert col.tuned_params("ivf") == {}  # no general default was set
        q = text_queries[:5]
        as_text = col.query(q, k=10, modality="text")
        assert np.array_equal(as_text.ids, col.query(q, k=10, nprobe=text.value).ids)
        assert np.array_equal(col.query(q, k=10, modality="image").ids, col.query(q, k=10, nprobe=image.value).ids)
        assert np.array_equal(col.query(q, k=10, modality="text", nprobe=1).ids, col.query(q, k=10, nprobe=1).ids)
        with pytest.raises(lookalike.InvalidInputError):
            col.query(q, k=10, modality="audio")
    with lookalike.Database(tmp_path / "db") as db:  # durable
        assert db.get_collection("c").tuned_params("ivf", "text") == {"nprobe": text.value}


def test_tune_refuses_queries_of_another_dimension(ivf):
    with pytest.raises(lookalike.DimensionMismatchError):
        tune(ivf, queries=np.ones((5, 8), np.float32))
