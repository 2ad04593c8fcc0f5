"""A Collection: the user's ids, vectors and metadata, durable on disk, searchable through indexes.

The user speaks ids (str or int, as they chose); indexes speak int64 labels that SQLite allocates and never
reuses.  An upsert of an existing id deletes its old label and adds a new one, so a label always names one
vector.  The query path is a straight line: collection -> index + tail -> labels -> ids -> metadata.

Its parts (each in a module of its own):

    CollectionStore (storage/sqlite.py)   ids, metadata, the change log of deletions, the index configs
    PointStore (store.py)                 the vector log (the one float32 copy, memory-mapped), the exact index
                                          over it (the oracle for ``with_recall``) and the label -> id map
    the indexes                           built by ``create_index(type, **params)``, *attached* to the exact index
                                          (they read its rows and keep only their own structure), saved under
                                          derived/ stamped with the version they cover
    the tail (tail.py)                    rows an index does not hold yet: searched exactly, merged with its answer
    the indexer (tail.py)                 folds the tail into the indexes in short steps: a background thread
                                          (``start_indexing``, as the server runs), ``optimize()``, or the writer
                                          itself once the tail passes ``tail_limit``

A write validates, appends its vectors to the log (fsync), commits its SQLite transaction, then *publishes*: it
holds the collection exclusively only to extend the exact index's rows and the id map and to tombstone what it
deleted (``_catch_up``).  Searches hold it shared, so they run beside each other and beside writes; another
process's writes are picked up by the same catch-up, when SQLite's data version says something changed.
"""

from __future__ import annotations

import fcntl
import json
import logging
import mmap
import numbers
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._rwlock import ReadWriteLock
from ._validation import MAX_K, as_matrix, check_k, check_unique, one_query
from .errors import (
    DuplicateIdError,
    EmptyBatchError,
    IdNotFoundError,
    IndexNotBuiltError,
    InvalidIdError,
    InvalidInputError,
    InvalidParameterError,
    StorageFormatError,
)
from .evaluation import recall_per_query, true_knn_flags
from .filter_graphs import FilterGraphs
from .filter_masks import FilterMasks
from .index.base import Index
from .index.hnsw import HNSWIndex
from .index.registry import from_config, get_index_class
from .metrics import get_metric, normalize_rows, row_norms, similarity
from .storage.sqlite import CollectionStore
from .storage.vector_log import mapping_of
from .store import FLAT, PointStore, Written
from .tail import CONCURRENT_STEP_FACTOR, BackgroundIndexer, StepSize, search_with_tail, tail_limit, unindexed
from .types import PAD_ID, CollectionResult, SearchResult

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 512
MAX_METADATA_BYTES = 64 * 1024
INT64_MAX = 2**63 - 1


@dataclass
class Points:
    """What ``Collection.get`` returns: ids in the order asked, their vectors (n, dim) and metadata."""

    ids: list[Any]
    vectors: np.ndarray
    metadatas: list[dict[str, Any] | None]

    def __len__(self) -> int:
        return len(self.ids)


class _Synced:
    """An in-memory index, the data version its deletions reflect, and the version its files were saved at."""

    def __init__(self, index: Index, version: int, saved_version: int | None = None):
        self.index = index
        self.version = version
        self.saved_version = saved_version
        self.saved_rows = index.n_rows if saved_version is not None else -1
        self.step = StepSize()


class Collection:
    """Do not construct directly: use ``Database.create_collection`` / ``get_collection``.  Thread-safe."""

    def __init__(self, directory: Path, store: CollectionStore):
        self.directory = Path(directory)
        self._store = store  # the readers' connection (catch-up, filters, metadata of hits)
        self._writer_store: CollectionStore | None = None  # the writers' connection, opened on the first write
        config = store.config
        self.name: str = config["name"]
        self.dim: int = int(config["dim"])
        self.metric: str = config["metric"]
        self.embedder: str | None = config.get("embedder")
        self.uuid: str = config["uuid"]
        self._spec = get_metric(self.metric)
        self._points = PointStore(self.directory, self.dim, self._spec.name, self._spec.normalize)
        self._indexes: dict[str, _Synced] = {}
        self._synced_stamp: int | None = None  # the store's change stamp the in-memory state reflects
        self._filters = FilterMasks()  # metadata columns and the masks of recent filters
        self._filter_graphs = FilterGraphs()  # small graphs of the points of frequent filters
        self._metadata = _MetadataCache()  # label -> decoded metadata, filled as hits are returned
        self._default_index = FLAT
        self._tuned: dict[str, dict[str, Any]] = {}
        self._lock = ReadWriteLock()  # shared: searches; exclusive: catching up, an indexing step, a rebuild
        self._write_lock = threading.RLock()  # one writer at a time in this process (SQLite orders processes)
        self._indexing = threading.Lock()  # one indexing step at a time (the background thread or a writer)
        self._indexer: BackgroundIndexer | None = None

    # ================================================================== info
    def __len__(self) -> int:
        return self._store.count()

    def count(self) -> int:
        return len(self)

    def __repr__(self) -> str:
        return f"Collection({self.name!r}, dim={self.dim}, metric={self.metric!r}, count={len(self)})"

    @property
    def indexes(self) -> list[str]:
        """Names of the built indexes ("flat" is always there)."""
        return [FLAT, *sorted(self._store.index_configs())]

    @property
    def default_index(self) -> str:
        """The index a query without ``index=`` uses (the last one built, else "flat"), as committed: the one read
        at the last catch-up when the change token says nothing was written since (the server asks this per
        request), else read from SQLite (never a catch-up here: the server asks on its event loop, which must not
        wait for the exclusive lock)."""
        if self._caught_up():
            return self._default_index
        return self._store.get_meta("default_index", FLAT)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dim": self.dim,
            "metric": self.metric,
            "embedder": self.embedder,
            "count": len(self),
            "version": self._store.version(),
            "indexes": {FLAT: {"type": FLAT}, **self._store.index_configs()},
            "default_index": self.default_index,
            "metadata_indexes": self._store.metadata_indexes(),
        }

    def unindexed(self) -> dict[str, int]:
        """Per index loaded in memory: the points written since it last caught up (searched exactly meanwhile)."""
        with self._lock.shared():
            flat = self._points.flat
            if flat is None:
                return {}
            return {name: unindexed(synced.index, flat) for name, synced in self._indexes.items()}

    # ================================================================== writes
    def add(self, ids: Any, vectors: Any, metadata: Any = None) -> None:
        """Add new points.  An id already stored, or given twice, raises DuplicateIdError; nothing is written."""
        self._write(ids, vectors, metadata, replace=False)

    def upsert(self, ids: Any, vectors: Any, metadata: Any = None) -> None:
        """Add points, replacing the vector and metadata of ids already stored."""
        self._write(ids, vectors, metadata, replace=True)

    def _writer(self) -> CollectionStore:
        if self._writer_store is None:
            self._writer_store = CollectionStore(self._store.file, writer=True)
        return self._writer_store

    def _write(self, ids: Any, vectors: Any, metadata: Any, *, replace: bool) -> None:
        ext_ids, x, metas = check_points(ids, vectors, metadata, self.dim, refuse_zero=self._spec.normalize)
        norms = row_norms(x) if self._spec.normalize else None  # stored beside the unit vectors: get() gives x
        prepared = x if norms is None else normalize_rows(x, norms=norms)
        with self._write_lock:
            store = self._writer()
            with store.transaction():
                existing = store.labels_of(ext_ids) if replace else {}  # add: the UNIQUE constraint checks
                previous = store.version()
                version = store.bump_version()
                removed = list(existing.values())
                if removed:
                    store.delete_labels(removed, version)
                labels = store.allocate_labels(len(ext_ids))
                try:
                    store.insert_points(labels, ext_ids, metas)
                except DuplicateIdError:
                    stored = store.labels_of(ext_ids)
                    first = next((e for e in ext_ids if (type(e), e) in stored), ext_ids[0])
                    raise DuplicateIdError(
                        f"id {first!r} is already in collection {self.name!r}: use upsert to replace it") from None
                self._points.append(store, prepared, norms, labels)  # durable before the commit names it
            self._catch_up(Written(labels, ext_ids, removed, previous, version))
            self._keep_tail_short()

    def delete(self, ids: Any = None, *, where: dict[str, Any] | None = None) -> int:
        """Delete points by id (every id must exist, else IdNotFoundError and nothing is deleted) or by filter.
        Returns how many were deleted."""
        if (ids is None) == (where is None):
            raise InvalidInputError("delete takes ids or where=, exactly one of them")
        with self._write_lock:
            store = self._writer()
            with store.transaction():
                if ids is not None:
                    ext_ids = check_ids(ids)
                    found = store.labels_of(ext_ids)
                    missing = [e for e in ext_ids if (type(e), e) not in found]
                    if missing:
                        raise IdNotFoundError(
                            f"{len(missing)} id(s) not in collection {self.name!r}, first {missing[0]!r}; "
                            "nothing deleted")
                    labels = list(found.values())
                else:
                    labels = store.filter_labels(where).tolist()
                previous = store.version()
                if labels:
                    store.delete_labels(labels, store.bump_version())
                version = store.version()
            self._catch_up(Written(np.empty(0, np.int64), [], labels, previous, version))
            self._compact_if_worth_it()
        return len(labels)

    # ================================================================== reads
    def get(self, ids: Any) -> Points:
        """Vectors and metadata of ids, in the order given.  An unknown id raises IdNotFoundError."""
        ext_ids = check_ids(ids)
        for _ in range(5):  # a point replaced between two statements is looked up again
            found = self._store.labels_of(ext_ids)
            missing = [e for e in ext_ids if (type(e), e) not in found]
            if missing:
                raise IdNotFoundError(f"{len(missing)} id(s) not in collection {self.name!r}, first {missing[0]!r}")
            labels = np.array([found[(type(e), e)] for e in ext_ids], dtype=np.int64)
            try:
                _, metas = self._store.points(labels)
            except KeyError:
                continue
            self._ensure_synced()
            with self._lock.shared():
                known, rows = self._points.flat._rows_of(labels)
                if known.all():
                    return Points(ids=ext_ids, vectors=self._points.vectors_of(rows),
                                  metadatas=[_load_json(m) for m in metas])
            self._sync()  # written after our catch-up: catch up again
        raise StorageFormatError(f"collection {self.name!r}: ids keep changing under get(); retry")

    def peek(self, limit: int = 10) -> Points:
        """The first ``limit`` points in insertion order (as Chroma's ``peek``): a look at what a collection
        holds without knowing its ids."""
        from ._validation import check_positive_int

        limit = check_positive_int(limit, "limit")
        ext_ids = self._store.first_ids(limit)
        if not ext_ids:
            return Points(ids=[], vectors=np.zeros((0, self.dim), np.float32), metadatas=[])
        return self.get(ext_ids)

    def has(self, ids: Any) -> list[bool]:
        """Whether each id is stored (no error for unknown ids: this is how a resumed ingest skips work)."""
        ext_ids = check_ids(ids)
        found = self._store.labels_of(ext_ids)
        return [(type(e), e) in found for e in ext_ids]

    def ids(self) -> list[Any]:
        """Every id, in insertion order."""
        return self._store.all_ids()[1]

    def get_vectors(self, ids: Any = None) -> np.ndarray:
        """Vectors as stored, of ``ids`` or of every point in insertion order."""
        if ids is not None:
            return self.get(ids).vectors
        self._ensure_synced()
        with self._lock.shared():
            flat = self._points.flat
            rows = np.flatnonzero(flat.live)
            rows = rows[np.argsort(flat.labels[rows], kind="stable")]
            return self._points.vectors_of(rows)

    def query(
        self,
        vectors: Any,
        k: int = 10,
        where: dict[str, Any] | None = None,
        index: str | None = None,
        *,
        with_recall: bool = False,
        include_metadata: bool = True,
        modality: str | None = None,
        **query_params: Any,
    ) -> SearchResult:
        """The k nearest points of each query vector (a 1-D vector is one query; results are batch-shaped).

        ``where`` filters on metadata (see ``lookalike.storage.filters``); ``index`` picks an index by name
        (default: the last one built, else exact); ``query_params`` go to that index (``nprobe=``, ``ef=``...).
        ``with_recall=True`` also runs the exact search and fills ``true_knn`` per hit and ``recall`` per query.
        ``modality`` ("text" or "image": what the query vectors were made from) picks the parameters tuned for
        that kind of query (``tune(..., modality=)``), when there are some.  Points written since the index last
        caught up are searched exactly and merged in: every acknowledged write is found.
        """
        if where is None and not with_recall and modality is None:
            result = self._plain_query(vectors, k, index, include_metadata, query_params, wait=True)
            if result is not None:
                return result
        q, k = self._checked_query(vectors, k, modality)
        self._ensure_synced()
        name = self._index_name(index)
        if name != FLAT and name not in self._indexes:
            with self._lock.exclusive():
                self._synced_index(name)  # loaded (or rebuilt) once, then kept
        lock = self._lock
        lock.acquire_shared()
        try:
            return self._query_in_memory(q, k, where, name, with_recall, include_metadata, modality, query_params)
        finally:
            lock.release_shared()

    def query_now(self, vectors: Any, k: int = 10, where: dict[str, Any] | None = None, index: str | None = None,
                  **query_params: Any) -> SearchResult | None:
        """``query`` if it can run at once, else None: nothing to catch up, the index loaded, and no write or
        indexing step holding (or waiting for) the collection.  The server answers such a query on its event loop,
        where waiting would stall every other request; otherwise it calls ``query`` in a worker thread."""
        params = dict(query_params)
        modality = params.pop("modality", None)
        with_recall = params.pop("with_recall", False)
        include_metadata = params.pop("include_metadata", True)
        if where is None and not with_recall and modality is None:
            result = self._plain_query(vectors, k, index, include_metadata, params, wait=False)
            if result is not None:
                return result
        q, k = self._checked_query(vectors, k, modality)
        if not self._caught_up():
            return None
        name = self._index_name(index)
        if not self._lock.acquire_shared(blocking=False):
            return None
        try:
            if name != FLAT and name not in self._indexes:
                return None
            result = self._query_in_memory(q, k, where, name, with_recall, include_metadata, modality, params)
            result.metadatas  # noqa: B018 (made now, under the lock held: read later, it might wait for a writer)
            return result
        finally:
            self._lock.release_shared()

    def _plain_query(self, vectors: Any, k: int, index: str | None, include_metadata: bool,
                     query_params: dict[str, Any], *, wait: bool) -> CollectionResult | None:
        """The commonest query, one vector without filter, in half the Python of the general path (whose 7-10 us
        a query were a fifth of a small IVF search: docs/bench.md), when nothing stands in its way:
        one float32 vector, nothing written since the last catch-up, the index loaded and holding every row,
        and its ``search_one`` applying.  None otherwise, and the general path answers or raises.  ``wait=False``
        (``query_now``): None rather than wait for the lock, and the metadata made while it is held."""
        query = one_query(vectors, k, self.dim)
        if query is None or self._store.change_stamp() != self._synced_stamp:
            return None
        lock = self._lock
        if not lock.acquire_shared(blocking=wait):
            return None
        try:
            name = self._index_name(index)
            synced = self._indexes.get(name)
            if synced is None or synced.index.searchable_rows < self._points.flat.n_rows:  # not loaded, or a tail
                return None
            searcher = synced.index
            if self._tuned:
                query_params = self._with_tuned(name, None, query_params)
            start = time.perf_counter()
            answer = searcher.search_one(query, k, query_params)
            if answer is None:
                return None
            stats = (name, 1000 * (time.perf_counter() - start), searcher.query_defaults, query_params)
            result = self._result(answer[0], answer[1], stats, include_metadata)
            if not wait:
                result.metadatas  # noqa: B018 (read later, it might wait for a writer)
            return result
        finally:
            lock.release_shared()

    def _index_name(self, index: Any) -> str:
        """The index a query names (None: the collection's default); anything but a str is refused."""
        if index is None:
            return self._default_index
        if type(index) is not str:
            raise InvalidParameterError(f"index must be an index's name such as 'hnsw', got {type(index).__name__}")
        return index

    def _checked_query(self, vectors: Any, k: int, modality: str | None) -> tuple[np.ndarray, int]:
        if type(k) is not int or not 0 < k <= MAX_K:
            k = check_k(k)  # raises
        q = as_matrix(vectors, self.dim, what="queries", finite=False)  # the index refuses NaN and inf
        if modality is not None:
            tuned_key(FLAT, modality)  # an unknown modality raises here
        return q, k

    def search(self, text: str | None = None, image: Any = None, k: int = 10, where: dict[str, Any] | None = None,
               index: str | None = None, **query_params: Any) -> SearchResult:
        """Search by one text or one photo (a PIL image, a file path or its bytes): it is embedded by the
        collection's embedder through its query route, exactly as the HTTP search routes do (same vector, same
        hits), then queried as by :meth:`query` with the parameters tuned for text or photo queries (its other
        keywords, ``with_recall`` or ``include_metadata``, reach :meth:`query` with the index parameters)."""
        from .embed.queries import embed_query, search_query

        modality, item = search_query(text, image)
        vector = embed_query(self, texts=[item]) if modality == "text" else embed_query(self, images=[item])
        return self.query(vector, k, where=where, index=index, modality=modality, **query_params)

    def _query_in_memory(self, q, k, where, name, with_recall, include_metadata, modality,
                         query_params) -> SearchResult:
        """collection -> index + tail -> labels -> ids -> metadata, on a caught-up collection (lock held shared)."""
        flat = self._points.flat
        allowed = None if where is None else self._filters.allowed(where, flat, self._store)  # rows, from memory
        searcher = flat if name == FLAT else self._loaded_index(name)
        if self._tuned:  # parameters set by ``tune`` (most collections have none)
            query_params = self._with_tuned(name, modality, query_params)
        t0 = time.perf_counter()
        raw = None
        if allowed is not None and len(q) == 1 and type(searcher) is HNSWIndex and query_params.keys() <= {"ef"}:
            ef = query_params.get("ef", searcher.query_defaults["ef"])  # a frequent filter has a graph of its own
            if type(ef) is int and ef >= 1:
                raw = self._filter_graphs.search(repr(where), allowed, flat, searcher, q, k, max(ef, k))
        if raw is None:
            raw = searcher.search(q, k, allowed_ids=allowed, **query_params) if searcher is flat else \
                search_with_tail(searcher, flat, q, k, allowed, query_params)
        t1 = time.perf_counter()
        stats = (name, 1000 * (t1 - t0), searcher.query_defaults, query_params)  # what the index used
        if not with_recall:
            return self._result(raw.ids, raw.distances, stats, include_metadata)
        exact = flat.search(q, k, allowed_ids=allowed)
        exact_ms = 1000 * (time.perf_counter() - t1)
        result = self._result(raw.ids, raw.distances, stats, include_metadata, true_knn_flags(raw, exact),
                              recall_per_query(raw, exact))
        result.stats["exact_ms"] = exact_ms
        return result

    def _result(self, labels: np.ndarray, distances: np.ndarray, stats: tuple,
                include_metadata: bool, true_knn: np.ndarray | None = None,
                recall: np.ndarray | None = None) -> CollectionResult:
        """The answer as the user reads it: the hits' ids; their similarities, metadata and the stats made on
        first read (``CollectionResult``)."""
        return CollectionResult(self._points.ids.ids_of(labels), distances, labels, self, include_metadata, stats,
                                true_knn, recall)

    def _similarities_of(self, distances: np.ndarray) -> np.ndarray:
        return similarity(distances, self._spec)

    def _with_tuned(self, name: str, modality: str | None, query_params: dict[str, Any]) -> dict[str, Any]:
        """The query's parameters over those ``tune`` chose for this index (and this kind of query)."""
        tuned = self._tuned.get(f"{name}@{modality}") if modality is not None else None
        tuned = tuned or self._tuned.get(name)
        return {**tuned, **query_params} if tuned else query_params

    def _metadata_of_hits(self, labels: np.ndarray) -> list[list[dict[str, Any] | None]]:
        """The metadata of a result's hits, when the caller first reads them (``CollectionResult``): from the
        decoded cache without a lock when every hit is there (the common case: no wait behind a writer), else
        read from SQLite under the readers' lock (a catch-up's transaction must not share the connection)."""
        rows = labels.tolist()
        cached = self._metadata.cached_rows(rows)
        if cached is not None:
            return cached
        with self._lock.shared():
            if self._store.conn is not None:
                return self._metadata.read_rows(rows, self._store)
        store = CollectionStore(self._store.file)  # the collection was closed since the query: read its file
        try:
            return self._metadata.read_rows(rows, store)
        finally:
            store.close()

    def _loaded_index(self, name: str) -> Index:
        synced = self._indexes.get(name)
        if synced is None:  # dropped or rebuilt elsewhere between the catch-up and now
            raise IndexNotBuiltError(f"collection {self.name!r} has no {name!r} index loaded; retry the query")
        return synced.index

    # ================================================================== indexes
    def create_index(self, type: str, *, default: bool = True, **params: Any) -> dict[str, Any]:
        """Build (or rebuild) an index of this type over every point, save it, and (by default) make it the
        one ``query`` uses.  Returns its config and build time.  Bad parameters raise before anything changes."""
        if type == FLAT:
            if default:
                with self._write_lock, self._writer().transaction():
                    self._writer().set_meta("default_index", FLAT)
            return {"type": FLAT, "build_s": 0.0}
        config = {"type": type, "dim": self.dim, "metric": self.metric, **params}
        fresh = from_config(config)  # validates the type and the parameters
        self._sync()
        with self._write_lock, self._indexing:  # the rows stay as they are while the build reads them
            with self._lock.shared():
                t0 = time.perf_counter()
                self._fill_from_flat(fresh)
                build_s = time.perf_counter() - t0
            with self._writer().transaction():
                self._writer().put_index(type, fresh.config())
                self._writer().conn.execute("DELETE FROM meta WHERE key = ?", (f"tuned:{type}",))  # new build
                if default:
                    self._writer().set_meta("default_index", type)
            with self._lock.exclusive():
                self._indexes[type] = _Synced(fresh, self._points.version)
                if fresh.wants_source_order:
                    self._order_store_by(type)
        self.flush()
        self._sync()
        return {**fresh.config(), "build_s": build_s, "count": len(fresh)}

    def _order_store_by(self, name: str) -> None:
        """Rewrite the vector log in the order index ``name`` reads it (IVF: list after list), and renumber every
        loaded index with it; indexes not loaded are loaded first, so that none has to be rebuilt.  Called with
        the write lock and the exclusive lock held."""
        for other in self._store.index_configs():
            if other != name:
                self._synced_index(other)
        self._rewrite_log(lambda: self._indexes[name].index.source_order(), keep_dead=True)

    def _rewrite_log(self, order_of, *, keep_dead: bool) -> None:
        """Write the exact index's rows ``order_of()`` as a new log generation and move every index onto it: with
        ``keep_dead`` (every row, renumbered) an index renumbers its structure; without (compaction) it is rebased
        on the live rows.  Write lock and exclusive lock held; the SQLite write lock keeps other processes out."""
        with self._writer().transaction():
            self._catch_up(None)  # another process may have appended since: the rewrite covers every row
            order = np.asarray(order_of(), dtype=np.int64)
            if keep_dead and len(order) != self._points.flat.n_rows:
                return  # an index that does not cover every row yet keeps the present order
            new_flat = self._points.rewrite(self._writer(), order)
        for synced in self._indexes.values():
            index = synced.index
            synced.index = index.reordered_with(new_flat, order) if keep_dead else index.rebased(new_flat)
            synced.saved_version = None
        self._points.forget_old_generations()

    def create_metadata_index(self, key: str) -> None:
        """A B-tree on one metadata key, so filters on it stop scanning every point (as Qdrant's payload
        indexes).  Idempotent."""
        with self._write_lock, self._writer().transaction():
            self._writer().create_metadata_index(key)
        self._store.conn.execute("SELECT count(*) FROM sqlite_master").fetchall()  # the readers see it at once

    def tune(self, index: str | None = None, target_recall: float = 0.95, k: int = 10, *, queries: Any = None,
             sample: int = 200, apply: bool = True, modality: str | None = None):
        """Find the cheapest query parameter of an index that reaches ``target_recall`` (see ``lookalike.tune``),
        measured on ``queries`` (query vectors whose exact neighbours are the truth: real text queries, say) or,
        without them, on a held-out sample of this collection's own vectors.  With ``apply`` the value becomes
        the index's default for later queries of that ``modality`` ("text", "image"; None: every query without
        a tuned modality of its own); a parameter passed to ``query`` still wins.  The index first catches up
        with every write, so that it is measured alone."""
        from .tune import tune

        name = self.default_index if index is None else index
        key = tuned_key(name, modality)
        self.optimize(name if name != FLAT else None)
        with self._lock.shared():
            searcher = self._points.flat if name == FLAT else self._loaded_index(name)
            report = tune(searcher, target_recall, k, sample=sample, queries=queries)
        if apply and report.param is not None:
            with self._write_lock, self._writer().transaction():
                self._writer().set_meta(key, json.dumps({report.param: report.value}))
        return report

    def adapt_index(self, index: str, queries: Any, n_neighbors: int = 10) -> dict[str, Any]:
        """Teach a graph index the queries it will get, when they differ from the stored points (text queries
        on a catalog of photos): sample query vectors link their nearest points together in the graph (see
        ``HNSWIndex.add_query_edges``), and the index is saved.  Returns what was added."""
        self.optimize(index)
        with self._indexing, self._lock.exclusive():
            synced = self._synced_index(index)
            adapt = getattr(synced.index, "add_query_edges", None)
            if adapt is None:
                raise InvalidInputError(f"a {synced.index.type_name!r} index cannot be adapted to queries (hnsw can)")
            added = adapt(queries, n_neighbors)
            synced.saved_version = None  # the graph changed: save it even though the data did not
        self.flush()
        return {"index": index, "queries": len(as_matrix(queries, self.dim, what="queries")), "links_added": added}

    def tuned_params(self, index: str, modality: str | None = None, *, inherit: bool = True) -> dict[str, Any]:
        """The tuned query parameters queries of ``modality`` get on ``index``: the modality's own, else (with
        ``inherit``) the index's general ones."""
        general = json.loads(self._store.get_meta(tuned_key(index, None), "{}"))
        if modality is None:
            return general
        own = json.loads(self._store.get_meta(tuned_key(index, modality), "null"))
        return own or (general if inherit else {})

    def drop_index(self, type: str) -> None:
        if type == FLAT:
            raise InvalidInputError("the flat index is the collection's exact search and cannot be dropped")
        if type not in self._store.index_configs():
            raise IndexNotBuiltError(f"collection {self.name!r} has no {type!r} index")
        with self._write_lock, self._writer().transaction():
            self._writer().drop_index(type)
            if self._writer().get_meta("default_index", FLAT) == type:
                self._writer().set_meta("default_index", FLAT)
        with self._lock.exclusive():
            self._indexes.pop(type, None)
        _remove_tree(self._derived_dir(type))

    # ================================================================== the indexer
    def optimize(self, index: str | None = None) -> dict[str, int]:
        """Fold every point written since the indexes last caught up into them (all built indexes, or only
        ``index``), then save their files, and let the graphs of frequent filters being built finish (see
        ``lookalike.filter_graphs``).  Returns the rows indexed per index.  Searches go on meanwhile: the work is
        done in short steps."""
        self._filter_graphs.wait()
        self._sync()
        names = [index] if index is not None else list(self._store.index_configs())
        done = {}
        for name in names:
            if name == FLAT:
                continue
            with self._lock.exclusive():
                self._synced_index(name)
            done[name] = 0
            while True:
                rows = self._index_step(name)
                if rows == 0:
                    break
                done[name] += rows
        self.flush()
        return done

    def _index_step(self, name: str) -> int:
        """One short step of the indexer: the next rows of the tail into index ``name``.  Returns the rows taken.
        The collection is held exclusively only to make room for the rows; an index that links them beside
        searches (HNSW, ``concurrent_add``) then does so holding nothing, so neither searches nor a write's
        publication wait for it; any other index is held exclusively for the whole (short) step."""
        with self._indexing:
            with self._lock.exclusive():
                synced = self._indexes.get(name)
                if synced is None:
                    return 0
                index, flat = synced.index, self._points.flat
                if index.n_rows >= flat.n_rows:
                    return 0
                whole_tail = index.needs_training and not index.is_trained  # it learns from all it can see
                stop = flat.n_rows if whole_tail else min(flat.n_rows, index.n_rows + synced.step.rows)
                t0 = time.perf_counter()
                if not index.concurrent_add:
                    taken = index.add_source_rows(stop)
                    synced.step.measured(taken, time.perf_counter() - t0)
                    return taken
                start = index.begin_source_rows(stop)
            if start is None:
                return 0
            index.link_source_rows(start, stop)
            synced.step.measured(stop - start, (time.perf_counter() - t0) / CONCURRENT_STEP_FACTOR)
            return stop - start

    def _step_any(self) -> bool:
        """One indexing step on the first loaded index with a tail (the background indexer's unit of work)."""
        for name in list(self._indexes):
            if self._index_step(name):
                return True
        return False

    def start_indexing(self) -> None:
        """Index in a background thread from now on (what ``lookalike serve`` does): writes only append and
        publish, the thread folds their points into the indexes and saves the index files."""
        if self._indexer is None:
            self._indexer = BackgroundIndexer(self.name, self._step_any, self.flush, self._tail_is_long)
            self._indexer.notify()

    def stop_indexing(self, timeout: float | None = 30.0) -> None:
        """Stop the background indexer after its current step (what is indexed stays; the rest is the tail)."""
        indexer, self._indexer = self._indexer, None
        if indexer is not None:
            indexer.stop(timeout)

    def _keep_tail_short(self) -> None:
        """After a write: wake the background indexer; past ``tail_limit`` (or without an indexer), index here
        until the tail is back under it, so that searches never scan more than that exactly."""
        limit = tail_limit(self.dim)
        if self._indexer is not None:
            self._indexer.notify()
        for name in list(self._indexes):
            while self._tail_of(name) > limit and self._index_step(name):
                pass

    def _tail_is_long(self) -> bool:
        """Whether some index's tail is past half of ``tail_limit``: the background indexer then stops deferring
        to writes."""
        limit = tail_limit(self.dim) // 2
        return any(self._tail_of(name) > limit for name in list(self._indexes))

    def _tail_of(self, name: str) -> int:
        synced = self._indexes.get(name)
        return 0 if synced is None else unindexed(synced.index, self._points.flat)

    # ================================================================== lifecycle
    def flush(self) -> None:
        """Save every in-memory index that is newer than its files (the data itself is always durable).  No
        indexing step runs meanwhile: an index is saved between two steps, whole."""
        with self._indexing, self._lock.shared():
            for name, synced in list(self._indexes.items()):
                self._save(name, synced)

    def close(self) -> None:
        self.stop_indexing()
        try:
            self.flush()
        finally:
            self.release()

    def release(self) -> None:
        """Let go of the files without saving anything (the collection is being dropped, or was replaced)."""
        self.stop_indexing()
        self._store.close()
        if self._writer_store is not None:
            self._writer_store.close()
            self._writer_store = None

    # ================================================================== catching up
    def _caught_up(self) -> bool:
        """Whether nothing was written, by any process, since the last catch-up (one load: the change token)."""
        return self._store.change_stamp() == self._synced_stamp

    def _ensure_synced(self) -> None:
        if not self._caught_up():
            self._sync()

    def _sync(self) -> None:
        """Bring everything in memory (the exact index, the id map, every loaded index's deletions, the query
        settings) up to the committed state."""
        self._catch_up(None)

    def _catch_up(self, written: Written | None) -> None:
        stamp = self._store.change_stamp()  # taken before the snapshot: a later commit re-syncs, never hides
        with self._lock.exclusive(), self._store.transaction_read():
            store = self._store
            self._default_index = store.get_meta("default_index", FLAT)
            self._tuned = {key[len("tuned:"):]: json.loads(value) for key, value in store.meta_items("tuned:")}
            configs = store.index_configs()
            for name, synced in list(self._indexes.items()):  # rebuilt with other parameters, or dropped, elsewhere
                if configs.get(name) != synced.index.config():
                    del self._indexes[name]  # reopened from its files on its next query
            same_rows = self._points.catch_up(store, written)
            if not same_rows:  # the log was rewritten elsewhere: indexes reopen over the new rows
                self._indexes.clear()
            for synced in self._indexes.values():
                self._catch_up_deletions(synced)
            self._synced_stamp = stamp

    def _catch_up_deletions(self, synced: _Synced) -> None:
        """An index's deletions follow the exact index's; its additions are the tail (the indexer's work)."""
        version = self._points.version
        if synced.version == version:
            return
        since, removed = self._points.last_removed  # what the exact index's catch-up just read, if it fits
        if synced.version != since:
            removed = np.asarray(self._store.deletions_since(synced.version), dtype=np.int64)
        gone = removed[synced.index.has(removed)]
        if len(gone):
            synced.index.remove(gone)
        synced.version = version

    def _synced_index(self, name: str) -> _Synced:
        """The loaded index ``name`` (exclusive lock held): opened from its files, or rebuilt, on first use."""
        if name not in self._indexes:
            configs = self._store.index_configs()
            if name not in configs:
                get_index_class(name)  # an unknown type name raises UnknownIndexTypeError
                raise IndexNotBuiltError(
                    f"collection {self.name!r} has no {name!r} index: build it with create_index({name!r}, ...)"
                )
            self._indexes[name] = self._open_derived(name, configs[name])
            if self._indexes[name].index.reads_source_at_random:
                advise_random_reads(self._points.flat.vectors)
        return self._indexes[name]

    def _open_derived(self, name: str, config: dict[str, Any]) -> _Synced:
        """Load the index's files if they are ours and not older than the change log; else rebuild it."""
        path = self._derived_dir(name)
        flat = self._points.flat
        if path.exists():
            try:
                # mapped, not read: every process serving the database (``serve --workers N``) shares one copy of
                # the index's pages; an index that takes writes copies an array on its first write to it
                index = Index.load(path, source=flat, mmap=True, verify=True)
                if index.owns_vectors:
                    raise StorageFormatError("saved with its own copy of the vectors (an older layout)")
                stamp = index.stamp
                fits = stamp.get("uuid") == self.uuid and index.config() == {**config}
                if fits and self._store.log_start() <= stamp.get("version", -1) <= self._points.version:
                    synced = _Synced(index, stamp["version"], stamp["version"])
                    self._catch_up_deletions(synced)
                    return synced
                log.info("index files of %s/%s are stale or foreign: rebuilding", self.name, name)
            except StorageFormatError as exc:
                log.warning("index files of %s/%s are unusable (%s): rebuilding", self.name, name, exc)
        index = from_config(config)
        self._fill_from_flat(index)
        return _Synced(index, self._points.version)

    def _fill_from_flat(self, index: Index) -> None:
        """Attach an empty index to the flat index (the vector store) and give it every live point, in label
        order: what the index learns does not depend on the order of the store's rows."""
        flat = self._points.flat
        index.attach(flat)
        keep = np.flatnonzero(flat.live)
        if len(keep):
            index.add(None, np.sort(flat.labels[keep]))

    def _compact_if_worth_it(self) -> None:
        """Drop the exact index's dead rows once they outweigh the data: a new log generation of the live rows
        (write lock held), every index rebased on it (those on disk are loaded first, so none is left behind)."""
        flat = self._points.flat
        if flat.n_deleted <= max(1000, len(flat)):
            return
        with self._indexing, self._lock.exclusive():
            self._catch_up(None)
            for name in self._store.index_configs():
                self._synced_index(name)
            self._rewrite_log(lambda: np.flatnonzero(self._points.flat.live), keep_dead=False)

    # ================================================================== derived files
    def _derived_dir(self, name: str) -> Path:
        return self.directory / "derived" / name

    def _save(self, name: str, synced: _Synced) -> None:
        if synced.saved_version == synced.version and synced.saved_rows == synced.index.n_rows:
            return
        derived = self.directory / "derived"
        derived.mkdir(exist_ok=True)
        try:
            with open(derived / ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # two processes never swap the same directory at once
                _remove_leftovers(derived)
                version, rows = synced.version, synced.index.n_rows
                synced.index.save(self._derived_dir(name), stamp={"uuid": self.uuid, "version": version})
            synced.saved_version, synced.saved_rows = version, rows
        except OSError as exc:  # derived files are a cache: failing to write one loses nothing
            log.warning("could not save index %s/%s: %s", self.name, name, exc)


# ====================================================================== helpers
def advise_random_reads(array: np.ndarray) -> None:
    """Tell the kernel that a memory-mapped array is read at random (madvise MADV_RANDOM): a page fault then
    reads that page, not a read-ahead window around it.  Re-ranking reads a few scattered rows per query; with
    read-ahead a store larger than RAM would be pulled in nearly whole (measured: 4,000 random rows of a
    48 MiB store mapped 53 MiB with read-ahead, 19 MiB without).  No-op for arrays in memory."""
    mapping = mapping_of(array)
    if mapping is not None:
        try:
            mapping.madvise(mmap.MADV_RANDOM)
        except (OSError, ValueError, AttributeError):
            pass


class _MetadataCache:
    """label -> decoded metadata of the points queries returned.  A label names one point forever (an upsert
    takes a new label), so an entry never goes stale and needs no invalidation; only labels that were hits are
    decoded and kept, so a collection larger than memory does not load its metadata.  Each hit gets its own
    (shallow) copy: a caller editing a result's metadata does not edit the cache."""

    def __init__(self) -> None:
        self.by_label: dict[int, dict[str, Any] | None] = {PAD_ID: None}  # padding has no metadata

    def cached_rows(self, labels: list[list[int]]) -> list[list[dict[str, Any] | None]] | None:
        """Each hit's copy, when every label's metadata is decoded already; else None (nothing is read)."""
        get = self.by_label.get
        items = [[get(label, _UNREAD) for label in row] for row in labels]  # one look-up per hit
        if any(item is _UNREAD for row in items for item in row):
            return None
        return _copies(items)

    def read_rows(self, labels: list[list[int]], store: CollectionStore) -> list[list[dict[str, Any] | None]]:
        """Each hit's copy, the metadata not decoded yet read from ``store`` first."""
        known = self.by_label
        missing = [label for row in labels for label in row if label not in known and label >= 0]
        texts = store.metadata_of(missing) if missing else {}  # another reader may have decoded them meanwhile
        for label in missing:
            known[label] = _load_json(texts.get(label))
        get = known.get
        return _copies([[get(label) for label in row] for row in labels])


def _copies(items: list[list[dict[str, Any] | None]]) -> list[list[dict[str, Any] | None]]:
    """A shallow copy of each hit's metadata: a caller editing it edits nothing the cache keeps."""
    return [[None if item is None else item.copy() for item in row] for row in items]


_UNREAD = object()  # a label whose metadata the cache has not read yet


MODALITIES = ("text", "image")


def tuned_key(index: str, modality: str | None) -> str:
    """The meta key of an index's tuned parameters, for all queries or for one modality."""
    if modality is None:
        return f"tuned:{index}"
    if modality not in MODALITIES:
        raise InvalidInputError(f"modality must be one of {MODALITIES} or None, got {modality!r}")
    return f"tuned:{index}@{modality}"


def _load_json(text: str | None) -> dict[str, Any] | None:
    return None if text is None else json.loads(text)


def _remove_leftovers(derived: Path) -> None:
    """Directories a killed save left behind (``.name.tmp-*`` half written, ``.name.old-*`` not yet removed).
    Called with the derived lock held, so no live save owns them."""
    for leftover in derived.glob(".*"):
        if leftover.is_dir() and (".tmp-" in leftover.name or ".old-" in leftover.name):
            _remove_tree(leftover)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def check_ids(ids: Any) -> list[Any]:
    """User ids: a list of str or int (numpy scalars welcome), unique, non-empty.  One scalar is a list of one."""
    if isinstance(ids, (str, numbers.Integral)) and not isinstance(ids, (bool, np.bool_)):
        ids = [ids]
    if isinstance(ids, np.ndarray):
        ids = ids.tolist()
    if not isinstance(ids, (list, tuple)):
        try:
            ids = list(ids)
        except TypeError:
            raise InvalidIdError(f"ids must be a list of str or int, got {type(ids).__name__}") from None
    if not ids:
        raise EmptyBatchError("ids is an empty batch: pass at least one id")
    out = [i if _plain_id(i) else _check_id(i) for i in ids]
    check_unique(out)
    return out


def _plain_id(value: Any) -> bool:
    """The common ids, accepted without the full checks: an int that fits in 64 bits, or a non-empty ASCII
    string without NUL of at most MAX_ID_LENGTH characters (ASCII: no lone surrogate to look for)."""
    kind = type(value)
    if kind is int:
        return -INT64_MAX - 1 <= value <= INT64_MAX
    return kind is str and 0 < len(value) <= MAX_ID_LENGTH and value.isascii() and "\x00" not in value


def _check_id(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        raise InvalidIdError(f"an id must be a str or an int, got bool {value!r}")
    if isinstance(value, numbers.Integral):
        value = int(value)
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise InvalidIdError(f"integer id {value} does not fit in 64 bits")
        return value
    if isinstance(value, str):
        if not value:
            raise InvalidIdError("an id must not be the empty string")
        if len(value) > MAX_ID_LENGTH:
            raise InvalidIdError(f"an id is at most {MAX_ID_LENGTH} characters, got {len(value)}")
        if "\x00" in value:
            raise InvalidIdError("an id must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidIdError(f"id {value!r} is not valid unicode (lone surrogate?)") from None
        return str(value)
    raise InvalidIdError(f"an id must be a str or an int, got {type(value).__name__} {value!r}")


def check_points(ids: Any, vectors: Any, metadata: Any, dim: int, *, refuse_zero: bool
                 ) -> tuple[list[Any], np.ndarray, list[str | None]]:
    """Every check a write makes before touching storage, shared by the embedded, remote and sharded
    collections: (ids, float32 vectors, metadata as JSON text).  ``refuse_zero``: the metric normalises, so an
    all-zero vector has no direction (ZeroVectorError)."""
    ext_ids = check_ids(ids)
    x = as_matrix(vectors, dim)
    if len(x) != len(ext_ids):
        raise InvalidInputError(f"got {len(ext_ids)} ids for {len(x)} vectors: pass one id per vector")
    if refuse_zero:
        row_norms(x)
    return ext_ids, x, check_metadata(metadata, len(ext_ids))


def check_metadata(metadata: Any, n: int) -> list[str | None]:
    """One JSON object (or None) per point, serialised; NaN/inf and non-JSON values are refused."""
    if metadata is None:
        return [None] * n
    if isinstance(metadata, dict):
        metadata = [metadata]
    if not isinstance(metadata, (list, tuple)) or len(metadata) != n:
        got = len(metadata) if isinstance(metadata, (list, tuple)) else type(metadata).__name__
        raise InvalidInputError(f"metadata must be a list of {n} dicts (one per id), got {got}")
    out = []
    encode = _encode_item
    for i, item in enumerate(metadata):
        if item is None:
            out.append(None)
            continue
        if not isinstance(item, dict):
            raise InvalidInputError(f"metadata[{i}] must be a dict with string keys, got {type(item).__name__}")
        try:
            text = encode(item)  # refuses NaN/inf and non-JSON values; keys are checked below
            size = len(text) if text.isascii() else len(text.encode("utf-8"))  # also refuses lone surrogates
        except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as exc:
            raise InvalidInputError(f"metadata[{i}] is not JSON-serialisable: {exc}") from None
        for key in item:  # the encoder would turn 1 or True into a string key: refuse them instead
            if not isinstance(key, str):
                raise InvalidInputError(f"metadata[{i}] must be a dict with string keys, got a {type(key).__name__} key")
        if size > MAX_METADATA_BYTES:
            raise InvalidInputError(f"metadata[{i}] is over {MAX_METADATA_BYTES // 1024} KiB as JSON")
        out.append(text)
    return out


_JSON = json.JSONEncoder(allow_nan=False, ensure_ascii=False)
try:  # the json module's C encoder, made once: JSONEncoder.encode makes one per call (2.6x the time of a point)
    from json.encoder import c_make_encoder as _c_make_encoder, encode_basestring as _encode_string

    # no circular-reference markers (a cycle raises RecursionError instead), default separators, NaN refused
    _C_ENCODER = _c_make_encoder(None, _JSON.default, _encode_string, None, ": ", ", ", False, False, False)
except ImportError:  # an interpreter without the C accelerator
    _C_ENCODER = None


def _encode_item(item: dict[str, Any]) -> str:
    """``json.dumps(item, allow_nan=False, ensure_ascii=False)``, faster."""
    if _C_ENCODER is None:
        return _JSON.encode(item)
    return "".join(_C_ENCODER(item, 0))


__all__ = ["Collection", "Points", "check_ids", "check_metadata", "check_points"]
