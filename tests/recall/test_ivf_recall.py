"""Recall floors of IVFIndex against FlatIndex on seeded clustered data (the shape real embeddings have)."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.index.flat import FlatIndex
from lookalike.index.ivf import IVFIndex
from tests.conftest import clustered

pytestmark = pytest.mark.recall

K = 10
NPROBES = (1, 2, 4, 8, 16, 32)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth)]))


def recall_curve(n, dim, n_clusters, nlist, metric="l2", n_queries=200, spread=0.3):
    data = clustered(n + n_queries, dim, n_clusters, seed=2024, spread=spread)
    x, q = data[:n], data[n:]  # queries from the same mixture as the data, none of them stored
    flat = FlatIndex(dim, metric)
    flat.add(x)
    truth = flat.search(q, K).ids
    ivf = IVFIndex(dim, metric, nlist=nlist, seed=1)
    ivf.add(x)
    return {nprobe: recall_at_k(ivf.search(q, K, nprobe=nprobe).ids, truth) for nprobe in NPROBES}


def check_floor(curve, nlist):
    values = [curve[p] for p in NPROBES]
    assert all(b >= a - 0.02 for a, b in zip(values, values[1:])), curve  # more lists probed, no worse recall
    best_cheap = max(curve[p] for p in NPROBES if p <= nlist // 4)  # reading at most a quarter of the data
    assert best_cheap >= 0.95, curve
    assert curve[1] < 1.0, curve  # the data is not so easy that one list always suffices


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_ivf_recall_floor_20k_x_64(metric):
    check_floor(recall_curve(20_000, 64, n_clusters=20, nlist=128, metric=metric), nlist=128)


@pytest.mark.slow
def test_ivf_recall_floor_100k_x_128():
    check_floor(recall_curve(100_000, 128, n_clusters=100, nlist=512, n_queries=500), nlist=512)
