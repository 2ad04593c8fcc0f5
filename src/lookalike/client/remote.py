"""``Client`` and ``RemoteCollection``: the API of ``Database`` and ``Collection``, served by ``lookalike serve``.

Moving code from an embedded database to a server is one line::

    db = lookalike.Database("my-db")                      # embedded
    db = lookalike.Client("http://127.0.0.1:8000")        # the same calls, over HTTP

Input is checked here with the embedded API's own checks (ids, vectors, metadata, k, names), so a mistake raises
the same error with the same message before anything is sent; what only the server can know (a duplicate id, an
unknown index, a bad filter) comes back as the same typed error too.  Vectors travel as base64 float32.  A batch
larger than one request may carry (the server's ``limits`` in ``GET /api/health``) is sent in several requests,
each atomic on its own.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .._validation import as_matrix, check_k, check_positive_int
from ..collection import MAX_METADATA_BYTES, Points, check_ids, check_points
from ..database import MAX_DIM, check_name
from ..errors import InvalidInputError, InvalidNameError
from ..metrics import get_metric
from ..server.protocol import decode_array, encode_array, rebuild_error
from ..types import SearchResult
from .transport import Transport, segment

# used until the server's own limits are known (an older server does not publish them)
DEFAULT_LIMITS = {"max_body_bytes": 32 * 1024 * 1024, "max_batch": 100_000, "max_k": 1000,
                  "max_query_batch": 10_000, "max_hits": 1_000_000}
BODY_FILL = 0.5  # fill a request body to at most this fraction of the server's limit: JSON framing is extra
FLAT = "flat"


class Client:
    """``Client("http://127.0.0.1:8000", api_key=None)``: a lookalike server, with the API of ``Database``."""

    def __init__(self, url: str = "http://127.0.0.1:8000", api_key: str | None = None, *, timeout: float = 60.0):
        self._http = Transport(url, api_key, timeout)
        self.url = self._http.url
        self._limits: dict[str, int] | None = None

    # ------------------------------------------------------------------------------------------------ server
    def health(self) -> dict[str, Any]:
        return self._http.get("/health")

    @property
    def limits(self) -> dict[str, int]:
        """How much one request may carry (asked once from the server)."""
        if self._limits is None:
            self._limits = {**DEFAULT_LIMITS, **(self.health().get("limits") or {})}
        return self._limits

    # ------------------------------------------------------------------------------------------------ collections
    def create_collection(self, name: str, dim: int, metric: str = "cosine", *, embedder: str | None = None,
                          exist_ok: bool = False) -> "RemoteCollection":
        check_name(name)
        dim = check_positive_int(dim, "dim")
        if dim > MAX_DIM:
            raise InvalidNameError(f"dim must be <= {MAX_DIM}, got {dim}")
        body = {"name": name, "dim": dim, "metric": get_metric(metric).name, "embedder": embedder,
                "exist_ok": bool(exist_ok)}
        return RemoteCollection(self, self._http.post("/collections", body))

    def get_or_create_collection(self, name: str, dim: int, metric: str = "cosine", **kw: Any) -> "RemoteCollection":
        return self.create_collection(name, dim, metric, exist_ok=True, **kw)

    def get_collection(self, name: str) -> "RemoteCollection":
        check_name(name)
        return RemoteCollection(self, self._http.get(f"/collections/{segment(name)}"))

    def list_collections(self) -> list[str]:
        return sorted(info["name"] for info in self._http.get("/collections"))

    def drop_collection(self, name: str) -> None:
        check_name(name)
        self._http.post(f"/collections/{segment(name)}/drop", {})

    def __contains__(self, name: str) -> bool:
        return name in self.list_collections()

    # ------------------------------------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close this thread's connection.  Nothing else needs closing: every write committed on the server."""
        self._http.close_connection()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"


class RemoteCollection:
    """A collection on a server, with the API of ``Collection``.  Get one from ``Client.get_collection`` /
    ``create_collection``."""

    def __init__(self, client: Client, info: dict[str, Any]):
        self._client = client
        self._http = client._http
        self.name: str = info["name"]
        self.dim: int = int(info["dim"])
        self.metric: str = info["metric"]
        self.embedder: str | None = info.get("embedder")
        self._path = f"/collections/{segment(self.name)}"

    # ================================================================== info
    def info(self) -> dict[str, Any]:
        """As ``Collection.info()``: name, dim, metric, embedder, count, version, indexes, default_index,
        metadata_indexes."""
        answer = self._http.get(self._path)
        indexes = {index["name"]: {"type": index["type"], **index["params"]} for index in answer["indexes"]}
        return {"name": answer["name"], "dim": answer["dim"], "metric": answer["metric"],
                "embedder": answer["embedder"], "count": answer["count"], "version": answer.get("version"),
                "indexes": indexes, "default_index": answer["default_index"],
                "metadata_indexes": answer.get("metadata_indexes", [])}

    def __len__(self) -> int:
        return int(self._http.get(self._path)["count"])

    def count(self) -> int:
        return len(self)

    @property
    def indexes(self) -> list[str]:
        return [FLAT, *sorted(name for name in self.info()["indexes"] if name != FLAT)]

    @property
    def default_index(self) -> str:
        return self.info()["default_index"]

    def __repr__(self) -> str:
        return f"RemoteCollection({self.name!r}, dim={self.dim}, metric={self.metric!r}, url={self._client.url!r})"

    # ================================================================== writes
    def add(self, ids: Any, vectors: Any, metadata: Any = None) -> None:
        """Add new points.  An id already stored, or given twice, raises DuplicateIdError."""
        self._write(ids, vectors, metadata, replace=False)

    def upsert(self, ids: Any, vectors: Any, metadata: Any = None) -> None:
        """Add points, replacing the vector and metadata of ids already stored."""
        self._write(ids, vectors, metadata, replace=True)

    def _write(self, ids: Any, vectors: Any, metadata: Any, *, replace: bool) -> None:
        if self._write_in_one_request(ids, vectors, metadata, replace):
            return
        # the embedded checks (the server repeats the metric's own); the metadata JSON sizes the requests
        ext_ids, x, texts = check_points(ids, vectors, metadata, self.dim, refuse_zero=False)
        row_bytes = [_vector_bytes(self.dim) + _id_bytes(i) + (len(t) if t else 4) for i, t in zip(ext_ids, texts)]
        for rows in self._batches(row_bytes):
            # the metadata goes as the JSON texts the checks made: encoded once, not twice
            metadata_json = "null" if metadata is None else "[" + ",".join(t or "null" for t in texts[rows]) + "]"
            self._post_points(_dumps(ext_ids[rows]), _dumps(encode_array(x[rows])), metadata_json, replace)

    def _write_in_one_request(self, ids: Any, vectors: Any, metadata: Any, replace: bool) -> bool:
        """The common write, a batch that fits in one request, with the metadata encoded as one JSON text (one
        call of the C encoder instead of one per point).  False, nothing sent, when it is anything else: the
        general path then checks each point and names the one at fault."""
        shaped = metadata is None or isinstance(metadata, list) and len(metadata) == len(ids)
        if not isinstance(ids, list) or not shaped:
            return False
        for item in metadata or ():
            if item is not None and (type(item) is not dict or not all(isinstance(key, str) for key in item)):
                return False
        try:
            metadata_json = _dumps(metadata)
        except (TypeError, ValueError):
            return False
        limits = self._client.limits
        most_bytes = len(metadata_json) if metadata_json.isascii() else 4 * len(metadata_json)
        if len(ids) > limits["max_batch"] or most_bytes > MAX_METADATA_BYTES:
            return False  # a point's metadata may be over its limit: checked point by point
        ext_ids = check_ids(ids)
        x = as_matrix(vectors, self.dim)
        if len(x) != len(ext_ids):
            return False
        encoded = _dumps(encode_array(x))
        ids_json = _dumps(ext_ids)
        if len(encoded) + len(ids_json) + 4 * len(metadata_json) > BODY_FILL * limits["max_body_bytes"]:
            return False
        self._post_points(ids_json, encoded, metadata_json, replace)
        return True

    def _post_points(self, ids_json: str, vectors_json: str, metadata_json: str, replace: bool) -> None:
        """POST one batch of points, its parts already JSON texts (the body is put together, not encoded again)."""
        body = (f'{{"ids":{ids_json},"vectors":{vectors_json},"metadata":{metadata_json},'
                f'"replace":{"true" if replace else "false"}}}')
        self._http.post(f"{self._path}/points", body.encode("utf-8"))

    def delete(self, ids: Any = None, *, where: dict[str, Any] | None = None) -> int:
        """Delete points by id (every id must exist, else IdNotFoundError) or by filter; returns how many."""
        if (ids is None) == (where is None):
            raise InvalidInputError("delete takes ids or where=, exactly one of them")
        if where is not None:
            return int(self._http.post(f"{self._path}/points/delete", {"where": where})["deleted"])
        ext_ids = check_ids(ids)
        return sum(int(self._http.post(f"{self._path}/points/delete", {"ids": ext_ids[rows]})["deleted"])
                   for rows in self._id_batches(len(ext_ids)))

    # ================================================================== reads
    def get(self, ids: Any) -> Points:
        """Vectors and metadata of ids, in the order given.  An unknown id raises IdNotFoundError."""
        ext_ids = check_ids(ids)
        vectors, metadatas = [], []
        for rows in self._id_batches(len(ext_ids)):
            answer = self._http.post(f"{self._path}/points/get", {"ids": ext_ids[rows]})
            vectors.append(decode_array(answer["vectors"], ndim=2))
            metadatas += answer["metadatas"]
        return Points(ids=ext_ids, vectors=np.concatenate(vectors), metadatas=metadatas)

    def has(self, ids: Any) -> list[bool]:
        """Whether each id is stored (no error for unknown ids)."""
        ext_ids = check_ids(ids)
        found: list[bool] = []
        for rows in self._id_batches(len(ext_ids)):
            found += self._http.post(f"{self._path}/points/has", {"ids": ext_ids[rows]})["found"]
        return found

    def ids(self) -> list[Any]:
        """Every id, in insertion order."""
        return self._http.post(f"{self._path}/points/get", {"ids": None, "include": []})["ids"]

    def get_vectors(self, ids: Any = None) -> np.ndarray:
        """Vectors as stored (not normalised), of ``ids`` or of every point in insertion order."""
        if ids is not None:
            return self.get(ids).vectors
        answer = self._http.post(f"{self._path}/points/get", {"ids": None, "include": ["vectors"]})
        return decode_array(answer["vectors"], ndim=2)

    def query(self, vectors: Any, k: int = 10, where: dict[str, Any] | None = None, index: str | None = None, *,
              with_recall: bool = False, include_metadata: bool = True, **query_params: Any) -> SearchResult:
        """The k nearest points of each query vector, as ``Collection.query`` (results are batch-shaped)."""
        k = check_k(k)
        q = as_matrix(vectors, self.dim, what="queries")
        limits = self._client.limits
        per_request = max(1, min(limits["max_query_batch"], limits["max_hits"] // k,
                                 int(BODY_FILL * limits["max_body_bytes"]) // _vector_bytes(self.dim)))
        parts = []
        for start in range(0, len(q), per_request):
            answer = self._http.post(f"{self._path}/query", {
                "vectors": encode_array(q[start:start + per_request]), "k": k, "where": where, "index": index,
                "params": query_params, "with_recall": with_recall, "include_metadata": include_metadata})
            parts.append(_search_result(answer, k))
        return parts[0] if len(parts) == 1 else _concatenate(parts)

    def search(self, text: str | None = None, image: Any = None, k: int = 10, where: dict[str, Any] | None = None,
               index: str | None = None, **query_params: Any) -> SearchResult:
        """Search by one text or one photo (a PIL image, a file path or its bytes), as ``Collection.search``: the
        server embeds it through the collection's query route (its search routes), so the hits are the same."""
        import io

        from ..embed.queries import search_query

        k = check_k(k)
        modality, item = search_query(text, image)
        if modality == "text":
            answer = self._http.post(f"{self._path}/search", {"text": item, "k": k, "where": where, "index": index,
                                                               "params": query_params})
        else:
            buffer = io.BytesIO()
            item.save(buffer, format="PNG")  # lossless: the server decodes the same pixels
            fields = {"k": str(k), "params": json.dumps(query_params)}
            if index is not None:
                fields["index"] = index
            if where is not None:
                fields["where"] = json.dumps(where)
            answer = self._http.post_form(f"{self._path}/search/image", fields, "query.png", buffer.getvalue())
        return _hits_result(answer, k)

    # ================================================================== indexes
    def create_index(self, type: str, *, default: bool = True, **params: Any) -> dict[str, Any]:
        """Build (or rebuild) an index on the server and wait for it; returns its config, ``build_s`` and
        ``count``.  Queries to the server go on meanwhile."""
        status = self._http.post(f"{self._path}/index",
                                 {"type": type, "params": params, "default": default, "wait": True})
        if status.get("state") == "failed":
            raise rebuild_error(None, {"error": status.get("error") or {}})
        return status.get("config") or {"type": type}

    def index_status(self) -> dict[str, Any]:
        """The server's status of this collection's last index build."""
        return self._http.get(f"{self._path}/index")

    def drop_index(self, type: str) -> None:
        self._http.post(f"{self._path}/index/drop", {"type": type})

    def create_metadata_index(self, key: str) -> None:
        """A B-tree on one metadata key, so filters on it stop scanning every point.  Idempotent."""
        self._http.post(f"{self._path}/metadata-indexes", {"key": key})

    def tune(self, index: str | None = None, target_recall: float = 0.95, k: int = 10, *, queries: Any = None,
             sample: int = 200, apply: bool = True, modality: str | None = None):
        """Find the cheapest query parameter of an index that reaches ``target_recall`` (``Collection.tune``)."""
        from ..tune import TuneReport

        body = {"index": index, "target_recall": target_recall, "k": k, "sample": sample, "apply": apply,
                "modality": modality}
        if queries is not None:
            body["queries"] = encode_array(as_matrix(queries, self.dim, what="queries"))
        answer = self._http.post(f"{self._path}/tune", body)
        return TuneReport(**answer)

    def flush(self) -> None:
        """Nothing to do: the server owns the index files."""

    def close(self) -> None:
        """Nothing to do: see ``Client.close``."""

    # ================================================================== batching
    def _batches(self, row_bytes: list[int]):
        """Slices of rows whose requests stay under the server's limits (bytes and rows)."""
        limits = self._client.limits
        budget, max_rows = BODY_FILL * limits["max_body_bytes"], limits["max_batch"]
        start, size = 0, 0
        for row, cost in enumerate(row_bytes):
            if row > start and (size + cost > budget or row - start >= max_rows):
                yield slice(start, row)
                start, size = row, 0
            size += cost
        yield slice(start, len(row_bytes))

    def _id_batches(self, n: int):
        step = self._client.limits["max_batch"]
        return [slice(start, start + step) for start in range(0, n, step)]


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False)


def _id_bytes(ext_id: Any) -> int:
    """The bytes of an id in a request: exact for plain strings and ints, without encoding each one."""
    if isinstance(ext_id, str) and ext_id.isascii() and ext_id.isprintable() and '"' not in ext_id \
            and "\\" not in ext_id:
        return len(ext_id) + 2
    return len(_dumps(ext_id).encode("utf-8"))


def _vector_bytes(dim: int) -> int:
    return (4 * dim * 4 + 2) // 3  # base64 of dim float32


def _search_result(answer: dict[str, Any], k: int) -> SearchResult:
    n = len(answer["ids"])
    ids = np.empty((n, k), dtype=object)
    for i, row in enumerate(answer["ids"]):
        ids[i, :] = row
    metadatas = answer["metadatas"]
    return SearchResult(
        ids=ids,
        distances=decode_array(answer["distances"], ndim=2),
        similarities=decode_array(answer["similarities"], ndim=2),
        metadatas=metadatas if metadatas is not None else [[None] * k for _ in range(n)],
        true_knn=None if answer["true_knn"] is None else np.asarray(answer["true_knn"], dtype=bool).reshape(n, k),
        recall=None if answer["recall"] is None else np.asarray(answer["recall"], dtype=np.float64),
        stats=answer["stats"],
    )


def _hits_result(answer: dict[str, Any], k: int) -> SearchResult:
    """A search route's answer (hits) as a one-query ``SearchResult``, padded to ``k`` like ``Collection.query``."""
    hits = answer["hits"]
    ids = np.full((1, k), None, dtype=object)
    distances = np.full((1, k), np.inf, dtype=np.float32)
    similarities = np.full((1, k), -np.inf, dtype=np.float32)
    metadatas: list[list[Any]] = [[None] * k]
    for j, hit in enumerate(hits[:k]):
        ids[0, j], distances[0, j], similarities[0, j] = hit["id"], hit["distance"], hit["score"]
        metadatas[0][j] = hit["metadata"]
    stats = {"search_ms": answer["latency_ms"]["search"], "embed_ms": answer["latency_ms"]["embed"],
             "index": answer["index"], "params": answer.get("params")}
    return SearchResult(ids=ids, distances=distances, similarities=similarities, metadatas=metadatas, stats=stats)


def _concatenate(parts: list[SearchResult]) -> SearchResult:
    """One result of the batch sent in several requests."""
    first = parts[0]
    stats = dict(first.stats)
    for key in ("search_ms", "exact_ms"):
        if key in stats:
            stats[key] = sum(part.stats.get(key, 0.0) for part in parts)
    return SearchResult(
        ids=np.concatenate([p.ids for p in parts]),
        distances=np.concatenate([p.distances for p in parts]),
        similarities=np.concatenate([p.similarities for p in parts]),
        metadatas=[row for p in parts for row in p.metadatas],
        true_knn=None if first.true_knn is None else np.concatenate([p.true_knn for p in parts]),
        recall=None if first.recall is None else np.concatenate([p.recall for p in parts]),
        stats=stats,
    )
