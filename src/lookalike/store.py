"""The point store of a collection: its vector log, the exact index over it, and the label -> id map.

    VectorLog   the vectors, appended and memory-mapped (storage/vector_log.py): the one float32 copy
    FlatIndex   exact search over the log's rows, with a live flag per row; every other index attaches to it
    _IdMap      label -> the user's id, for turning hits into ids without SQL

A write appends to the log and commits in SQLite (``append``); ``catch_up`` then brings the in-memory parts to the
committed state: the rows past the mapped ones come from the log (their labels are in it), deletions from the
change log (which records only deletions: an addition is a new row of the log).  ``rewrite`` writes the live rows
in a new order as a new log generation (compaction, or the order an IVF index reads fastest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import StorageFormatError
from .index.flat import FlatIndex
from .storage.sqlite import CollectionStore
from .storage.vector_log import LOG_DIR, VectorLog, new_generation, write_generation

FLAT = "flat"


class PointStore:
    """Not thread-safe on its own: the collection calls ``catch_up`` and ``rewrite`` under its exclusive lock and
    ``append`` under its write lock (appending never touches what readers see)."""

    def __init__(self, directory: Path, dim: int, metric: str, normalize: bool):
        self.directory = Path(directory) / LOG_DIR
        self.dim, self.metric, self.normalize = dim, metric, normalize
        self.log: VectorLog | None = None
        self.flat: FlatIndex | None = None
        self.version = -1  # the SQLite data version the live flags reflect
        self.ids: _IdMap | None = None
        #: (version, labels): the labels deleted between that version and ``version``, as the last catch-up read
        #: them; an index at that version catches up from them instead of reading the change log again
        self.last_removed: tuple[int, np.ndarray] = (-1, np.empty(0, np.int64))
        self._uncommitted_cut = False  # bytes past the committed rows are cut off before this process's first append

    def _log_of(self, generation: str) -> VectorLog:
        return VectorLog(self.directory, generation, self.dim, with_norms=self.normalize)

    # ------------------------------------------------------------------ reading the committed state
    def open(self, store: CollectionStore) -> None:
        """Map the committed rows and read which are live and their ids (call inside a read transaction)."""
        generation, rows = store.log_state()
        log = self._log_of(generation)
        if rows and not log.exists():
            raise StorageFormatError(f"{self.directory}: the vector log {generation} is missing")
        view = log.rows(rows)
        capacity = store.next_label()
        ids = _IdMap(capacity)
        alive = np.zeros(capacity, dtype=bool)
        n_points = 0
        as_ints = store.int_ids()
        chunks = [as_ints] if as_ints is not None else store.ids_in_chunks()  # never a list of a million tuples
        for labels, ext_ids in chunks:
            ids.add(labels, ext_ids)
            alive[labels] = True
            n_points += len(labels)
        live = alive[view.labels] if rows else np.zeros(0, bool)
        log.release_pages("labels")  # read once, whole; from now on a search reads only its hits' labels
        if int(live.sum()) != n_points:
            raise StorageFormatError(f"{self.directory}: {n_points} points in SQLite, {int(live.sum())} in the log")
        self.log = log
        self.flat = FlatIndex.over_log(self.dim, self.metric, view.vectors, view.labels, live, generation)
        self.ids = ids
        self.version = store.version()
        self.last_removed = (self.version, np.empty(0, np.int64))

    def catch_up(self, store: CollectionStore, written: "Written | None" = None) -> bool:
        """Bring the flat index and the id map to the committed state (inside a read transaction).  Returns
        False when the log was rewritten (a new generation): the caller reopens every index over the new rows."""
        generation, rows = store.log_state()
        version = store.version()
        if self.flat is None or generation != self.flat.generation:
            self.open(store)
            return False
        if version == self.version:
            return True
        flat = self.flat
        start = flat.n_rows
        if rows > start:
            view = self.log.rows(rows)
            new_labels = np.asarray(view.labels[start:])
            flat.grow(view.vectors, view.labels, np.ones(rows - start, dtype=bool))
            if written is not None and np.array_equal(written.labels, new_labels):
                self.ids.add(new_labels, written.ext_ids)
            else:  # another process wrote them: their ids from SQLite (some may be deleted already)
                self.ids.add(*store.ids_of_labels(new_labels))
        if written is not None and written.version == version and written.previous == self.version:
            removed = written.removed
        else:
            removed = store.deletions_since(self.version)
        removed = np.asarray(removed, dtype=np.int64)
        gone = removed[flat.has(removed)]
        if len(gone):
            flat.remove(gone)
        self.last_removed = (self.version, removed)
        self.version = version
        return True

    # ------------------------------------------------------------------ writing
    def append(self, store: CollectionStore, vectors: np.ndarray, norms: np.ndarray | None,
               labels: np.ndarray) -> None:
        """Append prepared vectors to the log and record the batch (inside the write transaction, which then
        commits: only then are the rows committed)."""
        generation, rows = store.log_state()
        log = self.log if self.log is not None and self.log.generation == generation else self._log_of(generation)
        if not log.exists():
            log.create()
        elif not self._uncommitted_cut:  # what a crash left past the committed rows goes (write lock held)
            log.trim(rows)
            self._uncommitted_cut = True
        crc = log.append(rows, vectors, labels, norms)
        store.record_batch(generation, rows, len(labels), crc)

    def vectors_of(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of flat rows as they were given (cosine: the stored length is put back)."""
        vectors = np.array(self.flat.vectors[rows], dtype=np.float32)
        if self.normalize:
            norms = self.log.rows(self.flat.n_rows).norms
            vectors *= norms[rows][:, None]
        return vectors

    def rewrite(self, store: CollectionStore, rows: np.ndarray) -> FlatIndex:
        """Write the flat's ``rows`` (in that order) as a new log generation and make it current (inside the
        write transaction: nothing is appended meanwhile).  Returns the new flat index; the old files are
        removed (a process still mapping them keeps its pages until it catches up)."""
        flat = self.flat
        old = self.log
        log = self._log_of(new_generation())
        norms = None if not self.normalize else np.asarray(old.rows(flat.n_rows).norms[rows])
        batches = write_generation(log, np.asarray(flat.vectors[rows]), np.asarray(flat.labels[rows]), norms)
        store.switch_generation(log.generation, batches)
        view = log.rows(len(rows))
        self.log = log
        self.flat = FlatIndex.over_log(self.dim, self.metric, view.vectors, view.labels, flat.live[rows],
                                       log.generation)
        return self.flat

    def forget_old_generations(self) -> None:
        """Remove log files of generations other than the current one (after a rewrite committed)."""
        if self.log is None or not self.directory.exists():
            return
        for path in self.directory.iterdir():
            if path.stem != self.log.generation:
                path.unlink(missing_ok=True)


class Written:
    """What this process just wrote, so that catching up needs no SQL: the new rows' labels and ids, the labels
    the write deleted, and the versions before and after it."""

    def __init__(self, labels: np.ndarray, ext_ids: list[Any], removed: list[int], previous: int, version: int):
        self.labels, self.ext_ids, self.removed = labels, ext_ids, removed
        self.previous, self.version = previous, version


class _IdMap:
    """label -> the user's id, in memory, so a query turns its hits into ids with one array lookup instead of a
    SQL statement (labels are small, dense and never reused).  While every id is an int the map is an int64
    array (8 bytes a point); the first str id turns it into an object array (a Python object a point)."""

    def __init__(self, capacity: int = 0):
        self.by_label: np.ndarray = np.zeros(max(capacity, 1), dtype=np.int64)
        self.ints = True

    def add(self, labels, ext_ids: list[Any]) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) == 0:
            return
        need = int(labels.max()) + 1
        if need > len(self.by_label):
            grown = np.zeros(max(need, 2 * len(self.by_label)), dtype=self.by_label.dtype)
            grown[: len(self.by_label)] = self.by_label
            self.by_label = grown
        if self.ints:
            if isinstance(ext_ids, np.ndarray) and ext_ids.dtype == np.int64:
                self.by_label[labels] = ext_ids
                return
            try:
                self.by_label[labels] = np.array(ext_ids, dtype=np.int64)
                if all(type(i) is int for i in ext_ids):
                    return
            except (TypeError, ValueError, OverflowError):
                pass
            self.by_label = self.by_label.astype(object)  # a str id: every id becomes an object
            self.ints = False
        ids = np.empty(len(ext_ids), dtype=object)
        ids[:] = list(ext_ids)  # element-wise: a list of tuples or lists stays one object per label
        self.by_label[labels] = ids

    def ids_of(self, labels: np.ndarray) -> np.ndarray:
        """The ids of a (q, k) label matrix (an object array), None for the padding label -1."""
        if len(labels) == 1 and labels[0, -1] >= 0:  # one full answer (padding comes last): nothing to blank
            found = self.by_label[labels]
            return found.astype(object) if self.ints else found
        found = self.by_label[np.maximum(labels, 0)]
        out = found.astype(object) if self.ints else found
        missing = labels < 0
        if missing.any():
            out = out.copy() if out is found else out
            out[missing] = None
        return out
