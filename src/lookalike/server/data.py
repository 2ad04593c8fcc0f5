"""The routes that give the HTTP API the whole collection lifecycle next to search, as ``lookalike.Client`` speaks
it: drop a collection; add, upsert, get, test and delete points in batches; batch query by vectors; drop an index,
index a metadata key, tune.  Vectors travel as base64 float32 (``protocol.encode_array``); JSON lists of numbers are
accepted too.  Every handler works on the collection under its handle's lock, as the search routes do."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request

from ..errors import InvalidInputError, InvalidKError, InvalidParameterError
from .._validation import check_k
from .errors import BuildInProgressError
from .protocol import decode_fields, encode_array
from .schemas import (
    MAX_HITS,
    MAX_K,
    MAX_QUERY_BATCH,
    DeleteRequest,
    DropIndexRequest,
    EncodedArray,
    GetPointsRequest,
    HasRequest,
    MetadataIndexRequest,
    PointsResponse,
    QueryRequest,
    QueryResponse,
    TuneRequest,
    UpsertRequest,
)
from .search import IMAGE_KEY, answer_at_once, answer_quickly, public_metadatas, query_collection
from .security import require_api_key
from .state import ServerState

router = APIRouter()
write = [Depends(require_api_key)]


def get_state(request: Request) -> ServerState:
    return request.app.state.lookalike


def vectors_of(value: Any, what: str = "vectors") -> Any:
    """The array a request carries: decoded when it came encoded, as given (lists) otherwise."""
    return decode_fields(value.shape, value.data, what=what) if isinstance(value, EncodedArray) else value


# ------------------------------------------------------------------------------------------------------ collections
@router.post("/collections/{name}/drop", dependencies=write, tags=["collections"])
def drop_collection(name: str, request: Request) -> dict[str, Any]:
    """Drop a collection and its files (409 while one of its indexes is being built).  A POST, as
    ``points/delete``: every write of this API is a POST."""
    get_state(request).drop(name)
    return {"dropped": name}


# ----------------------------------------------------------------------------------------------------------- points
@router.post("/collections/{name}/points", dependencies=write, tags=["points"])
def upsert_points(name: str, body: UpsertRequest, request: Request) -> dict[str, Any]:
    """Add or replace points (vectors + metadata) in one transaction: all of them or none.  ``replace: false`` adds,
    refusing ids already stored (409)."""
    if any(meta and IMAGE_KEY in meta for meta in body.metadata or ()):
        raise InvalidInputError(
            f"metadata key {IMAGE_KEY!r} is reserved: item images are recorded by catalog ingest, which checks them "
            "(through the API it would let a client point the image route at any file)"
        )
    vectors = vectors_of(body.vectors)
    state = get_state(request)
    handle = state.handle(name)
    with handle.lock:
        col = handle.collection
        (col.upsert if body.replace else col.add)(body.ids, vectors, body.metadata)
        count = len(col)
    state.metrics.wrote(name, "upsert" if body.replace else "add", len(body.ids))
    return {"written": len(body.ids), "count": count}


@router.post("/collections/{name}/points/delete", dependencies=write, tags=["points"])
def delete_points(name: str, body: DeleteRequest, request: Request) -> dict[str, Any]:
    """Delete points by ids (all must exist, else 404 and nothing is deleted) or by a metadata filter."""
    state = get_state(request)
    handle = state.handle(name)
    with handle.lock:
        col = handle.collection
        deleted = col.delete(body.ids) if body.ids is not None else col.delete(where=body.where)
        count = len(col)
    state.metrics.wrote(name, "delete", deleted)
    return {"deleted": deleted, "count": count}


@router.post("/collections/{name}/points/get", response_model=PointsResponse, tags=["points"])
def get_points(name: str, body: GetPointsRequest, request: Request) -> dict[str, Any]:
    """Vectors and metadata of ids in the order given (an unknown id: 404), or of every point (``ids`` null)."""
    handle = get_state(request).handle(name)
    with handle.lock:
        col = handle.collection
        ids = body.ids if body.ids is not None else col.ids()
        if ids:
            points = col.get(ids)
            vectors, metadatas = points.vectors, points.metadatas
        else:  # every point of an empty collection
            vectors, metadatas = np.zeros((0, col.dim), np.float32), []
    return {"ids": ids,
            "vectors": encode_array(vectors) if "vectors" in body.include else None,
            "metadatas": public_metadatas(metadatas) if "metadatas" in body.include else None}


@router.post("/collections/{name}/points/has", tags=["points"])
def has_points(name: str, body: HasRequest, request: Request) -> dict[str, list[bool]]:
    """Whether each id is stored (no error for unknown ids)."""
    handle = get_state(request).handle(name)
    with handle.lock:
        return {"found": handle.collection.has(body.ids)}


# ------------------------------------------------------------------------------------------------------------ query
@router.post("/collections/{name}/query", response_model=QueryResponse, tags=["search"])
async def query(name: str, body: QueryRequest, request: Request) -> dict[str, Any]:
    """The k nearest points of each query vector (``Collection.query``): ids typed as stored, distances and
    similarities as encoded float32 arrays (+inf / padding where fewer than k points match).  A single query is
    answered on the event loop (see ``search.answer_quickly``), a batch in a worker thread."""
    return await answer_query(get_state(request), name, body)


async def answer_query(state: ServerState, name: str, body: QueryRequest) -> dict[str, Any]:
    """The query route's answer (also given by ``fast_lane.QueryFastLane``, below the framework)."""
    vectors, k, n_queries = _checked_query(body)
    handle = await state.handle_async(name)
    result, index = await answer_quickly(handle, _asking(handle, vectors, k, body),
                                         cheap=_cheap(handle, body, n_queries))
    return _answer(state, name, body, result, index, n_queries)


def answer_query_now(state: ServerState, name: str, body: QueryRequest) -> dict[str, Any] | None:
    """``answer_query`` on the calling thread (the event loop) when the answer needs no waiting (the collection
    open, one vector, nothing holding it: ``search.answer_at_once``); else None, and nothing was done."""
    handle = state.open_handle(name)
    if handle is None or not _cheap(handle, body, _declared_rows(body.vectors)):
        return None  # decided before the vectors are decoded: a batch is decoded once, by the ASGI way
    vectors, k, n_queries = _checked_query(body)
    answered = answer_at_once(handle, _asking(handle, vectors, k, body))
    return None if answered is None else _answer(state, name, body, *answered, n_queries)


def _checked_query(body: QueryRequest) -> tuple[Any, int, int]:
    """(the query vectors, k, how many queries), within the server's limits."""
    k = check_k(body.k)
    if k > MAX_K:
        raise InvalidKError(f"k must be <= {MAX_K} through the server, got {k}")
    vectors = vectors_of(body.vectors, "queries")
    n_queries = 1 if np.ndim(vectors) == 1 else len(vectors)
    if n_queries > MAX_QUERY_BATCH or n_queries * k > MAX_HITS:
        raise InvalidInputError(f"{n_queries} queries x k={k} is over the limit of {MAX_QUERY_BATCH} queries and "
                                f"{MAX_HITS} hits per request: send smaller batches")
    return vectors, k, n_queries


def _declared_rows(vectors: Any) -> int:
    """How many query vectors a request says it holds (an encoded array's shape; a list's length), undecoded."""
    if isinstance(vectors, EncodedArray):
        return 1 if len(vectors.shape) == 1 else vectors.shape[0]
    return len(vectors)


def _cheap(handle, body: QueryRequest, n_queries: int) -> bool:
    """Cheaper answered on the event loop than handed to a worker thread."""
    return n_queries == 1 and not body.with_recall and not handle.sharded


def _asking(handle, vectors, k: int, body: QueryRequest):
    """The query as a call (``search.answer_quickly`` / ``answer_at_once`` decide where it runs)."""
    def ask():
        return query_collection(handle, vectors, k, index=body.index, params=body.params, where=body.where,
                                with_recall=body.with_recall, include_metadata=body.include_metadata)
    return ask


def _answer(state: ServerState, name: str, body: QueryRequest, result, index: str, n_queries: int) -> dict[str, Any]:
    """The JSON answer (``QueryResponse``) of a query's result; the search counted in the metrics."""
    state.metrics.searched(name, index, "query", result.stats["search_ms"] / 1000, n_queries)
    return {
        "ids": result.ids.tolist(),
        "distances": encode_array(result.distances),
        "similarities": encode_array(result.similarities),
        "metadatas": public_metadatas(result.metadatas) if body.include_metadata else None,
        "true_knn": None if result.true_knn is None else result.true_knn.tolist(),
        "recall": None if result.recall is None else result.recall.tolist(),
        "stats": {**result.stats, "index": index},
    }


# ---------------------------------------------------------------------------------------------------------- indexes
@router.post("/collections/{name}/index/drop", dependencies=write, tags=["indexes"])
def drop_index(name: str, body: DropIndexRequest, request: Request) -> dict[str, Any]:
    """Drop a built index (the flat index cannot be dropped: 400; one not built: 409)."""
    index_type = body.type
    state = get_state(request)
    handle = state.handle(name)
    with handle.lock:
        if handle.building == index_type:
            raise BuildInProgressError(f"the {index_type!r} index of {name!r} is being built: wait for it first")
        col = handle.collection
        col.drop_index(index_type)
        handle.loaded.discard(index_type)
        if handle.fallback_index not in col.indexes:
            handle.fallback_index = "flat"
    return state.builds.status(handle)


@router.post("/collections/{name}/metadata-indexes", dependencies=write, tags=["indexes"])
def create_metadata_index(name: str, body: MetadataIndexRequest, request: Request) -> dict[str, Any]:
    """A B-tree on one metadata key, so filters on it stop scanning every point (idempotent)."""
    handle = get_state(request).handle(name)
    with handle.lock:
        col = handle.collection
        col.create_metadata_index(body.key)
        return {"collection": name, "metadata_indexes": col.info()["metadata_indexes"]}


@router.post("/collections/{name}/tune", dependencies=write, tags=["indexes"])
def tune(name: str, body: TuneRequest, request: Request) -> dict[str, Any]:
    """The cheapest query parameter of an index that reaches ``target_recall`` on held-out points of the
    collection (``Collection.tune``); with ``apply`` it becomes the index's default.  Queries of this collection
    wait while it measures."""
    from dataclasses import asdict

    handle = get_state(request).handle(name)
    if handle.sharded:
        raise InvalidParameterError(
            f"tune is not offered on the sharded collection {name!r} (each shard would tune its own part): pass "
            "nprobe / ef with each query, and measure with with_recall to pick the smallest that meets your target")
    with handle.lock:
        index = handle.resolve_index(body.index) or handle.collection.default_index
        queries = None if body.queries is None else vectors_of(body.queries, "queries")
        report = handle.collection.tune(index, body.target_recall, body.k, sample=body.sample, apply=body.apply,
                                        queries=queries, modality=body.modality)
        handle.mark_loaded(index)
    return _plain(asdict(report))


def _plain(value: Any) -> Any:
    """NumPy scalars (in a tuning report) as the Python numbers JSON takes."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value.item() if isinstance(value, np.generic) else value
