"""A Collection: the user's ids, vectors and metadata, durable in SQLite, searchable through indexes.

The user speaks ids (str or int, as they chose); indexes speak int64 labels that SQLite allocates and never
reuses.  An upsert of an existing id deletes its old label and adds a new one, so a label always names one
vector.  Every write is one SQLite transaction; in-memory structures then replay the change log (``changes``
table) to catch up, which is also how another process's writes are picked up and how stale index files
on disk are brought up to date when they are opened.

    FlatIndex   exact, always present, synced from SQLite; the oracle for ``with_recall``; and the collection's
                one float32 copy of its vectors (the *vector store*: saved as derived/flat/vectors.npy and
                memory-mapped when opened, so pages are read as searches touch them and shared between
                processes)
    others      built by ``create_index(type, **params)``, *attached* to the FlatIndex (they read its rows and
                keep only their own structure: lists, graphs, codes), synced from it, saved under derived/

When the flat index drops its tombstones (``compact``) or is put in the order of an IVF index's lists (so that
the IVF scan reads each list's vectors consecutively), its rows are renumbered: every other index follows.
"""

from __future__ import annotations

import fcntl
import json
import logging
import mmap
import numbers
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import as_matrix, check_k, check_unique
from .errors import (
    DuplicateIdError,
    EmptyBatchError,
    IdNotFoundError,
    IndexNotBuiltError,
    InvalidIdError,
    InvalidInputError,
    StorageFormatError,
)
from .evaluation import recall_per_query, true_knn_flags
from .index.base import Index
from .index.registry import from_config, get_index_class
from .metrics import get_metric, normalize_rows, similarity
from .storage.sqlite import CollectionStore
from .types import SearchResult

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 512
MAX_METADATA_BYTES = 64 * 1024
FLAT = "flat"
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
    """An in-memory index and the SQLite data version it reflects."""

    def __init__(self, index: Index, version: int, saved_version: int | None = None):
        self.index = index
        self.version = version
        self.saved_version = saved_version


class Collection:
    """Do not construct directly: use ``Database.create_collection`` / ``get_collection``."""

    def __init__(self, directory: Path, store: CollectionStore):
        self.directory = Path(directory)
        self._store = store
        config = store.config
        self.name: str = config["name"]
        self.dim: int = int(config["dim"])
        self.metric: str = config["metric"]
        self.embedder: str | None = config.get("embedder")
        self.uuid: str = config["uuid"]
        self._spec = get_metric(self.metric)
        self._flat: _Synced | None = None
        self._indexes: dict[str, _Synced] = {}
        # kept true by _sync, valid while the store's change stamp equals _synced_stamp:
        self._synced_stamp: tuple[int, int] | None = None
        self._ids: _IdMap | None = None  # label -> the user's id, loaded on the first query
        self._metadata = _MetadataCache()  # label -> decoded metadata, filled as hits are returned
        self._default_index = FLAT
        self._tuned: dict[str, dict[str, Any]] = {}
        self._written: tuple[np.ndarray, list[Any], np.ndarray] | None = None  # (labels, ids, vectors) of the last write

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

    # ================================================================== writes
    def add(self, ids: Any, vectors: Any, metadata: Any = None) -> None:
        """Add new points.  An id already stored, or given twice, raises DuplicateIdError; nothing is written."""
        self._write(ids, vectors, metadata, replace=False)

    def upsert(self, ids: Any, vectors: Any, metadata: Any = None) -> None:
        """Add points, replacing the vector and metadata of ids already stored."""
        self._write(ids, vectors, metadata, replace=True)

    def _write(self, ids: Any, vectors: Any, metadata: Any, *, replace: bool) -> None:
        ext_ids, x, metas = check_points(ids, vectors, metadata, self.dim, refuse_zero=self._spec.normalize)
        with self._store.transaction():
            existing = self._store.labels_of(ext_ids) if replace else {}  # add: the UNIQUE constraint checks
            version = self._store.bump_version()
            if existing:
                self._store.delete_labels(existing.values(), version)
            labels = self._store.allocate_labels(len(ext_ids))
            try:
                self._store.insert_points(labels, ext_ids, x, metas, version)
            except DuplicateIdError:
                stored = self._store.labels_of(ext_ids)
                first = next((e for e in ext_ids if (type(e), e) in stored), ext_ids[0])
                raise DuplicateIdError(
                    f"id {first!r} is already in collection {self.name!r}: use upsert to replace it") from None
        self._written = (labels, ext_ids, x)  # the sync that follows takes them from here, not from SQLite
        self._sync()

    def delete(self, ids: Any = None, *, where: dict[str, Any] | None = None) -> int:
        """Delete points by id (every id must exist, else IdNotFoundError and nothing is deleted) or by filter.
        Returns how many were deleted."""
        if (ids is None) == (where is None):
            raise InvalidInputError("delete takes ids or where=, exactly one of them")
        with self._store.transaction():
            if ids is not None:
                ext_ids = check_ids(ids)
                found = self._store.labels_of(ext_ids)
                missing = [e for e in ext_ids if (type(e), e) not in found]
                if missing:
                    raise IdNotFoundError(
                        f"{len(missing)} id(s) not in collection {self.name!r}, first {missing[0]!r}; nothing deleted"
                    )
                labels = list(found.values())
            else:
                labels = self._store.filter_labels(where).tolist()
            if labels:
                self._store.delete_labels(labels, self._store.bump_version())
        self._sync()
        return len(labels)

    # ================================================================== reads
    def get(self, ids: Any) -> Points:
        """Vectors and metadata of ids, in the order given.  An unknown id raises IdNotFoundError."""
        ext_ids = check_ids(ids)
        with self._store.transaction_read():
            found = self._store.labels_of(ext_ids)
            missing = [e for e in ext_ids if (type(e), e) not in found]
            if missing:
                raise IdNotFoundError(f"{len(missing)} id(s) not in collection {self.name!r}, first {missing[0]!r}")
            labels = [found[(type(e), e)] for e in ext_ids]
            _, vectors, metas = self._store.points(labels, self.dim)
        return Points(ids=ext_ids, vectors=vectors, metadatas=[_load_json(m) for m in metas])

    def has(self, ids: Any) -> list[bool]:
        """Whether each id is stored (no error for unknown ids: this is how a resumed ingest skips work)."""
        ext_ids = check_ids(ids)
        found = self._store.labels_of(ext_ids)
        return [(type(e), e) in found for e in ext_ids]

    def ids(self) -> list[Any]:
        """Every id, in insertion order."""
        return self._store.all_ids()[1]

    def get_vectors(self, ids: Any = None) -> np.ndarray:
        """Vectors as stored (not normalised), of ``ids`` or of every point in insertion order."""
        if ids is not None:
            return self.get(ids).vectors
        return self._store.all_vectors(self.dim)[1]

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
        that kind of query (``tune(..., modality=)``), when there are some.
        """
        k = check_k(k)
        q = as_matrix(vectors, self.dim, what="queries")
        if modality is not None:
            tuned_key(FLAT, modality)  # an unknown modality raises here
        request = (q, k, where, index, with_recall, include_metadata, modality, query_params)
        # The straight line: one pragma says whether anything was written since the last sync; if not, the query
        # runs on the in-memory state without a transaction, and a second pragma confirms no writer slipped in
        # while it read metadata.  Otherwise (or then) it runs inside a read transaction after a sync.
        stamp = self._store.change_stamp()
        if stamp == self._synced_stamp:
            result = self._query_in_memory(*request)
            if where is None or self._store.change_stamp() == stamp:  # a filter read SQLite: was it the same?
                return result
        with self._store.transaction_read():
            self._sync(in_transaction=True)
            result = self._query_in_memory(*request)
        self._synced_stamp = stamp
        return result

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

    def _query_in_memory(self, q, k, where, index, with_recall, include_metadata, modality,
                         query_params) -> SearchResult:
        """collection -> index -> kernel -> labels -> ids -> metadata, on a synced collection."""
        name = self._default_index if index is None else index
        allowed = None if where is None else self._store.filter_labels(where)
        searcher = self._synced_index(name).index
        tuned = (modality is not None and self._tuned.get(f"{name}@{modality}")) or self._tuned.get(name)
        if tuned:
            query_params = {**tuned, **query_params}
        t0 = time.perf_counter()
        raw = searcher.search(q, k, allowed_ids=allowed, **query_params)
        t1 = time.perf_counter()
        stats: dict[str, Any] = {"index": name, "search_ms": 1000 * (t1 - t0),
                                 "params": {**searcher.query_defaults, **query_params}}  # what the index used
        true_knn = recall = None
        if with_recall:
            exact = self._flat.index.search(q, k, allowed_ids=allowed)
            stats["exact_ms"] = 1000 * (time.perf_counter() - t1)
            true_knn = true_knn_flags(raw, exact)
            recall = recall_per_query(raw, exact)
        ids = self._id_map().ids_of(raw.ids)
        if include_metadata:
            metadatas = self._metadata.rows_of(raw.ids.tolist(), self._store)
        else:
            metadatas = [[None] * raw.ids.shape[1] for _ in range(len(raw.ids))]
        return SearchResult(
            ids=ids,
            distances=raw.distances,
            similarities=similarity(raw.distances, self._spec),
            metadatas=metadatas,
            true_knn=true_knn,
            recall=recall,
            stats=stats,
        )

    def _id_map(self) -> "_IdMap":
        if self._ids is None:
            labels, ext_ids = self._store.all_ids()
            self._ids = _IdMap(labels, ext_ids)
        return self._ids

    # ================================================================== indexes
    def create_index(self, type: str, *, default: bool = True, **params: Any) -> dict[str, Any]:
        """Build (or rebuild) an index of this type over every point, save it, and (by default) make it the
        one ``query`` uses.  Returns its config and build time.  Bad parameters raise before anything changes."""
        if type == FLAT:
            if default:
                with self._store.transaction():
                    self._store.set_meta("default_index", FLAT)
            return {"type": FLAT, "build_s": 0.0}
        config = {"type": type, "dim": self.dim, "metric": self.metric, **params}
        fresh = from_config(config)  # validates the type and the parameters
        self._sync()
        t0 = time.perf_counter()
        self._fill_from_flat(fresh)
        build_s = time.perf_counter() - t0
        built_at = self._flat.version
        with self._store.transaction():
            self._store.put_index(type, fresh.config())
            self._store.conn.execute("DELETE FROM meta WHERE key = ?", (f"tuned:{type}",))  # new build, new tuning
            if default:
                self._store.set_meta("default_index", type)
        synced = _Synced(fresh, built_at)
        self._indexes[type] = synced
        if fresh.wants_source_order:
            self._order_store_by(type)
        self.flush()
        self._sync()  # writes that landed during the build are replayed now
        return {**fresh.config(), "build_s": build_s, "count": len(fresh)}

    def _order_store_by(self, name: str) -> None:
        """Renumber the store's rows in the order index ``name`` reads them (IVF: list after list), and every
        loaded index with them; indexes not loaded are loaded first, so that none has to be rebuilt."""
        for other in self._store.index_configs():
            if other != name:
                self._synced_index(other)
        order = self._indexes[name].index.source_order()
        self._renumber_store(self._flat.index.reordered(order), order)

    def _renumber_store(self, new_flat: Index, order: np.ndarray | None) -> None:
        """Put ``new_flat`` in place of the flat index; ``order`` (new row -> old row, every old row once) says
        how the rows moved, or None when rows were dropped (compaction): then each index is rebased on it."""
        for synced in self._indexes.values():
            index = synced.index
            synced.index = index.rebased(new_flat) if order is None else index.reordered_with(new_flat, order)
            synced.saved_version = None
        self._flat.index = new_flat
        self._flat.saved_version = None

    def create_metadata_index(self, key: str) -> None:
        """A B-tree on one metadata key, so filters on it stop scanning every point (as Qdrant's payload
        indexes).  Idempotent."""
        with self._store.transaction():
            self._store.create_metadata_index(key)

    def tune(self, index: str | None = None, target_recall: float = 0.95, k: int = 10, *, queries: Any = None,
             sample: int = 200, apply: bool = True, modality: str | None = None):
        """Find the cheapest query parameter of an index that reaches ``target_recall`` (see ``lookalike.tune``),
        measured on ``queries`` (query vectors whose exact neighbours are the truth: real text queries, say) or,
        without them, on a held-out sample of this collection's own vectors.  With ``apply`` the value becomes
        the index's default for later queries of that ``modality`` ("text", "image"; None: every query without
        a tuned modality of its own); a parameter passed to ``query`` still wins."""
        from .tune import tune

        name = self.default_index if index is None else index
        key = tuned_key(name, modality)
        self._sync()
        report = tune(self._synced_index(name).index, target_recall, k, sample=sample, queries=queries)
        if apply and report.param is not None:
            with self._store.transaction():
                self._store.set_meta(key, json.dumps({report.param: report.value}))
        return report

    def adapt_index(self, index: str, queries: Any, n_neighbors: int = 10) -> dict[str, Any]:
        """Teach a graph index the queries it will get, when they differ from the stored points (text queries
        on a catalog of photos): sample query vectors link their nearest points together in the graph (see
        ``HNSWIndex.add_query_edges``), and the index is saved.  Returns what was added."""
        self._sync()
        synced = self._synced_index(index)
        adapt = getattr(synced.index, "add_query_edges", None)
        if adapt is None:
            raise InvalidInputError(f"a {synced.index.type_name!r} index cannot be adapted to queries (hnsw can)")
        added = adapt(queries, n_neighbors)
        synced.saved_version = None  # the graph changed: save it even though the data did not
        self._save(index, synced)
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
        with self._store.transaction():
            self._store.drop_index(type)
            if self.default_index == type:
                self._store.set_meta("default_index", FLAT)
        self._indexes.pop(type, None)
        _remove_tree(self._derived_dir(type))

    def flush(self) -> None:
        """Save every in-memory index that is newer than its files (the data itself is always durable)."""
        if self._flat is not None:
            self._save(FLAT, self._flat)
        for name, synced in self._indexes.items():
            self._save(name, synced)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._store.close()

    # ================================================================== syncing
    def _sync(self, *, in_transaction: bool = False) -> None:
        """Bring the flat index (and every loaded index), the id map and the query settings up to the current
        SQLite version."""
        if not in_transaction:
            stamp = self._store.change_stamp()  # taken before the snapshot: a later commit re-syncs, never hides
            with self._store.transaction_read():
                self._sync(in_transaction=True)
            self._synced_stamp = stamp
            return
        self._default_index = self._store.get_meta("default_index", FLAT)
        self._tuned = {key[len("tuned:"):]: json.loads(value) for key, value in self._store.meta_items("tuned:")}
        configs = self._store.index_configs()
        for name, synced in list(self._indexes.items()):  # rebuilt with other parameters, or dropped, elsewhere
            if configs.get(name) != synced.index.config():
                del self._indexes[name]  # reopened from its files on its next query
        version = self._store.version()
        if self._flat is None:
            self._flat = self._open_derived(FLAT, {"type": FLAT, "dim": self.dim, "metric": self.metric})
        if self._flat.version != version:
            self._catch_up_flat(version)
        for synced in self._indexes.values():
            if synced.version != version:
                self._catch_up_from_flat(synced)
        self._compact_if_worth_it()

    def _synced_index(self, name: str) -> _Synced:
        if name == FLAT:
            return self._flat
        if name not in self._indexes:
            configs = self._store.index_configs()
            if name not in configs:
                get_index_class(name)  # an unknown type name raises UnknownIndexTypeError
                raise IndexNotBuiltError(
                    f"collection {self.name!r} has no {name!r} index: build it with create_index({name!r}, ...)"
                )
            self._indexes[name] = self._open_derived(name, configs[name])
            if self._indexes[name].index.reads_source_at_random:
                advise_random_reads(self._flat.index.vectors)
        synced = self._indexes[name]
        if synced.version != self._flat.version:
            self._catch_up_from_flat(synced)
        return synced

    def _open_derived(self, name: str, config: dict[str, Any]) -> _Synced:
        """Load the index's files if they are ours and not older than the change log; else rebuild it."""
        path = self._derived_dir(name)
        if path.exists():
            try:
                if name == FLAT:  # the vector store: mapped, not read
                    index = Index.load(path, mmap=True)
                else:
                    index = Index.load(path, source=self._flat.index)
                    if index.owns_vectors:
                        raise StorageFormatError("saved with its own copy of the vectors (an older layout)")
                stamp = index.stamp
                if stamp.get("uuid") == self.uuid and self._store.log_start() <= stamp.get("version", -1) <= self._store.version() and index.config() == {**config}:
                    synced = _Synced(index, stamp["version"], stamp["version"])
                    if name != FLAT:
                        self._catch_up_from_flat(synced)
                    return synced
                log.info("index files of %s/%s are stale or foreign: rebuilding", self.name, name)
            except StorageFormatError as exc:
                log.warning("index files of %s/%s are unusable (%s): rebuilding from SQLite", self.name, name, exc)
        return self._rebuild(name, config)

    def _rebuild(self, name: str, config: dict[str, Any]) -> _Synced:
        index = from_config(config)
        version = self._store.version()
        if name == FLAT:
            self._ids = None  # reloaded on the next query, from the same snapshot as the vectors
            labels, vectors = self._store.all_vectors(self.dim)
            if len(labels):
                index.add(vectors, labels)
            return _Synced(index, version)
        self._fill_from_flat(index)
        return _Synced(index, self._flat.version)

    def _fill_from_flat(self, index: Index) -> None:
        """Attach an empty index to the flat index (the vector store) and give it every live point, in label
        order: what the index learns does not depend on the order of the store's rows."""
        flat = self._flat.index
        index.attach(flat)
        keep = np.flatnonzero(flat.live)
        if len(keep):
            index.add(None, np.sort(flat.labels[keep]))

    def _catch_up_flat(self, version: int) -> None:
        synced = self._flat
        if synced.version < self._store.log_start() or synced.version > version:
            self._flat = self._rebuild(FLAT, {"type": FLAT, "dim": self.dim, "metric": self.metric})
            self._indexes.clear()  # they read the old rows: reopened (and rebuilt) on their next use
            return
        added, removed = _net_changes(self._store.changes_since(synced.version))
        _replay(synced, version, added, removed, self._new_points)

    def _new_points(self, labels) -> np.ndarray:
        """Vectors of labels the change log added; their ids go to the id map on the way.  When they are exactly
        the points this process just wrote, they come from memory (a label names one point forever)."""
        written, self._written = self._written, None
        if written is not None and len(written[0]) == len(labels) and np.array_equal(written[0], labels):
            _, ext_ids, vectors = written
        else:
            ext_ids, vectors, _ = self._store.points(labels, self.dim)
        if self._ids is not None:
            self._ids.add(labels, ext_ids)
        return vectors

    def _catch_up_from_flat(self, synced: _Synced) -> None:
        flat = self._flat
        if synced.version < self._store.log_start() or synced.version > flat.version:
            fresh = self._rebuild(synced.index.type_name, synced.index.config())
            synced.index, synced.version, synced.saved_version = fresh.index, fresh.version, None
            return
        added, removed = _net_changes(self._store.changes_since(synced.version))
        added = np.asarray(added, dtype=np.int64)
        added = added[flat.index.has(added)]  # a label deleted after flat's version is not there yet
        _replay(synced, flat.version, added, removed, lambda labels: None)  # attached: rows read from the flat

    def _compact_if_worth_it(self) -> None:
        """Drop the flat index's tombstones once they outweigh the data; every index is rebased on the new rows
        (those on disk are loaded first, so none is left pointing at the old rows)."""
        flat = self._flat.index
        if flat.n_deleted <= max(1000, len(flat)):
            return
        for name in self._store.index_configs():
            self._synced_index(name)
        self._renumber_store(flat.compact(), None)

    # ================================================================== derived files
    def _derived_dir(self, name: str) -> Path:
        return self.directory / "derived" / name

    def _save(self, name: str, synced: _Synced) -> None:
        if synced.saved_version == synced.version:
            return
        derived = self.directory / "derived"
        derived.mkdir(exist_ok=True)
        try:
            with open(derived / ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # two processes never swap the same directory at once
                _remove_leftovers(derived)
                synced.index.save(self._derived_dir(name), stamp={"uuid": self.uuid, "version": synced.version})
            synced.saved_version = synced.version
        except OSError as exc:  # derived files are a cache: failing to write one loses nothing
            log.warning("could not save index %s/%s: %s", self.name, name, exc)


# ====================================================================== helpers
def advise_random_reads(array: np.ndarray) -> None:
    """Tell the kernel that a memory-mapped array is read at random (madvise MADV_RANDOM): a page fault then
    reads that page, not a read-ahead window around it.  Re-ranking reads a few scattered rows per query; with
    read-ahead a store larger than RAM would be pulled in nearly whole (measured: 4,000 random rows of a
    48 MiB store mapped 53 MiB with read-ahead, 19 MiB without).  No-op for arrays in memory."""
    base = array
    while base is not None and not isinstance(getattr(base, "_mmap", None), mmap.mmap):
        base = getattr(base, "base", None)
    if base is not None:
        try:
            base._mmap.madvise(mmap.MADV_RANDOM)
        except (OSError, ValueError, AttributeError):
            pass


def _net_changes(changes: list[tuple[int, int, int]]) -> tuple[list[int], list[int]]:
    """Replay a change log: labels to add (added and still alive) and labels to remove (existed before)."""
    state: dict[int, int] = {}
    first_op: dict[int, int] = {}
    for _, label, op in changes:
        first_op.setdefault(label, op)
        state[label] = op
    added = [l for l, op in state.items() if op > 0]
    removed = [l for l, op in state.items() if op < 0 and first_op[l] < 0]
    return added, removed


def _replay(synced: _Synced, version: int, added, removed, vectors_of) -> None:
    """Apply a replayed change log to one in-memory index: tombstone what went, add what came (its vectors from
    ``vectors_of(labels)``; None for an attached index).  Tombstones are dropped by ``_compact_if_worth_it``."""
    index = synced.index
    removed = np.asarray(removed, dtype=np.int64)
    gone = removed[index.has(removed)]
    if len(gone):
        index.remove(gone)
    if len(added):
        index.add(vectors_of(added), added)
    synced.version = version


class _IdMap:
    """label -> the user's id, in memory: an object array indexed by label (labels are small, dense and never
    reused), so a query turns its hits into ids with one array lookup instead of a SQL statement.  The last slot
    is never filled: the padding label -1 indexes it and reads None."""

    def __init__(self, labels: np.ndarray, ext_ids: list[Any]):
        self.by_label = np.empty(int(labels.max()) + 2 if len(labels) else 1, dtype=object)
        self.add(labels, ext_ids)

    def add(self, labels, ext_ids: list[Any]) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) == 0:
            return
        need = int(labels.max()) + 2  # + the None slot at the end
        if need > len(self.by_label):
            grown = np.empty(max(need, 2 * len(self.by_label)), dtype=object)
            grown[: len(self.by_label) - 1] = self.by_label[:-1]
            self.by_label = grown
        ids = np.empty(len(ext_ids), dtype=object)
        ids[:] = ext_ids  # element-wise: a list of tuples or lists stays one object per label
        self.by_label[labels] = ids

    def ids_of(self, labels: np.ndarray) -> np.ndarray:
        """The ids of a (q, k) label matrix, None for the padding label -1."""
        return self.by_label[labels]


class _MetadataCache:
    """label -> decoded metadata of the points queries returned.  A label names one point forever (an upsert
    takes a new label), so an entry never goes stale and needs no invalidation; only labels that were hits are
    decoded and kept, so a collection larger than memory does not load its metadata.  Each hit gets its own
    (shallow) copy: a caller editing a result's metadata does not edit the cache."""

    def __init__(self) -> None:
        self.by_label: dict[int, dict[str, Any] | None] = {}

    def rows_of(self, labels: list[list[int]], store: CollectionStore) -> list[list[dict[str, Any] | None]]:
        known = self.by_label
        missing = [label for row in labels for label in row if label >= 0 and label not in known]
        if missing:
            texts = store.metadata_of(missing)
            for label in missing:
                known[label] = _load_json(texts.get(label))
        return [[_copy(known.get(label)) if label >= 0 else None for label in row] for row in labels]


def _copy(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if metadata is None else metadata.copy()


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
    out = [_check_id(i) for i in ids]
    check_unique(out)
    return out


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
        normalize_rows(x)
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
    encode = _JSON.encode
    for i, item in enumerate(metadata):
        if item is None:
            out.append(None)
            continue
        if not isinstance(item, dict):
            raise InvalidInputError(f"metadata[{i}] must be a dict with string keys, got {type(item).__name__}")
        try:
            text = encode(item)  # refuses NaN/inf and non-JSON values; keys are checked below
            size = len(text.encode("utf-8"))  # also refuses lone surrogates
        except (TypeError, ValueError, UnicodeEncodeError) as exc:
            raise InvalidInputError(f"metadata[{i}] is not JSON-serialisable: {exc}") from None
        if not all(isinstance(k, str) for k in item):
            raise InvalidInputError(f"metadata[{i}] must be a dict with string keys, got {type(item).__name__}")
        if size > MAX_METADATA_BYTES:
            raise InvalidInputError(f"metadata[{i}] is over {MAX_METADATA_BYTES // 1024} KiB as JSON")
        out.append(text)
    return out


_JSON = json.JSONEncoder(allow_nan=False, ensure_ascii=False)


__all__ = ["Collection", "Points", "check_ids", "check_metadata", "check_points"]
