"""Data sets for the benchmark: ann-benchmarks HDF5 files, seeded synthetic mixtures, Fashion-MNIST from the Debian
package, and a lookalike collection.

Every loader returns a ``Dataset``: float32 ``train`` (the points indexed) and ``test`` (the queries), the metric,
and the ground truth when the source has it (ann-benchmarks files ship ``neighbors`` / ``distances``).

The HDF5 layout is the one ann-benchmarks publishes, so a downloaded ``glove-100-angular.hdf5`` works as is:
datasets ``train`` (n, d), ``test`` (q, d), ``neighbors`` (q, K) int, ``distances`` (q, K) float; attributes
``distance`` ("euclidean", "angular", ...) and ``dimension``.
"""

from __future__ import annotations

import gzip
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, InvalidParameterError, StorageFormatError, UnknownMetricError
from ..metrics import get_metric

#: ann-benchmarks distance name -> lookalike metric name (ann-benchmarks also has hamming / jaccard: unsupported)
_DISTANCE_TO_METRIC = {"euclidean": "l2", "angular": "cosine", "dot": "dot", "ip": "dot", "inner_product": "dot"}
_METRIC_TO_DISTANCE = {"l2": "euclidean", "cosine": "angular", "dot": "dot"}

FASHION_MNIST = "fashion-mnist-784-euclidean"
FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
DEFAULT_SYNTHETIC_CLUSTERS = 32
DEFAULT_QUERIES = 500  # queries of a synthetic set or a collection when --queries is not given


@dataclass
class Dataset:
    name: str
    train: np.ndarray  # (n, d) float32, the points indexed
    test: np.ndarray  # (q, d) float32, the queries
    metric: str  # lookalike metric name: "l2", "cosine" or "dot"
    neighbors: np.ndarray | None = None  # (q, K) int64 true neighbours, when the source ships them
    distances: np.ndarray | None = None  # (q, K) float32 their distances (in the source's own units)
    source: str = ""  # where it came from: a file path, "synthetic", ...

    @property
    def dim(self) -> int:
        return int(self.train.shape[1])

    @property
    def distance(self) -> str:
        """The metric under its ann-benchmarks name."""
        return _METRIC_TO_DISTANCE[self.metric]

    def subset_queries(self, n_queries: int | None) -> "Dataset":
        """The first ``n_queries`` queries (and their ground truth); all of them when None."""
        if n_queries is None or n_queries >= len(self.test):
            return self
        cut = slice(0, n_queries)
        return Dataset(
            self.name,
            self.train,
            self.test[cut],
            self.metric,
            None if self.neighbors is None else self.neighbors[cut],
            None if self.distances is None else self.distances[cut],
            self.source,
        )


def metric_from_distance(distance: str) -> str:
    """An ann-benchmarks ``distance`` attribute (or a lookalike metric name) -> lookalike metric name."""
    name = _DISTANCE_TO_METRIC.get(str(distance).lower(), str(distance).lower())
    try:
        return get_metric(name).name
    except UnknownMetricError:
        raise UnknownMetricError(
            f"distance {distance!r} is not supported by the benchmark: use euclidean, angular or dot"
        ) from None


# ---------------------------------------------------------------------------------------------- HDF5 (ann-benchmarks)
def read_hdf5(path: str | os.PathLike, name: str | None = None) -> Dataset:
    """Read an ann-benchmarks HDF5 file."""
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            for key in ("train", "test"):
                if key not in f:
                    raise StorageFormatError(f"{path} has no {key!r} dataset: it is not an ann-benchmarks file")
            train = np.ascontiguousarray(f["train"][:], dtype=np.float32)
            test = np.ascontiguousarray(f["test"][:], dtype=np.float32)
            neighbors = np.asarray(f["neighbors"][:], dtype=np.int64) if "neighbors" in f else None
            distances = np.asarray(f["distances"][:], dtype=np.float32) if "distances" in f else None
            distance = f.attrs.get("distance", "euclidean")
            if isinstance(distance, bytes):
                distance = distance.decode()
    except OSError as exc:
        raise StorageFormatError(f"cannot read {path} as HDF5: {exc}") from None
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise StorageFormatError(f"{path}: train {train.shape} and test {test.shape} are not (n, d) and (q, d)")
    if neighbors is not None and len(neighbors) != len(test):
        raise StorageFormatError(f"{path}: neighbors has {len(neighbors)} rows for {len(test)} queries")
    return Dataset(name or path.stem, train, test, metric_from_distance(distance), neighbors, distances, str(path))


def write_hdf5(path: str | os.PathLike, dataset: Dataset) -> Path:
    """Write ``dataset`` in the ann-benchmarks layout (written aside, then renamed into place)."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with h5py.File(tmp, "w") as f:
        f.attrs["distance"] = dataset.distance
        f.attrs["dimension"] = dataset.dim
        f.attrs["point_type"] = "float"
        f.create_dataset("train", data=dataset.train)
        f.create_dataset("test", data=dataset.test)
        if dataset.neighbors is not None:
            f.create_dataset("neighbors", data=dataset.neighbors.astype(np.int32))
        if dataset.distances is not None:
            f.create_dataset("distances", data=dataset.distances.astype(np.float32))
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------------------------- synthetic
def synthetic(
    n: int, dim: int, clusters: int = DEFAULT_SYNTHETIC_CLUSTERS, n_queries: int = DEFAULT_QUERIES, seed: int = 0,
    metric: str = "cosine",
) -> Dataset:
    """A seeded Gaussian mixture on the unit sphere: ``clusters`` random directions, points scattered around them
    and projected back onto the sphere.  Clustered like real embeddings (unlike uniform noise, where every
    neighbour is almost as far as any other).  The queries are fresh draws from the same mixture."""
    for value, what in ((n, "N"), (dim, "D"), (clusters, "clusters"), (n_queries, "queries")):
        if value < 1:
            raise InvalidParameterError(f"synthetic data set: {what} must be >= 1, got {value}")
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    spread = 1.5 / np.sqrt(dim)  # per coordinate, so the cluster radius (~1.5 x) does not shrink with the dimension

    def draw(count: int) -> np.ndarray:
        points = centers[rng.integers(0, clusters, size=count)] + spread * rng.standard_normal((count, dim))
        points /= np.linalg.norm(points, axis=1, keepdims=True)
        return points.astype(np.float32)

    metric = metric_from_distance(metric)
    name = f"synthetic-{n}-{dim}-{clusters}-{_METRIC_TO_DISTANCE[metric]}"
    return Dataset(name, draw(n), draw(n_queries), metric, source=f"synthetic(seed={seed})")


def parse_synthetic_spec(spec: str) -> tuple[int, int, int]:
    """``synthetic:N:D[:clusters]`` -> (N, D, clusters); sizes accept 10k / 1m suffixes."""
    parts = spec.split(":")[1:]
    if not 2 <= len(parts) <= 3:
        raise InvalidInputError(f"bad data set spec {spec!r}: write synthetic:N:D or synthetic:N:D:clusters")
    values = [_parse_count(p, spec) for p in parts]
    clusters = values[2] if len(values) == 3 else DEFAULT_SYNTHETIC_CLUSTERS
    return values[0], values[1], clusters


def _parse_count(text: str, spec: str) -> int:
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    digits = text[:-1] if scale > 1 else text
    if not digits.isdigit():
        raise InvalidInputError(f"bad data set spec {spec!r}: {text!r} is not a count (like 10000 or 10k)")
    return int(digits) * scale


# ---------------------------------------------------------------------------------------------- Fashion-MNIST
def read_idx_gz(path: str | os.PathLike) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST format): 2 zero bytes, a type code, the number of dimensions, then one
    big-endian uint32 size per dimension, then the values in C order."""
    types = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"),
             0x0E: np.dtype(">f8")}
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in types:
        raise StorageFormatError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(types[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise StorageFormatError(f"{path}: header says shape {shape}, the file holds {len(raw) - offset} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)


def fashion_mnist_files() -> dict[str, Path]:
    """Paths of the four gzipped IDX files of the Debian package, found through ``dpkg -L``."""
    try:
        listing = subprocess.run(["dpkg", "-L", FASHION_MNIST_PACKAGE], capture_output=True, text=True, check=False)
    except OSError:
        listing = None
    paths = listing.stdout.splitlines() if listing is not None and listing.returncode == 0 else []
    found = {}
    for stem in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        hits = [Path(p) for p in paths if Path(p).name == f"{stem}.gz"]
        if hits and hits[0].is_file():
            found[stem] = hits[0]
    if len(found) < 2:
        raise StorageFormatError(
            f"{FASHION_MNIST} needs the Debian package {FASHION_MNIST_PACKAGE}: "
            f"apt-get install -y {FASHION_MNIST_PACKAGE} (or pass the path of an ann-benchmarks HDF5 file)"
        )
    return found


def load_fashion_mnist(cache_dir: str | os.PathLike) -> Dataset:
    """Fashion-MNIST as ann-benchmarks publishes it: train 60k and test 10k raw pixel vectors (784 dims, 0..255),
    euclidean, 100 true neighbours by FlatIndex.  Built once from the Debian package and cached as HDF5."""
    target = Path(cache_dir) / f"{FASHION_MNIST}.hdf5"
    if target.exists():
        return read_hdf5(target, FASHION_MNIST)
    files = fashion_mnist_files()
    train = read_idx_gz(files["train-images-idx3-ubyte"]).reshape(-1, 784).astype(np.float32)
    test = read_idx_gz(files["t10k-images-idx3-ubyte"]).reshape(-1, 784).astype(np.float32)
    dataset = Dataset(FASHION_MNIST, train, test, "l2", source=str(files["train-images-idx3-ubyte"].parent))
    from ..evaluation import exact_neighbors

    dataset.neighbors, dataset.distances = exact_neighbors(train, test, 100, "l2")
    write_hdf5(target, dataset)
    dataset.source = str(target)
    return dataset


# ---------------------------------------------------------------------------------------------- lookalike collection
def load_collection_dataset(db_path: str | os.PathLike, name: str, n_queries: int = DEFAULT_QUERIES,
                            seed: int = 0) -> Dataset:
    """The vectors of a lookalike collection, with ``n_queries`` of them (drawn with ``seed``) held out as queries,
    the way ann-benchmarks splits its sets.  Reads through ``lookalike.Database(path).get_collection(name)``."""
    import lookalike

    collection = lookalike.Database(db_path).get_collection(name)
    vectors = _as_vector_matrix(collection.get_vectors())
    metric = metric_from_distance(str(getattr(collection, "metric", "cosine")))
    if len(vectors) < 2:
        raise InvalidInputError(f"collection {name!r} holds {len(vectors)} vector(s): a benchmark needs at least 2")
    n_queries = min(n_queries, len(vectors) // 2)
    rng = np.random.default_rng(seed)
    held_out = np.zeros(len(vectors), dtype=bool)
    held_out[rng.choice(len(vectors), size=n_queries, replace=False)] = True
    return Dataset(f"collection-{name}", vectors[~held_out], vectors[held_out], metric, source=f"{db_path}:{name}")


def _as_vector_matrix(value) -> np.ndarray:
    """``Collection.get_vectors()`` may answer an array, an (ids, vectors) pair or a dict: keep the vectors."""
    if isinstance(value, dict):
        value = value.get("vectors", value.get("embeddings"))
    elif isinstance(value, tuple) and len(value) == 2:
        value = value[1]
    vectors = np.ascontiguousarray(value, dtype=np.float32)
    if vectors.ndim != 2:
        raise InvalidInputError(f"the collection's vectors have shape {vectors.shape}, expected (n, d)")
    return vectors


# ---------------------------------------------------------------------------------------------- one entry point
DATASET_SPEC_HELP = """\
data set SPEC, one of:
  synthetic:N:D[:clusters]   seeded Gaussian mixture on the sphere (N points, D dims; sizes like 10k);
                             --queries fresh queries, --metric (default angular), --seed
  PATH.hdf5                  an ann-benchmarks HDF5 file (train/test/neighbors/distances, attr distance)
  NAME                       NAME.hdf5 in the cache dir (e.g. glove-100-angular, sift-128-euclidean,
                             once downloaded there)
  fashion-mnist-784-euclidean  built from the Debian package dataset-fashion-mnist (60k/10k, L2), cached as HDF5
  collection:DB_PATH:NAME    the vectors of a lookalike collection, --queries of them held out as queries"""


def load_dataset(
    spec: str, cache_dir: str | os.PathLike, *, n_queries: int | None = None, seed: int = 0, metric: str | None = None,
) -> Dataset:
    """Resolve a data set SPEC (see ``DATASET_SPEC_HELP``).  ``n_queries`` keeps the first queries of a file, or
    sets how many queries a synthetic set or a collection gets."""
    if spec.startswith("synthetic:"):
        n, dim, clusters = parse_synthetic_spec(spec)
        return synthetic(n, dim, clusters, n_queries or DEFAULT_QUERIES, seed, metric or "angular")
    if spec.startswith("collection:"):
        db_path, _, name = spec[len("collection:"):].rpartition(":")
        if not db_path or not name:
            raise InvalidInputError(f"bad data set spec {spec!r}: write collection:DB_PATH:NAME")
        return load_collection_dataset(db_path, name, n_queries or DEFAULT_QUERIES, seed)
    if spec == FASHION_MNIST and not Path(spec).exists():
        dataset = load_fashion_mnist(cache_dir)
    else:
        path = Path(spec)
        if not path.exists():
            path = Path(cache_dir) / f"{spec}.hdf5"
        if not path.exists():
            raise StorageFormatError(
                f"no data set {spec!r}: not a file, and no {path} (put the ann-benchmarks HDF5 file there, "
                "or use synthetic:N:D)"
            )
        dataset = read_hdf5(path)
    if metric is not None and metric_from_distance(metric) != dataset.metric:
        raise InvalidParameterError(
            f"{dataset.name} is a {dataset.distance} data set; --metric {metric} does not apply"
        )
    return dataset.subset_queries(n_queries)
