"""The routes of the HTTP API, under ``/api``.  Handlers are plain ``def``: FastAPI runs them in worker threads, and
every touch of a collection goes through its handle's lock (see state.py)."""

from __future__ import annotations

import inspect
import json
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query as QueryParam, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from .. import __version__
from ..database import SQLITE_FILE
from ..errors import IdNotFoundError, InvalidFilterError, InvalidParameterError, LookalikeError
from .errors import PayloadTooLargeError
from .facets import collection_facets, sharded_facets
from .media import decode_upload, item_png, sha256_hex
from .schemas import (
    MAX_BATCH,
    MAX_HITS,
    MAX_K,
    MAX_QUERY_BATCH,
    CollectionInfo,
    CreateCollectionRequest,
    IndexRequest,
    SearchRequest,
    SearchResponse,
)
from .search import IMAGE_KEY, INT_ID, Query, answer_quickly, item_image_url, public_metadata, run_search
from .security import require_api_key
from .state import CollectionHandle, ServerState

router = APIRouter()
IdType = Literal["int", "str"]
write = [Depends(require_api_key)]


def get_state(request: Request) -> ServerState:
    return request.app.state.lookalike


# ----------------------------------------------------------------------------------------------- server, collections
@router.get("/health", tags=["server"])
def health(request: Request) -> dict[str, Any]:
    state = get_state(request)
    return {"status": "ok", "version": __version__, "collections": len(state.collection_names()),
            "auth_required_for_writes": state.config.api_key is not None, "query_log": state.query_log is not None,
            "sharded": state.sharded,
            "limits": {"max_body_bytes": state.config.max_body_bytes, "max_batch": MAX_BATCH, "max_k": MAX_K,
                       "max_query_batch": MAX_QUERY_BATCH, "max_hits": MAX_HITS}}


@router.get("/collections", response_model=list[CollectionInfo], tags=["collections"])
def list_collections(request: Request) -> list[dict[str, Any]]:
    state = get_state(request)
    return [collection_info(state.handle(name)) for name in state.collection_names()]


@router.post("/collections", response_model=CollectionInfo, status_code=201, dependencies=write,
             tags=["collections"])
def create_collection(body: CreateCollectionRequest, request: Request, response: Response) -> dict[str, Any]:
    """Create a collection (201); with ``exist_ok``, an existing one of the same dim and metric answers 200."""
    state = get_state(request)
    if body.embedder is not None:
        from ..embed.base import UnknownEmbedderError, available_embedders

        if body.embedder.partition(":")[0] not in available_embedders():
            raise UnknownEmbedderError(f"unknown embedder {body.embedder!r}: available are {sorted(available_embedders())}")
    existed = body.exist_ok and body.name in state.collection_names()
    with state.open_database() as db:  # its own object: the catalog never holds a collection open
        db.create_collection(body.name, body.dim, body.metric, embedder=body.embedder, exist_ok=body.exist_ok)
    if existed:
        response.status_code = 200
    return collection_info(state.handle(body.name))


@router.get("/collections/{name}", response_model=CollectionInfo, tags=["collections"])
def get_collection(name: str, request: Request) -> dict[str, Any]:
    return collection_info(get_state(request).handle(name))


@router.get("/collections/{name}/facets", tags=["collections"])
def facets(name: str, request: Request) -> dict[str, Any]:
    """Metadata fields with few distinct values (class, colour, ...) and their counts, for filters."""
    handle = get_state(request).handle(name)
    if handle.sharded:
        with handle.lock:
            version = handle.collection.info()["version"]
        return {"collection": name, "facets": sharded_facets(handle.db, name, version)}
    return {"collection": name, "facets": collection_facets(handle.db_path / "collections" / name / SQLITE_FILE)}


@router.get("/index-types", tags=["indexes"])
def index_types() -> list[dict[str, Any]]:
    """Every index type this build has, with its build parameters and query parameters and their defaults."""
    from ..index.registry import available, get_index_class

    out = []
    for name in available():
        klass = get_index_class(name)
        signature = inspect.signature(klass.__init__)
        build = {p.name: p.default for p in signature.parameters.values()
                 if p.name not in ("self", "dim", "metric") and p.kind is p.POSITIONAL_OR_KEYWORD
                 and p.default is not p.empty}
        out.append({"type": name, "build_params": build, "query_params": dict(klass.query_defaults)})
    return out


def collection_info(handle: CollectionHandle) -> dict[str, Any]:
    with handle.lock:
        info = handle.collection.info()
    indexes = [{"name": name, "type": cfg.get("type", name),
                "params": {k: v for k, v in cfg.items() if k not in ("type", "dim", "metric")}}
               for name, cfg in info["indexes"].items()]
    return {"name": info["name"], "count": info["count"], "dim": info["dim"], "metric": info["metric"],
            "embedder": info["embedder"], "indexes": indexes, "default_index": info["default_index"],
            "version": info["version"], "metadata_indexes": info["metadata_indexes"],
            "n_shards": info.get("n_shards"), "shard_counts": info.get("shard_counts")}


# ----------------------------------------------------------------------------------------------------------- search
@router.post("/collections/{name}/search", response_model=SearchResponse, tags=["search"])
async def search(name: str, body: SearchRequest, request: Request) -> dict[str, Any]:
    started = time.perf_counter()
    state = get_state(request)
    handle = await state.handle_async(name)
    mode = "text" if body.text is not None else "vector" if body.vector is not None else "item"
    query = Query(mode=mode, k=body.k, index=body.index, params=dict(body.params), where=body.where,
                  with_recall=body.with_recall, text=body.text, vector=body.vector, like_id=body.like_id)
    cheap = mode == "vector" and not body.with_recall and not handle.sharded
    return await answer_quickly(handle, lambda: run_search(state, handle, query, started), cheap=cheap)


@router.post("/collections/{name}/search/image", response_model=SearchResponse, tags=["search"])
def search_image(
    name: str,
    request: Request,
    file: UploadFile = File(..., description="the photo: JPEG, PNG, WebP, ..."),
    k: int = Form(10, ge=1, le=MAX_K),
    index: str | None = Form(None, max_length=64),
    params: str | None = Form(None, max_length=4096, description="JSON object of query parameters"),
    where: str | None = Form(None, max_length=65536, description="JSON metadata filter"),
    with_recall: bool = Form(False),
    crop: bool = Form(False, description="cut the garment out first (GrabCut, or SegFormer when installed)"),
) -> dict[str, Any]:
    started = time.perf_counter()
    state = get_state(request)
    handle = state.handle(name)
    limit = state.config.max_upload_bytes
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLargeError(f"the upload is over the limit of {limit} bytes")
    image = decode_upload(data, state.config.max_image_pixels)
    crop_info = None
    if crop:
        from .crop import crop_garment

        image, crop_info = crop_garment(image)
    query = Query(mode="image", k=k, index=index or None, params=_json_form(params, "params", InvalidParameterError),
                  where=_json_form(where, "where", InvalidFilterError), with_recall=with_recall, image=image,
                  digest=sha256_hex(data), crop=crop_info)
    return run_search(state, handle, query, started)


def _json_form(text: str | None, field: str, error: type[Exception]) -> Any:
    if text is None or not text.strip():
        return {} if field == "params" else None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise error(f"form field {field!r} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise error(f"form field {field!r} must be a JSON object, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------------------------------------------------- indexes
@router.post("/collections/{name}/index", status_code=202, dependencies=write, tags=["indexes"])
def build_index(name: str, body: IndexRequest, request: Request, response: Response) -> dict[str, Any]:
    """Build (or rebuild) an index in the background while queries go on; 202 with the status at once, or the
    final status with ``"wait": true``.  Poll ``GET`` of the same route for ``state`` and ``build_s``."""
    state = get_state(request)
    handle = state.handle(name)
    status = state.builds.start(handle, body.type, dict(body.params), body.default)
    if body.wait:
        status = state.builds.wait(handle)
        response.status_code = 200
    return status


@router.get("/collections/{name}/index", tags=["indexes"])
@router.get("/collections/{name}/index/status", tags=["indexes"], include_in_schema=False)
def index_status(name: str, request: Request) -> dict[str, Any]:
    state = get_state(request)
    return state.builds.status(state.handle(name))


# ------------------------------------------------------------------------------------------------------------ items
@router.get("/collections/{name}/items/{item_id:path}/image", tags=["items"],
            responses={200: {"content": {"image/png": {}}}})
def item_image(name: str, item_id: str, request: Request,
               size: int | None = QueryParam(None, ge=16, le=1024, description="fit in size x size pixels"),
               id_type: IdType | None = None) -> Response:
    from ..catalog.images import open_item_image

    handle = get_state(request).handle(name)
    with handle.lock:
        points = find_item(handle, item_id, id_type)
    try:
        image = open_item_image(points.metadatas[0])
    except (ValueError, TypeError, OSError) as exc:  # a malformed image reference: the item has no usable picture
        if isinstance(exc, LookalikeError):
            raise
        raise IdNotFoundError(f"the image of item {points.ids[0]!r} cannot be opened: {exc}") from None
    return Response(item_png(image, size), media_type="image/png", headers={"Cache-Control": "public, max-age=300"})


@router.get("/collections/{name}/items/{item_id:path}", tags=["items"])
def item(name: str, item_id: str, request: Request, with_vector: bool = False,
         id_type: IdType | None = None) -> dict[str, Any]:
    handle = get_state(request).handle(name)
    with handle.lock:
        points = find_item(handle, item_id, id_type)
    found, metadata = points.ids[0], points.metadatas[0]
    out = {"id": found, "metadata": public_metadata(metadata),
           "image_url": item_image_url(name, found) if metadata and metadata.get(IMAGE_KEY) else None}
    if with_vector:
        out["vector"] = points.vectors[0].tolist()
    return out


def find_item(handle: CollectionHandle, raw: str, id_type: str | None = None):
    """An id from a URL: the int when the segment is digits and that int id exists, else the string
    (``id_type`` = "int" or "str" says which one is meant)."""
    col = handle.collection
    if id_type != "str" and INT_ID.match(raw) and -(2**63) <= int(raw) < 2**63:
        try:
            return col.get([int(raw)])
        except IdNotFoundError:
            if id_type == "int":
                raise
    if not raw:
        raise IdNotFoundError("an empty item id")
    return col.get([raw])


# -------------------------------------------------------------------------------------------------------- query log
@router.get("/query-log", tags=["server"], responses={200: {"content": {"application/vnd.apache.parquet": {}}}})
def query_log(request: Request, format: Literal["json", "parquet"] = "json",
              limit: int | None = QueryParam(None, ge=1, le=1_000_000), collection: str | None = None) -> Any:
    """Every query the server answered (newest ``limit`` if given), as JSON or as a Parquet file."""
    log = get_state(request).query_log
    rows = [] if log is None else log.rows(limit=limit if limit is not None or format == "parquet" else 1000,
                                           collection=collection)
    if format == "parquet":
        from .querylog import to_parquet

        return Response(to_parquet(rows), media_type="application/vnd.apache.parquet",
                        headers={"Content-Disposition": 'attachment; filename="query-log.parquet"'})
    return JSONResponse({"queries": rows, "total": 0 if log is None else log.count(), "enabled": log is not None})
