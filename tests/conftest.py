"""Shared fixtures: seeded data sets, and the small build/query parameters each index type is tested with."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.index.registry import available

# Small build parameters per index type, for the contract suite (tiny data sets).
SMALL_BUILD = {
    "flat": {},
    "ivf": {"nlist": 8},
    "hnsw": {"M": 8, "ef_construction": 64},
    "lsh": {"n_tables": 8, "n_bits": 8},
    "rp_forest": {"n_trees": 8, "leaf_size": 16},
    "sq8": {},
    "ivfpq": {"nlist": 4, "m": 4},
}
# Query parameters that make each index (near) exhaustive on those tiny sets.
EXHAUSTIVE_QUERY = {
    "flat": {},
    "ivf": {"nprobe": 8},
    "hnsw": {"ef": 200},
    "lsh": {"n_probes": 64},
    "rp_forest": {"search_k": 100_000},
    "sq8": {},
    "ivfpq": {"nprobe": 4, "rerank": 50},
}

INDEX_TYPES = [name for name in available() if name in SMALL_BUILD]


def make_index(index_type: str, dim: int, metric: str):
    from lookalike.index.registry import from_config

    return from_config({"type": index_type, "dim": dim, "metric": metric, **SMALL_BUILD[index_type]})


def clustered(n: int, dim: int, n_clusters: int, seed: int, spread: float = 0.15) -> np.ndarray:
    """A seeded Gaussian mixture: the shape real embeddings have (clusters), unlike uniform noise."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    which = rng.integers(0, n_clusters, size=n)
    x = centers[which] + spread * rng.normal(size=(n, dim)).astype(np.float32) / np.sqrt(dim) * 4
    return x.astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
