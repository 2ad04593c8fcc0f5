"""Adapters: one small class per library, all answering the same questions, so the runner treats lookalike and
its peers alike.  Lifecycle, as in ann-benchmarks: construct with the build arguments, ``fit`` the training set,
then ``set_query_arguments`` and ``query`` / ``batch_query`` for each query setting.

Peers (faiss, hnswlib, annoy: the optional extra ``lookalike[bench]``) are imported lazily, inside the adapter;
a missing one raises ``AlgorithmUnavailable`` with the install hint, and the runner skips it with that message.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidParameterError
from .definitions import Definition


class AlgorithmUnavailable(Exception):
    """The library or index type is not installed / not written yet: skip, with this message."""


def _import_peer(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise AlgorithmUnavailable(f"{module} is not installed (pip install 'lookalike[bench]')") from None


def _normalized(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


class BenchAlgorithm:
    """The adapter protocol.  ``metric`` is a lookalike metric name: "l2", "cosine" or "dot"."""

    library = "?"

    def __init__(self, dim: int, metric: str, build_args: dict[str, Any], threads: int = 1, seed: int = 0):
        self.dim, self.metric, self.build_args = dim, metric, dict(build_args)
        self.threads, self.seed = threads, seed
        self.query_args: dict[str, Any] = {}
        self.n_points = 0
        self._distance_count = 0  # distance computations since reset_counters, when the index tells

    def fit(self, train: np.ndarray) -> None:
        raise NotImplementedError

    def set_query_arguments(self, **query_args: Any) -> None:
        self.query_args = dict(query_args)

    def query(self, vector: np.ndarray, k: int) -> np.ndarray:
        """Ids of the k nearest training rows of one (d,) query (fewer, or -1 padded, when short)."""
        return self.batch_query(vector[None, :], k)[0]

    def batch_query(self, queries: np.ndarray, k: int) -> np.ndarray:
        """(q, k) ids, -1 padded; the default loops over ``query``."""
        out = np.full((len(queries), k), -1, dtype=np.int64)
        for i, q in enumerate(queries):
            ids = np.asarray(self.query(q, k))[:k]
            out[i, : len(ids)] = ids
        return out

    def save(self, directory: Path) -> int:
        """Write the index under ``directory``; returns the bytes written."""
        raise NotImplementedError

    def reset_counters(self) -> None:
        self._distance_count = 0

    def distance_computations(self) -> int | None:
        """Distance computations since the last reset, or None when this index cannot count them."""
        return None

    def done(self) -> None:
        """Free the index."""


# ------------------------------------------------------------------------------------------------- lookalike
class LookalikeAlgorithm(BenchAlgorithm):
    """Any index of ``lookalike.index.registry``.  Distance computations are read from
    ``SearchResult.stats["distance_computations"]`` (summed over the batch) when the index reports them; an
    exact index (flat) computes one per point and query."""

    library = "lookalike"

    def __init__(self, index_type: str, dim: int, metric: str, build_args: dict[str, Any], threads: int = 1,
                 seed: int = 0):
        super().__init__(dim, metric, build_args, threads, seed)
        from ..index.registry import available, from_config

        if index_type not in available():
            raise AlgorithmUnavailable(f"lookalike index type {index_type!r} is not available in this build")
        self.index_type = index_type
        self.index = from_config({"type": index_type, "dim": dim, "metric": metric, **build_args})
        self._counted = False

    def fit(self, train: np.ndarray) -> None:
        self.n_points = len(train)
        self.index.add(train, np.arange(len(train), dtype=np.int64))

    def set_query_arguments(self, **query_args: Any) -> None:
        unknown = set(query_args) - set(type(self.index).query_defaults)
        if unknown:
            raise InvalidParameterError(f"{type(self.index).__name__} has no query parameter(s) {sorted(unknown)}")
        super().set_query_arguments(**query_args)

    def _search(self, queries: np.ndarray, k: int) -> np.ndarray:
        result = self.index.search(queries, k, **self.query_args)
        count = result.stats.get("distance_computations") if result.stats else None
        if count is not None:
            self._distance_count += int(count)
            self._counted = True
        elif self.index_type == "flat":
            self._distance_count += len(result.ids) * self.n_points
            self._counted = True
        return result.ids

    def query(self, vector: np.ndarray, k: int) -> np.ndarray:
        return self._search(vector, k)[0]

    def batch_query(self, queries: np.ndarray, k: int) -> np.ndarray:
        return self._search(queries, k)

    def save(self, directory: Path) -> int:
        self.index.save(directory / "index")
        return directory_size(directory / "index")

    def distance_computations(self) -> int | None:
        return self._distance_count if self._counted else None

    def done(self) -> None:
        self.index = None


# ------------------------------------------------------------------------------------------------- faiss
class FaissAlgorithm(BenchAlgorithm):
    """faiss ``Flat`` (exact), ``IVFFlat`` (build nlist, query nprobe) and ``HNSWFlat`` (build M,
    ef_construction; query ef).  Cosine runs as inner product on normalised vectors, as faiss users do."""

    library = "faiss"
    KINDS = {"Flat": (), "IVFFlat": ("nlist",), "HNSWFlat": ("M", "ef_construction")}
    QUERY = {"Flat": (), "IVFFlat": ("nprobe",), "HNSWFlat": ("ef",)}

    def __init__(self, kind: str, dim: int, metric: str, build_args: dict[str, Any], threads: int = 1,
                 seed: int = 0):
        super().__init__(dim, metric, build_args, threads, seed)
        if kind not in self.KINDS:
            raise InvalidParameterError(f"faiss index kind must be one of {sorted(self.KINDS)}, got {kind!r}")
        unknown = set(build_args) - set(self.KINDS[kind])
        if unknown:
            raise InvalidParameterError(f"faiss {kind} has no build parameter(s) {sorted(unknown)}")
        self.faiss = _import_peer("faiss")
        self.faiss.omp_set_num_threads(threads)
        self.kind = kind
        self.index = None

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        return _normalized(x) if self.metric == "cosine" else np.ascontiguousarray(x, dtype=np.float32)

    def fit(self, train: np.ndarray) -> None:
        faiss = self.faiss
        metric = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        x = self._prepare(train)
        if self.kind == "Flat":
            self.index = faiss.IndexFlat(self.dim, metric)
        elif self.kind == "IVFFlat":
            quantizer = faiss.IndexFlat(self.dim, metric)
            self.index = faiss.IndexIVFFlat(quantizer, self.dim, int(self.build_args.get("nlist", 100)), metric)
            self.index.cp.seed = self.seed
            self.index.train(x)
            self._quantizer = quantizer  # faiss does not own it: keep it alive
        else:
            self.index = faiss.IndexHNSWFlat(self.dim, int(self.build_args.get("M", 16)), metric)
            self.index.hnsw.efConstruction = int(self.build_args.get("ef_construction", 40))
        self.index.add(x)
        self.n_points = len(train)

    def set_query_arguments(self, **query_args: Any) -> None:
        unknown = set(query_args) - set(self.QUERY[self.kind])
        if unknown:
            raise InvalidParameterError(f"faiss {self.kind} has no query parameter(s) {sorted(unknown)}")
        super().set_query_arguments(**query_args)
        if "nprobe" in query_args:
            self.index.nprobe = int(query_args["nprobe"])
        if "ef" in query_args:
            self.index.hnsw.efSearch = int(query_args["ef"])

    def batch_query(self, queries: np.ndarray, k: int) -> np.ndarray:
        _, ids = self.index.search(self._prepare(queries), k)
        return ids

    def query(self, vector: np.ndarray, k: int) -> np.ndarray:
        return self.batch_query(vector[None, :], k)[0]

    def _stats(self):
        cvar = self.faiss.cvar
        return {"IVFFlat": cvar.indexIVF_stats, "HNSWFlat": cvar.hnsw_stats}.get(self.kind)

    def reset_counters(self) -> None:
        super().reset_counters()
        if self._stats() is not None:
            self._stats().reset()

    def distance_computations(self) -> int | None:
        stats = self._stats()
        return None if stats is None else int(stats.ndis)

    def save(self, directory: Path) -> int:
        file = directory / "faiss.index"
        self.faiss.write_index(self.index, str(file))
        return file.stat().st_size

    def done(self) -> None:
        self.index = None


# ------------------------------------------------------------------------------------------------- hnswlib
class HnswlibAlgorithm(BenchAlgorithm):
    """hnswlib: build M, ef_construction; query ef."""

    library = "hnswlib"
    SPACES = {"l2": "l2", "cosine": "cosine", "dot": "ip"}

    def __init__(self, dim: int, metric: str, build_args: dict[str, Any], threads: int = 1, seed: int = 0):
        super().__init__(dim, metric, build_args, threads, seed)
        unknown = set(build_args) - {"M", "ef_construction"}
        if unknown:
            raise InvalidParameterError(f"hnswlib has no build parameter(s) {sorted(unknown)}")
        self.hnswlib = _import_peer("hnswlib")
        self.index = None

    def fit(self, train: np.ndarray) -> None:
        self.index = self.hnswlib.Index(space=self.SPACES[self.metric], dim=self.dim)
        self.index.init_index(max_elements=len(train), M=int(self.build_args.get("M", 16)),
                              ef_construction=int(self.build_args.get("ef_construction", 200)), random_seed=self.seed)
        self.index.set_num_threads(self.threads)
        self.index.add_items(np.ascontiguousarray(train, dtype=np.float32), np.arange(len(train)))
        self.n_points = len(train)

    def set_query_arguments(self, **query_args: Any) -> None:
        if set(query_args) - {"ef"}:
            raise InvalidParameterError(f"hnswlib has no query parameter(s) {sorted(set(query_args) - {'ef'})}")
        super().set_query_arguments(**query_args)
        self.index.set_ef(int(query_args.get("ef", 10)))

    def batch_query(self, queries: np.ndarray, k: int) -> np.ndarray:
        labels, _ = self.index.knn_query(np.ascontiguousarray(queries, dtype=np.float32), k=min(k, self.n_points))
        return labels.astype(np.int64)

    def query(self, vector: np.ndarray, k: int) -> np.ndarray:
        return self.batch_query(vector[None, :], k)[0]

    def save(self, directory: Path) -> int:
        file = directory / "hnswlib.bin"
        self.index.save_index(str(file))
        return file.stat().st_size

    def done(self) -> None:
        self.index = None


# ------------------------------------------------------------------------------------------------- annoy
class AnnoyAlgorithm(BenchAlgorithm):
    """annoy: build n_trees; query search_k (-1: annoy's default, n_trees * k).  No batch API: a batch loops."""

    library = "annoy"
    METRICS = {"l2": "euclidean", "cosine": "angular", "dot": "dot"}

    def __init__(self, dim: int, metric: str, build_args: dict[str, Any], threads: int = 1, seed: int = 0):
        super().__init__(dim, metric, build_args, threads, seed)
        if set(build_args) - {"n_trees"}:
            raise InvalidParameterError(f"annoy has no build parameter(s) {sorted(set(build_args) - {'n_trees'})}")
        self.annoy = _import_peer("annoy")
        self.index = None

    def fit(self, train: np.ndarray) -> None:
        self.index = self.annoy.AnnoyIndex(self.dim, self.METRICS[self.metric])
        self.index.set_seed(self.seed)
        for i, vector in enumerate(np.asarray(train, dtype=np.float32)):
            self.index.add_item(i, vector)
        self.index.build(int(self.build_args.get("n_trees", 10)), n_jobs=self.threads)
        self.n_points = len(train)

    def set_query_arguments(self, **query_args: Any) -> None:
        if set(query_args) - {"search_k"}:
            raise InvalidParameterError(f"annoy has no query parameter(s) {sorted(set(query_args) - {'search_k'})}")
        super().set_query_arguments(**query_args)

    def query(self, vector: np.ndarray, k: int) -> np.ndarray:
        return np.asarray(self.index.get_nns_by_vector(vector, k, int(self.query_args.get("search_k", -1))),
                          dtype=np.int64)

    def save(self, directory: Path) -> int:
        file = directory / "annoy.ann"
        self.index.save(str(file))
        return file.stat().st_size

    def done(self) -> None:
        self.index = None


# ------------------------------------------------------------------------------------------------- factory
def make_algorithm(definition: Definition, build_args: dict[str, Any], dim: int, metric: str, threads: int = 1,
                   seed: int = 0) -> BenchAlgorithm:
    """The adapter for one definition and one build combination (raises AlgorithmUnavailable to skip)."""
    library = definition.library
    if library == "lookalike":
        return LookalikeAlgorithm(definition.index or "", dim, metric, build_args, threads, seed)
    if library == "faiss":
        return FaissAlgorithm(definition.index or "Flat", dim, metric, build_args, threads, seed)
    if library == "hnswlib":
        return HnswlibAlgorithm(dim, metric, build_args, threads, seed)
    if library == "annoy":
        return AnnoyAlgorithm(dim, metric, build_args, threads, seed)
    raise InvalidParameterError(f"{definition.name}: unknown library {library!r} (lookalike, faiss, hnswlib, annoy)")


def availability(definition: Definition) -> str | None:
    """None when the definition can run here, else why not (without building anything)."""
    if definition.library == "lookalike":
        from ..index.registry import available

        ok = definition.index in available()
        return None if ok else f"lookalike index type {definition.index!r} is not available in this build"
    if definition.library in ("faiss", "hnswlib", "annoy"):
        found = importlib.util.find_spec(definition.library) is not None
        return None if found else f"{definition.library} is not installed (pip install 'lookalike[bench]')"
    return f"unknown library {definition.library!r}"


def library_versions() -> dict[str, str | None]:
    """Versions of lookalike, numpy and the installed peers (None when missing), for the result file."""
    import importlib.metadata as md

    out: dict[str, str | None] = {}
    for dist in ("lookalike", "numpy", "numba", "faiss-cpu", "hnswlib", "annoy"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    return out
