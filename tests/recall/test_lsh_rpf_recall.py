"""Recall floors of LSHIndex and RPForestIndex against FlatIndex on seeded clustered data, and the LSH parameter
chooser keeping its promise on queries it never saw."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.index.flat import FlatIndex
from lookalike.index.lsh import LSHIndex, choose_lsh_params
from lookalike.index.rp_forest import RPForestIndex
from tests.conftest import clustered

pytestmark = pytest.mark.recall

N, DIM, CLUSTERS, N_QUERIES, K = 5000, 32, 50, 200, 10


@pytest.fixture(scope="module")
def data():
    points = clustered(N + N_QUERIES, DIM, CLUSTERS, seed=2024)
    return points[:N], points[N:]


def _recall(index, queries, metric, base, **params):
    flat = FlatIndex(base.shape[1], metric)
    flat.add(base)
    truth = flat.search(queries, K).ids
    got = index.search(queries, K, **params).ids
    return (got[:, :, None] == truth[:, None, :]).any(axis=2).mean()


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_rp_forest_recall_floors(data, metric):
    base, queries = data
    index = RPForestIndex(DIM, metric)
    index.add(base)
    assert _recall(index, queries, metric, base) >= 0.95  # search_k=-1 (measured 0.99)
    assert _recall(index, queries, metric, base, search_k=100) >= 0.75  # (measured 0.85)
    assert _recall(index, queries, metric, base, search_k=2000) >= 0.995


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_lsh_recall_floors(data, metric):
    base, queries = data
    index = LSHIndex(DIM, metric)
    index.add(base)
    assert _recall(index, queries, metric, base) >= 0.85  # n_probes=8 (measured 0.92-0.95)
    assert _recall(index, queries, metric, base, n_probes=64) >= 0.99


def test_lsh_more_probes_never_lose_recall(data):
    """The probe sequence of n_probes is a prefix of that of more probes: candidates only grow."""
    base, queries = data
    index = LSHIndex(DIM, "cosine", n_tables=4, n_bits=12)
    index.add(base)
    recalls, work = [], []
    for n_probes in (1, 2, 4, 8, 16, 32):
        recalls.append(_recall(index, queries, "cosine", base, n_probes=n_probes))
        work.append(index.last_stats["distance_computations"])
    assert recalls == sorted(recalls) and work == sorted(work)
    assert recalls[-1] > recalls[0] + 0.2


@pytest.mark.parametrize("target", [0.8, 0.9])
def test_chooser_meets_its_target_on_held_out_queries(target):
    points = clustered(2500 + 300, 16, 30, seed=77)
    base, held_out = points[:2500], points[2500:]
    chosen = choose_lsh_params(base, target, k=K, metric="cosine", sample=60, max_tables=8, seed=1)
    assert chosen["met_target"]
    index = LSHIndex(16, "cosine", n_tables=chosen["n_tables"], n_bits=chosen["n_bits"], seed=1)
    index.add(base)
    assert _recall(index, held_out, "cosine", base, n_probes=chosen["n_probes"]) >= target
    assert index.last_stats["mean_distance_computations"] < 0.5 * len(base)  # and it is not a flat scan
