"""One search, from the request to the answer: embed (outside the collection's lock), query (inside it), shape the
hits, log the query.  Shared by the JSON route (text / vector / item) and the photo upload route."""

from __future__ import annotations

import contextvars
import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import numpy as np

from ..errors import InvalidParameterError, LookalikeError
from .state import CollectionHandle, ServerState

INT_ID = re.compile(r"^-?\d{1,19}$")  # a URL segment that may name an int id
# names Collection.query takes itself: as index parameters they would collide with its own arguments
_QUERY_ARGUMENTS = frozenset({"vectors", "k", "where", "index", "with_recall", "include_metadata"})


@dataclass
class Query:
    mode: str  # text | image | vector | item
    k: int
    index: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    where: dict[str, Any] | None = None
    with_recall: bool = False
    text: str | None = None
    vector: list[float] | None = None
    like_id: Any = None
    image: Any = None  # a decoded PIL image
    digest: str | None = None  # sha256 of the uploaded bytes
    crop: dict[str, Any] | None = None


def run_search(state: ServerState, handle: CollectionHandle, query: Query, started: float) -> dict[str, Any]:
    """The answer of ``POST /search`` and ``/search/image``; ``started`` is the request's perf_counter()."""
    _check_params(query.params)
    embed_ms = None
    vector = None
    understood = None
    if query.mode in ("text", "image"):
        t0 = time.perf_counter()
        if query.mode == "text":
            vector = state.embed(handle, texts=[query.text])[0]
        else:
            vector = state.embed(handle, images=[query.image])[0]
        embed_ms = 1000 * (time.perf_counter() - t0)
        if query.mode == "text":
            understood = reading_of(state, handle, query.text)
    elif query.mode == "vector":
        vector = query.vector
        query.digest = hashlib.sha256(np.asarray(query.vector, dtype="<f4").tobytes()).hexdigest()
    with handle.lock:
        if query.mode == "item":
            vector = handle.collection.get([query.like_id]).vectors[0]
        result, index = query_collection(handle, vector, query.k, index=query.index, params=query.params,
                                         where=query.where, with_recall=query.with_recall,
                                         modality=query.mode if query.mode in ("text", "image") else None)
    hits = shape_hits(handle.name, result)
    state.metrics.searched(handle.name, index, query.mode, result.stats["search_ms"] / 1000)
    recall = None if result.recall is None else float(result.recall[0])
    latency = {
        "embed": _round(embed_ms),
        "search": _round(result.stats["search_ms"]),
        "exact": _round(result.stats.get("exact_ms")),
        "total": _round(1000 * (time.perf_counter() - started)),
    }
    if state.query_log is not None:
        state.query_log.record(
            mode=query.mode, collection=handle.name,
            text=str(query.like_id) if query.mode == "item" else query.text, digest=query.digest, index=index,
            params=query.params,
            k=query.k, where=query.where, n_hits=len(hits), latency_ms=latency, recall=recall,
            top_ids=[h["id"] for h in hits],
        )
    return {"hits": hits, "recall": recall, "latency_ms": latency, "index": index, "k": query.k, "mode": query.mode,
            "crop": query.crop, "params": result.stats.get("params"), "understood": understood}


def reading_of(state: ServerState, handle: CollectionHandle, text: str) -> dict[str, Any] | None:
    """How the collection's text route read ``text`` (it keeps its last readings: no second pass)."""
    from ..embed.queries import EMBEDDER_LOCKS

    embedder = state.query_embedder(handle.collection.embedder)
    if not hasattr(embedder, "explain"):
        return None
    with EMBEDDER_LOCKS[embedder.name]:
        return embedder.explain(text)


def query_collection(handle: CollectionHandle, vectors: Any, k: int, *, index: str | None = None,
                     params: dict[str, Any] | None = None, where: dict[str, Any] | None = None,
                     with_recall: bool = False, include_metadata: bool = True, modality: str | None = None):
    """``Collection.query`` under the handle's lock, with the server's rules: query parameters checked, the index
    resolved around a first build, a kernel's refusal of a parameter value reported as InvalidParameterError.
    Returns the result and the name of the index that answered."""
    params = dict(params or {})
    _check_params(params)
    with handle.lock:
        col = handle.collection
        name = handle.resolve_index(index)
        if modality is not None and not handle.sharded:  # parameters tuned for text or photo queries
            params = {"modality": modality, **params}
        try:
            if _ON_EVENT_LOOP.get():  # answer_quickly: only if nothing has to wait
                result = col.query_now(vectors, k, where=where, index=name, with_recall=with_recall,
                                       include_metadata=include_metadata, **params)
                if result is None:
                    raise _WouldWait
            else:
                result = col.query(vectors, k, where=where, index=name, with_recall=with_recall,
                                   include_metadata=include_metadata, **params)
                result.metadatas  # noqa: B018 (made here, in the worker thread: never on the event loop)
        except LookalikeError:
            raise
        except (TypeError, ValueError) as exc:  # a parameter value the index's kernel cannot take
            if not params:
                raise
            raise InvalidParameterError(f"query parameters {params} rejected by the "
                                        f"{name or 'default'!r} index: {exc}") from None
        if name is None:  # the collection's default: the index that answered says its name
            name = (result.stats or {}).get("index") or col.default_index
        handle.mark_loaded(name)
    return result, name


IMAGE_KEY = "image"  # the metadata key of an item's picture: a file path on the server or a data set reference


def public_metadata(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """An item's metadata as clients see it: without its picture's reference (an absolute path on the server's
    disk says where the catalog lives); clients get the picture through its ``image_url``."""
    if not metadata or IMAGE_KEY not in metadata:
        return metadata
    return {key: value for key, value in metadata.items() if key != IMAGE_KEY}


def public_metadatas(rows: list[list[dict[str, Any] | None]] | list[dict[str, Any] | None]) -> list:
    """:func:`public_metadata` over a list (``get``) or a list of lists (``query``)."""
    return [public_metadatas(row) if isinstance(row, list) else public_metadata(row) for row in rows]


def shape_hits(collection: str, result) -> list[dict[str, Any]]:
    hits = []
    for j in range(result.ids.shape[1]):
        item_id = result.ids[0, j]
        if item_id is None:
            break
        metadata = result.metadatas[0][j]
        hits.append({
            "id": item_id,
            "score": float(result.similarities[0, j]),
            "distance": float(result.distances[0, j]),
            "metadata": public_metadata(metadata),
            "true_knn": None if result.true_knn is None else bool(result.true_knn[0, j]),
            "image_url": item_image_url(collection, item_id) if metadata and metadata.get(IMAGE_KEY) else None,
        })
    return hits


def item_image_url(collection: str, item_id: Any) -> str:
    url = f"/api/collections/{quote(collection, safe='')}/items/{quote(str(item_id), safe='')}/image"
    # a string id made of digits would be read as the int id of the same digits: say which one is meant
    return url + "?id_type=str" if isinstance(item_id, str) and INT_ID.match(item_id) else url


def _check_params(params: dict[str, Any]) -> None:
    for name, value in params.items():
        if not isinstance(name, str) or not name.isidentifier() or name in _QUERY_ARGUMENTS:
            raise InvalidParameterError(f"{name!r} is not a query parameter of an index (those are nprobe, ef, ...)")
        if isinstance(value, float) and not np.isfinite(value):
            raise InvalidParameterError(f"query parameter {name} = {value} is not a finite number")


def _round(ms: float | None) -> float | None:
    return None if ms is None else round(float(ms), 3)


class _WouldWait(Exception):
    """A query tried on the event loop found the collection busy (a write publishing, an indexing step, a catch-up
    due): it goes to the thread pool instead."""


_ON_EVENT_LOOP: contextvars.ContextVar[bool] = contextvars.ContextVar("lookalike_on_event_loop", default=False)


def answer_at_once(handle: CollectionHandle, call):
    """``call()`` (a cheap query of ``handle``'s collection: one vector, no exact search behind it) run on the
    calling thread, the event loop, if it can run at once (``Collection.query_now``); None if it would have to
    wait (a write publishing, an indexing step, a catch-up due)."""
    if not handle.lock.acquire(blocking=False):
        return None
    token = _ON_EVENT_LOOP.set(not handle.sharded)
    try:
        return call()
    except _WouldWait:
        return None
    finally:
        _ON_EVENT_LOOP.reset(token)
        handle.lock.release()


async def answer_quickly(handle: CollectionHandle, call, *, cheap: bool):
    """Run ``call()`` (a query of ``handle``'s collection) on the event loop when it is cheap and can run at once
    (``answer_at_once``): a worker thread's hand-off costs more than such a query.  Anything else (a batch,
    with_recall, a text to embed, a write or an indexing step holding the collection) goes to the thread pool, so
    the loop never waits."""
    from starlette.concurrency import run_in_threadpool

    if cheap:
        answered = answer_at_once(handle, call)
        if answered is not None:
            return answered
    return await run_in_threadpool(call)
