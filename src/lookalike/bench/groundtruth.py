"""Ground truth: the exact k nearest neighbours of every query, by FlatIndex (lookalike's exact oracle).

An ann-benchmarks file ships its own ``neighbors``; a set without them (synthetic, a collection, a file written
without) gets them computed once and cached on disk under a key that hashes the vectors, k and the metric, so a
second run on the same data finds them in the cache.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..evaluation import exact_neighbors  # noqa: F401  (looked up here by ground_truth; tests replace it)
from .datasets import Dataset

CACHE_ENV = "LOOKALIKE_BENCH_CACHE"


@dataclass
class GroundTruth:
    neighbors: np.ndarray  # (q, k) int64 row numbers in train, padded -1 when train has fewer than k points
    source: str  # "file", "cache" or "computed": where they came from this time


def default_cache_dir() -> Path:
    """$LOOKALIKE_BENCH_CACHE, else $XDG_CACHE_HOME/lookalike/bench, else ~/.cache/lookalike/bench."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lookalike" / "bench"


def data_key(train: np.ndarray, test: np.ndarray, k: int, metric: str) -> str:
    """A hash of the vectors (bytes and shapes), k and the metric: the name of a cache entry."""
    digest = hashlib.blake2b(digest_size=16)
    for arr in (train, test):
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        digest.update(repr(arr.shape).encode())
        digest.update(memoryview(arr).cast("B"))
    digest.update(f"k={k};metric={metric}".encode())
    return digest.hexdigest()


def ground_truth(dataset: Dataset, k: int, cache_dir: str | os.PathLike | None = None) -> GroundTruth:
    """The true k nearest neighbours of ``dataset.test``: from the file when it ships at least k of them,
    else from the cache, else computed by FlatIndex and cached."""
    if dataset.neighbors is not None and dataset.neighbors.shape[1] >= k:
        return GroundTruth(np.ascontiguousarray(dataset.neighbors[:, :k], dtype=np.int64), "file")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    file = cache / "groundtruth" / f"{data_key(dataset.train, dataset.test, k, dataset.metric)}.npy"
    if file.exists():
        neighbors = np.load(file, allow_pickle=False)
        if neighbors.shape == (len(dataset.test), k):
            return GroundTruth(neighbors, "cache")
    neighbors, _ = exact_neighbors(dataset.train, dataset.test, k, dataset.metric)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        np.save(fh, neighbors, allow_pickle=False)
    os.replace(tmp, file)
    return GroundTruth(neighbors, "computed")
