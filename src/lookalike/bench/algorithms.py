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


def reject_unknown(owner: str, what: str, given: dict[str, Any], allowed) -> None:
    """Raise InvalidParameterError naming the parameters of ``given`` that ``owner`` does not take."""
    unknown = set(given) - set(allowed)
    if unknown:
        raise InvalidParameterError(f"{owner} has no {what} parameter(s) {sorted(unknown)}; it takes {sorted(allowed)}")


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
        reject_unknown(type(self.index).__name__, "query", query_args, type(self.index).query_defaults)
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


# ------------------------------------------------------------------------------------------------- peers
class PeerAlgorithm(BenchAlgorithm):
    """What the peer adapters share: the lazy import, the parameter-name checks, freeing the index."""

    module = ""  # the Python module to import
    build_params: tuple[str, ...] = ()
    query_params: tuple[str, ...] = ()

    def __init__(self, dim: int, metric: str, build_args: dict[str, Any], threads: int = 1, seed: int = 0):
        super().__init__(dim, metric, build_args, threads, seed)
        reject_unknown(self.name, "build", build_args, self.build_params)
        self.lib = _import_peer(self.module)
        self.index = None

    @property
    def name(self) -> str:
        return self.library

    def set_query_arguments(self, **query_args: Any) -> None:
        reject_unknown(self.name, "query", query_args, self.query_params)
        super().set_query_arguments(**query_args)

    def _int_arg(self, name: str, default: int) -> int:
        return int(self.build_args.get(name, default))

    def done(self) -> None:
        self.index = None


class FaissAlgorithm(PeerAlgorithm):
    """faiss ``Flat`` (exact), ``IVFFlat`` (build nlist, query nprobe), ``IVFPQ`` (IndexIVFPQ inside
    IndexRefineFlat: build nlist, m, nbits; query nprobe, rerank = the refine k_factor) and ``HNSWFlat`` (build M,
    ef_construction; query ef).  Cosine runs as inner product on normalised vectors, as faiss users do."""

    library = module = "faiss"
    KINDS = {"Flat": ((), ()), "IVFFlat": (("nlist",), ("nprobe",)),
             "IVFPQ": (("nlist", "m", "nbits"), ("nprobe", "rerank")),
             "HNSWFlat": (("M", "ef_construction"), ("ef",))}

    def __init__(self, kind: str, dim: int, metric: str, build_args: dict[str, Any], threads: int = 1,
                 seed: int = 0):
        if kind not in self.KINDS:
            raise InvalidParameterError(f"faiss index kind must be one of {sorted(self.KINDS)}, got {kind!r}")
        self.kind = kind
        self.build_params, self.query_params = self.KINDS[kind]
        super().__init__(dim, metric, build_args, threads, seed)
        self.lib.omp_set_num_threads(threads)

    @property
    def name(self) -> str:
        return f"faiss {self.kind}"

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        return _normalized(x) if self.metric == "cosine" else np.ascontiguousarray(x, dtype=np.float32)

    def fit(self, train: np.ndarray) -> None:
        faiss = self.lib
        metric = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        x = self._prepare(train)
        if self.kind == "Flat":
            self.index = faiss.IndexFlat(self.dim, metric)
        elif self.kind == "IVFFlat":
            self._quantizer = faiss.IndexFlat(self.dim, metric)  # faiss does not own it: keep it alive
            self.index = faiss.IndexIVFFlat(self._quantizer, self.dim, self._int_arg("nlist", 100), metric)
            self.index.cp.seed = self.seed
            self.index.train(x)
        elif self.kind == "IVFPQ":
            self._quantizer = faiss.IndexFlat(self.dim, metric)
            self._ivfpq = faiss.IndexIVFPQ(self._quantizer, self.dim, self._int_arg("nlist", 100),
                                           self._int_arg("m", 8), self._int_arg("nbits", 8), metric)
            self._ivfpq.cp.seed = self.seed
            self.index = faiss.IndexRefineFlat(self._ivfpq)  # exact re-ranking of k_factor * k candidates
            self.index.train(x)
        else:
            self.index = faiss.IndexHNSWFlat(self.dim, self._int_arg("M", 16), metric)
            self.index.hnsw.efConstruction = self._int_arg("ef_construction", 40)
        self.index.add(x)
        self.n_points = len(train)

    def set_query_arguments(self, **query_args: Any) -> None:
        super().set_query_arguments(**query_args)
        if "nprobe" in query_args:
            target = self._ivfpq if self.kind == "IVFPQ" else self.index
            target.nprobe = int(query_args["nprobe"])
        if "rerank" in query_args:
            self.index.k_factor = float(query_args["rerank"])
        if "ef" in query_args:
            self.index.hnsw.efSearch = int(query_args["ef"])

    def batch_query(self, queries: np.ndarray, k: int) -> np.ndarray:
        _, ids = self.index.search(self._prepare(queries), k)
        return ids

    def query(self, vector: np.ndarray, k: int) -> np.ndarray:
        return self.batch_query(vector[None, :], k)[0]

    def _stats(self):
        cvar = self.lib.cvar
        return {"IVFFlat": cvar.indexIVF_stats, "IVFPQ": cvar.indexIVF_stats, "HNSWFlat": cvar.hnsw_stats}.get(self.kind)

    def reset_counters(self) -> None:
        super().reset_counters()
        if self._stats() is not None:
            self._stats().reset()

    def distance_computations(self) -> int | None:
        stats = self._stats()
        return None if stats is None else int(stats.ndis)

    def save(self, directory: Path) -> int:
        file = directory / "faiss.index"
        self.lib.write_index(self.index, str(file))
        return file.stat().st_size


class HnswlibAlgorithm(PeerAlgorithm):
    """hnswlib: build M, ef_construction; query ef."""

    library = module = "hnswlib"
    build_params, query_params = ("M", "ef_construction"), ("ef",)
    SPACES = {"l2": "l2", "cosine": "cosine", "dot": "ip"}

    def fit(self, train: np.ndarray) -> None:
        self.index = self.lib.Index(space=self.SPACES[self.metric], dim=self.dim)
        self.index.init_index(max_elements=len(train), M=self._int_arg("M", 16),
                              ef_construction=self._int_arg("ef_construction", 200), random_seed=self.seed)
        self.index.set_num_threads(self.threads)
        self.index.add_items(np.ascontiguousarray(train, dtype=np.float32), np.arange(len(train)))
        self.n_points = len(train)

    def set_query_arguments(self, **query_args: Any) -> None:
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


class AnnoyAlgorithm(PeerAlgorithm):
    """annoy: build n_trees; query search_k (-1: annoy's default, n_trees * k).  No batch API: a batch loops."""

    library = module = "annoy"
    build_params, query_params = ("n_trees",), ("search_k",)
    METRICS = {"l2": "euclidean", "cosine": "angular", "dot": "dot"}

    def fit(self, train: np.ndarray) -> None:
        self.index = self.lib.AnnoyIndex(self.dim, self.METRICS[self.metric])
        self.index.set_seed(self.seed)
        for i, vector in enumerate(np.asarray(train, dtype=np.float32)):
            self.index.add_item(i, vector)
        self.index.build(self._int_arg("n_trees", 10), n_jobs=self.threads)
        self.n_points = len(train)

    def query(self, vector: np.ndarray, k: int) -> np.ndarray:
        return np.asarray(self.index.get_nns_by_vector(vector, k, int(self.query_args.get("search_k", -1))),
                          dtype=np.int64)

    def save(self, directory: Path) -> int:
        file = directory / "annoy.ann"
        self.index.save(str(file))
        return file.stat().st_size


# ------------------------------------------------------------------------------------------------- numpy
class NumpyAlgorithm(BenchAlgorithm):
    """The exact search everyone writes first: one (q, n) score matrix by BLAS, ``argpartition``, then the k
    winners sorted.  The baseline an exact index has to beat (cosine: inner product of normalised vectors).
    ``kind="product"`` is the BLAS product ``Q @ X.T`` alone, answering nothing (recall 0): the speed limit of
    any exact search by products, which an exact index's QPS is read against."""

    library = "numpy"
    KINDS = ("argpartition", "product")

    def __init__(self, dim: int, metric: str, build_args: dict[str, Any], threads: int = 1, seed: int = 0,
                 kind: str = "argpartition"):
        super().__init__(dim, metric, build_args, threads, seed)
        reject_unknown("numpy", "build", build_args, ())
        if kind not in self.KINDS:
            raise InvalidParameterError(f"numpy index kind must be one of {self.KINDS}, got {kind!r}")
        self.kind = kind

    @property
    def name(self) -> str:
        return "numpy matmul+argpartition" if self.kind == "argpartition" else "BLAS product alone"

    def fit(self, train: np.ndarray) -> None:
        self.x = _normalized(train) if self.metric == "cosine" else np.ascontiguousarray(train, dtype=np.float32)
        self.sq_norms = np.einsum("ij,ij->i", self.x, self.x)
        self.n_points = len(train)

    def set_query_arguments(self, **query_args: Any) -> None:
        reject_unknown("numpy", "query", query_args, ())

    def batch_query(self, queries: np.ndarray, k: int) -> np.ndarray:
        q = _normalized(queries) if self.metric == "cosine" else queries
        scores = q @ self.x.T
        if self.kind == "product":
            return np.full((len(q), k), -1, dtype=np.int64)
        distances = self.sq_norms[None, :] - 2.0 * scores if self.metric == "l2" else -scores
        part = np.argpartition(distances, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(distances, part, axis=1), axis=1)
        return np.take_along_axis(part, order, axis=1)

    def save(self, directory: Path) -> int:
        file = directory / "vectors.npy"
        np.save(file, self.x)
        return file.stat().st_size

    def done(self) -> None:
        self.x = self.sq_norms = None


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
    if library == "numpy":
        return NumpyAlgorithm(dim, metric, build_args, threads, seed, definition.index or "argpartition")
    raise InvalidParameterError(f"{definition.name}: unknown library {library!r} "
                                "(lookalike, faiss, hnswlib, annoy, numpy)")


def availability(definition: Definition) -> str | None:
    """None when the definition can run here, else why not (without building anything)."""
    if definition.library == "lookalike":
        from ..index.registry import available

        ok = definition.index in available()
        return None if ok else f"lookalike index type {definition.index!r} is not available in this build"
    if definition.library == "numpy":
        return None
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
