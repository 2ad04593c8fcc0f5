"""What the server holds between requests: its settings, one handle per collection, the embedders, the query log.

Threads.  FastAPI runs each request in a worker thread, and a ``Collection`` is not thread-safe (it owns one SQLite
connection and in-memory indexes it syncs in place).  Each collection therefore gets a *handle*: the serving
``Collection`` plus a lock that every read and write of it takes.  Embedding a query (the slow part of a text or
photo search) happens before the lock is taken, under the embedder's own lock (tokenizers are not re-entrant).

Index rebuilds never run on the serving object (see ``builds.py``): a separate process builds and saves the index,
then a fresh ``Collection`` opened on the same files is warmed up outside the lock and swapped in under it.

Sharded databases.  A directory holding a sharded manifest (``lookalike.distributed``), or any directory when a Ray
address is given, is served through one ``ShardedDatabase`` for the whole process: each open of one starts its own
shard actors, so ``DatabaseOpener`` opens it once and lends it out wrapped in ``SharedDatabase``, whose ``close()``
does nothing (the real close comes at server shutdown).  Its collections have the ``Collection`` API, so routes
serve them unchanged; index builds run in the shards' own build actors instead of a child process.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._rwlock import ReadWriteLock
from ..collection import Collection
from ..database import Database, check_name
from ..errors import (
    CollectionNotFoundError,
    LookalikeError,
)
from ..embed.queries import embed_query, query_embedder, shared_embedder
from .errors import BuildInProgressError
from .opening import DatabaseOpener, open_collection, warm_collection
from .querylog import LOG_FILE, QueryLog

log = logging.getLogger("lookalike.server")

MiB = 1024 * 1024


@dataclass
class ServerConfig:
    db_path: Path
    api_key: str | None = None
    cors_origins: list[str] = field(default_factory=list)
    max_body_bytes: int = 32 * MiB  # JSON bodies (a batch of vectors to upsert is the largest)
    max_upload_bytes: int = 10 * MiB  # one photo
    max_image_pixels: int = 40_000_000  # decoded size of an uploaded photo (a decompression bomb stops here)
    query_log: bool = True
    preload: bool = True  # load indexes and embedders at start-up rather than on the first query
    ray_address: str | None = None  # serve a sharded database on Ray: "local" (start or join a local Ray), "auto",
    #                                 "ray://host:10001"; None serves a sharded directory on a local Ray, else plain
    n_shards: int | None = None  # the shard count a sharded database must have (None: whatever its manifest says)
    actor_options: Any = None  # a sharded database's shard actor options (a dict, or a function of the shard number),
    #                            e.g. to pin shard i to the node holding its directory; as ShardedDatabase takes them


class HandleLock:
    """What a request holds while it uses a handle's collection.  A ``Collection`` is thread-safe (searches run
    beside each other and beside writes; it locks its own state briefly), so requests hold this lock *shared*;
    swapping in a rebuilt collection, dropping or closing it holds it ``alone()``.  A sharded collection's
    requests hold it alone, one at a time, as before."""

    def __init__(self, shared: bool):
        self._lock = ReadWriteLock()
        self._shared = shared

    def acquire(self, blocking: bool = True) -> bool:
        if self._shared:
            return self._lock.acquire_shared(blocking)
        return self._lock.acquire_exclusive(blocking)

    def release(self) -> None:
        (self._lock.release_shared if self._shared else self._lock.release_exclusive)()

    def __enter__(self) -> "HandleLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def alone(self):
        return self._lock.exclusive()


class CollectionHandle:
    """The serving ``Collection`` of one name, its lock, and which of its indexes are loaded in memory."""

    def __init__(self, db_path: Path, name: str, opener: "DatabaseOpener | None" = None):
        self.name = name
        self.db_path = db_path
        self.sharded = opener is not None and opener.sharded
        self.lock = HandleLock(shared=not self.sharded)
        self.db, self._collection = open_collection(db_path, name, opener)
        if hasattr(self._collection, "start_indexing"):  # writes only append: a thread folds them into the indexes
            self._collection.start_indexing()
        self.loaded: set[str] = set()  # indexes known to be in memory: querying them never reads index files
        self.fallback_index = "flat"  # what a default query uses while its default index is first being built
        self.building: str | None = None  # index type a build process is working on
        self.dropped = False  # set (under the lock) when the collection is dropped: requests still holding
        #                       this handle then get a 404, not a closed SQLite connection

    @property
    def collection(self) -> Collection:
        if self.dropped:
            raise CollectionNotFoundError(f"collection {self.name!r} was dropped")
        return self._collection

    def warm(self) -> None:
        """Load every built index now (one tiny query each), so no query pays for it later."""
        with self.lock:
            self.loaded |= warm_collection(self.collection)
            self.fallback_index = self._default_or_flat()

    def resolve_index(self, requested: str | None) -> str | None:
        """The index a query uses.  While an index is being built for the first time, its files are in flux: an
        explicit query of it is refused (409) and a default query falls back to the last default that worked.
        Otherwise a default query gets None: the collection reads its default from the state it queries (asking
        SQLite for it here cost a statement per request)."""
        if self.building is None:
            return requested
        name = requested or self.collection.default_index
        if name == self.building and name not in self.loaded:
            if requested:
                raise BuildInProgressError(
                    f"the {name!r} index of {self.name!r} is being built: query another index until "
                    f"GET /api/collections/{self.name}/index reports it done"
                )
            return self.fallback_index
        return name

    def mark_loaded(self, name: str) -> None:
        if self.fallback_index == name and name in self.loaded:  # every query of the default index: no change
            return
        self.loaded.add(name)
        if self.building is None and name == self.collection.default_index:
            self.fallback_index = name

    def swap(self, db: Database, collection: Collection, loaded: set[str]) -> None:
        """Serve ``collection`` from now on (call with a warmed collection, from any thread)."""
        with self.lock.alone():
            # The old objects are dropped, not closed: close() would save their in-memory indexes over the
            # files the build just wrote.  Their SQLite connection closes when they are collected.
            if self.dropped:
                return
            old = self._collection
            self.db, self._collection, self.loaded = db, collection, set(loaded)
            if hasattr(old, "stop_indexing"):
                old.stop_indexing()
                collection.start_indexing()
            self.fallback_index = self._default_or_flat()

    def _default_or_flat(self) -> str:
        default = self.collection.default_index
        return default if default in self.loaded else "flat"

    def close(self) -> None:
        with self.lock.alone():
            self.db.close()


class ServerState:
    """Everything the routes share.  Created by ``create_app``; lives in ``app.state.lookalike``."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.db_path = Path(config.db_path)
        self.open_database = DatabaseOpener(config)
        self.catalog = self.open_database()  # lists collections; never opens one
        self._handles: dict[str, CollectionHandle] = {}
        self._handles_lock = threading.Lock()
        self.query_log = self._open_query_log() if config.query_log else None
        from .builds import BuildManager

        self.builds = BuildManager(self)
        from .metrics import ServerMetrics

        self.metrics = ServerMetrics(self.collection_gauges, self.query_log_queue)  # GET /metrics

    def _open_query_log(self) -> QueryLog | None:
        try:
            return QueryLog(self.db_path / LOG_FILE)
        except Exception as exc:  # noqa: BLE001 - a log that cannot open must not stop the server
            log.warning("query log disabled: %s", exc)
            return None

    # --- collections
    def collection_gauges(self) -> list[tuple[str, int, str | None, dict[str, int]]]:
        """(name, points, index being built or None, unindexed points per loaded index) of each open collection,
        for the metrics scrape."""
        with self._handles_lock:
            handles = list(self._handles.items())
        gauges = []
        for name, handle in handles:
            try:
                col = handle.collection
                unindexed = col.unindexed() if hasattr(col, "unindexed") else {}
                gauges.append((name, len(col), handle.building, unindexed))
            except LookalikeError:  # dropped or closing meanwhile: not reported
                continue
        return gauges

    def query_log_queue(self) -> int:
        """Query-log rows queued and not yet written (0 without a query log)."""
        return self.query_log.pending() if self.query_log is not None else 0

    def collection_names(self) -> list[str]:
        return self.catalog.list_collections()

    def handle(self, name: str) -> CollectionHandle:
        check_name(name)
        with self._handles_lock:  # held while opening (cheap: no index is loaded), so a drop cannot interleave
            handle = self._handles.get(name)
            if handle is not None:
                return handle
            if name not in self.collection_names():
                raise CollectionNotFoundError(f"no collection {name!r}; existing: {self.collection_names() or 'none'}")
            handle = self._handles[name] = CollectionHandle(self.db_path, name, self.open_database)
            return handle

    def open_handle(self, name: str) -> CollectionHandle | None:
        """The handle of collection ``name`` if it is open already (nothing to read), else None."""
        return self._handles.get(name)

    async def handle_async(self, name: str) -> CollectionHandle:
        """``handle(name)`` from the event loop: at once when the collection is open, else opened in a worker
        thread (opening reads files)."""
        handle = self.open_handle(name)
        if handle is not None:
            return handle
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(self.handle, name)

    def drop(self, name: str) -> None:
        """Drop a collection: refused (409) while one of its indexes is being built.  Requests that already hold
        its handle get a 404 once they take its lock."""
        handle = self.handle(name)
        with handle.lock.alone():
            if handle.building is not None or self.builds.building_elsewhere(handle):
                raise BuildInProgressError(
                    f"a {handle.building or 'new'!r} index of {name!r} is being built: wait for it (GET .../index) "
                    "before dropping the collection"
                )
            with self._handles_lock:
                handle.db.drop_collection(name)  # closes its SQLite connection; the directory is renamed away at once
                handle.dropped = True
                self._handles.pop(name, None)
        self.builds.forget(name)

    def preload(self) -> None:
        """Load every collection's indexes and embedder (start-up; failures are logged, not fatal)."""
        for name in self.collection_names():
            try:
                handle = self.handle(name)
                handle.warm()
                if handle.collection.embedder:
                    self.query_embedder(handle.collection.embedder).embed_texts(["warm-up"])
                if not handle.sharded:  # the pictures the page will ask for first
                    from ..catalog.images import warm_item_images

                    warm_item_images(handle.collection.peek(1).metadatas)
            except LookalikeError as exc:
                log.warning("collection %s: %s", name, exc)

    # --- embedders
    def embedder(self, name: str):
        return shared_embedder(name)

    def query_embedder(self, collection_embedder: str):
        """The embedder for queries of a collection made by ``collection_embedder`` (see
        :func:`lookalike.embed.queries.query_embedder`)."""
        return query_embedder(collection_embedder)

    def embed(self, handle: CollectionHandle, *, texts: list[str] | None = None, images: list | None = None):
        """Embed one text or photo query with the collection's query route (the same as ``Collection.search``)."""
        return embed_query(handle.collection, texts=texts, images=images)

    @property
    def sharded(self) -> bool:
        return self.open_database.sharded

    def close(self) -> None:
        self.builds.close()
        with self._handles_lock:
            handles = list(self._handles.values())
            self._handles.clear()
        for handle in handles:
            try:
                handle.close()
            except LookalikeError as exc:
                log.warning("closing %s: %s", handle.name, exc)
        if self.query_log is not None:
            self.query_log.close()
        self.open_database.close(flush=not self.builds.running())
