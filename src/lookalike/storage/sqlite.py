"""The SQLite store of one collection: its ids, metadata and change log (the vectors are in the vector log).

One file per collection, in WAL mode (readers never block the writer, nor the writer the readers), with
``synchronous=FULL`` so a write that returned survives a crash or a power cut.  Tables:

    meta(key, value)                       config (JSON), the data version, the first version the log covers,
                                            the vector log's current generation and committed rows
    points(label, ext_id, metadata)        one row per live point; ``label`` is the int64 the indexes speak,
                                            never reused; ``ext_id`` the user's id (str or int, kept as typed)
    changes(version, label, op)            the change log of deletions (op -1; format 1 also logged additions as
                                            +1).  Derived structures stamped with version v replay v+1.. .
    indexes(name, config)                  which indexes the user built, with their build parameters
    batches(generation, first_row, n_rows, crc32)   the vector log's batches and their checksums

Every write is one transaction (``BEGIN IMMEDIATE``): a batch is all there or not there at all.  Format 1 kept
each vector as a blob in its points row; ``storage/migrate.py`` moves a format-1 file to this one.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import DuplicateIdError, StorageBusyError, StorageFormatError, StorageFullError
from .change_token import ChangeToken
from .filters import compile_where, metadata_index_sql, path_literal
from .vector_log import new_generation

SCHEMA_FORMAT = "lookalike-collection"
SCHEMA_VERSION = 2
OLDEST_MIGRATABLE = 1  # a format-1 file is migrated (storage/migrate.py), not refused
BUSY_TIMEOUT_S = 30.0
WRITER_CACHE_KIB = 65_536  # SQLite's page cache of a writer's connection, at most (readers keep the 2 MB default)
_JSON_TEXT = json.JSONEncoder(ensure_ascii=False)  # ids and metadata texts as JSON string or number literals
BATCHES_TABLE = """
                CREATE TABLE batches(generation TEXT NOT NULL, first_row INTEGER NOT NULL, n_rows INTEGER NOT NULL,
                                     crc32 INTEGER NOT NULL)"""
CHANGES_SUFFIX = "-changes"  # the change token's file, beside the database as SQLite's -wal and -shm
_CHUNK = 900  # SQLite's limit on bound variables is 32766; stay far below it


class CollectionStore:
    """Thin, typed access to one collection's SQLite file.  Not thread-safe: one per thread/process."""

    def __init__(self, file: Path, *, create_config: dict[str, Any] | None = None, writer: bool = False):
        self.file = Path(file)
        exists = self.file.exists()
        if not exists and create_config is None:
            raise StorageFormatError(f"{self.file} does not exist")
        self.changes = ChangeToken(self.file.with_name(self.file.name + CHANGES_SUFFIX))
        try:
            self.conn = _SafeConnection(sqlite3.connect(
                str(self.file), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            ), self.file)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            if writer:  # the id index of a large collection stays in memory: inserts do not read its pages back
                self.conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
            if not exists:
                self._create(create_config)
            self.config = self._read_config()
        except (sqlite3.DatabaseError, StorageFormatError) as exc:
            self.close()
            raise StorageFormatError(f"{self.file} is not a lookalike collection or is corrupt: {exc}") from None

    # ------------------------------------------------------------------ schema
    def _create(self, config: dict[str, Any]) -> None:
        with self.transaction():
            for statement in ("""
                CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE points(
                    label INTEGER PRIMARY KEY,
                    ext_id UNIQUE NOT NULL,          -- no declared type: a str stays TEXT, an int INTEGER
                    metadata TEXT                    -- JSON object or NULL
                );
                CREATE TABLE changes(version INTEGER NOT NULL, label INTEGER NOT NULL, op INTEGER NOT NULL);
                CREATE INDEX changes_by_version ON changes(version);
                CREATE TABLE indexes(name TEXT PRIMARY KEY, config TEXT NOT NULL);
                """ + BATCHES_TABLE).split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            meta = {
                "format": SCHEMA_FORMAT,
                "format_version": str(SCHEMA_VERSION),
                "config": json.dumps(config),
                "version": "0",
                "log_start": "0",
                "next_label": "0",
                "log_generation": new_generation(),
                "log_rows": "0",
            }
            self.conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())

    def _read_config(self) -> dict[str, Any]:
        rows = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        if rows.get("format") != SCHEMA_FORMAT:
            raise StorageFormatError(f"{self.file} is an SQLite file but not a lookalike collection")
        found = rows.get("format_version")
        if found != str(SCHEMA_VERSION):
            if found == str(OLDEST_MIGRATABLE):
                raise StorageFormatError(f"{self.file} has format_version {found} (an older release): open its "
                                         "database with lookalike.Database, or run lookalike migrate, to move it on")
            raise StorageFormatError(
                f"{self.file} has format_version {found}, this lookalike reads {SCHEMA_VERSION}: it was written by a "
                "newer release"
            )
        try:
            return json.loads(rows["config"])
        except (KeyError, ValueError) as exc:
            raise StorageFormatError(f"{self.file}: collection config is corrupt: {exc}") from None

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()
            self.conn = None
        self.changes.close()  # also when the connection never opened (closing twice is harmless)

    # ------------------------------------------------------------------ transactions
    def transaction(self):
        """A write transaction: takes the write lock at once (waiting up to the busy timeout); its end, committed
        or not, is announced to every reader of the collection (a rollback only costs them one needless look)."""
        return _Transaction(self.conn, "BEGIN IMMEDIATE", self.changes.announce)

    def change_stamp(self) -> int:
        """What changes whenever any connection, in any process, ends a write (``storage/change_token.py``): one
        load from shared memory, where ``PRAGMA data_version`` was a statement.  Equal stamps mean nothing was
        written in between; take it before reading, so a later write moves it."""
        return self.changes.read()

    def transaction_read(self):
        """A read transaction: every statement inside sees the same snapshot, whatever writers do meanwhile."""
        return _Transaction(self.conn, "BEGIN DEFERRED")

    def version(self) -> int:
        return int(self._meta("version"))

    def log_start(self) -> int:
        return int(self._meta("log_start"))

    def _meta(self, key: str) -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise StorageFormatError(f"{self.file}: meta key {key!r} is missing")
        return row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta_items(self, prefix: str) -> list[tuple[str, str]]:
        """(key, value) of the meta rows whose key starts with ``prefix``."""
        return self.conn.execute("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?",
                                 (len(prefix), prefix)).fetchall()

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    # ------------------------------------------------------------------ writes (call inside a transaction)
    def bump_version(self) -> int:
        version = self.version() + 1
        self.set_meta("version", str(version))
        return version

    def allocate_labels(self, n: int) -> np.ndarray:
        start = int(self._meta("next_label"))
        self.set_meta("next_label", str(start + n))
        return np.arange(start, start + n, dtype=np.int64)

    def insert_points(self, labels: np.ndarray, ext_ids: Sequence[Any], metadatas: Sequence[str | None]) -> None:
        """New points' ids and metadata (their vectors go to the vector log; the change log records no
        additions: a new point is a new row of the log)."""
        # One statement for the whole batch: the rows go in as one JSON array that SQLite unpacks (json_each),
        # [id, metadata text or null] each, so the GIL is released once, not once a row as executemany does
        # (under a stream of searches in other threads, each re-acquisition may wait).  Labels are consecutive.
        dumps = _JSON_TEXT.encode
        rows = ",".join(f"[{dumps(ext_id)},{'null' if meta is None else dumps(meta)}]"
                        for ext_id, meta in zip(ext_ids, metadatas))
        first = int(labels[0]) if len(labels) else 0
        if len(labels) and int(labels[-1]) - first + 1 == len(labels):
            self.conn.execute("INSERT INTO points SELECT key + ?, value ->> 0, value ->> 1 FROM json_each(?)",
                              (first, f"[{rows}]"))
        else:
            self.conn.executemany("INSERT INTO points VALUES (?, ?, ?)", zip(labels.tolist(), ext_ids, metadatas))

    def log_state(self) -> tuple[str, int]:
        """(the vector log's current generation, its committed rows)."""
        return self._meta("log_generation"), int(self._meta("log_rows"))

    def record_batch(self, generation: str, first_row: int, n_rows: int, crc: int) -> None:
        """A batch appended to the vector log: its rows become committed with this transaction."""
        self.conn.execute("INSERT INTO batches VALUES (?, ?, ?, ?)", (generation, first_row, n_rows, crc))
        self.set_meta("log_rows", str(first_row + n_rows))

    def switch_generation(self, generation: str, batches: list[tuple[int, int, int]]) -> None:
        """Make a freshly written vector log generation the current one (its batches replace the old ones)."""
        self.conn.execute("DELETE FROM batches")
        self.conn.executemany("INSERT INTO batches VALUES (?, ?, ?, ?)", ((generation, *b) for b in batches))
        self.set_meta("log_generation", generation)
        self.set_meta("log_rows", str(sum(n for _, n, _ in batches)))

    def batches(self, generation: str) -> list[tuple[int, int, int]]:
        return self.conn.execute("SELECT first_row, n_rows, crc32 FROM batches WHERE generation = ? "
                                 "ORDER BY first_row", (generation,)).fetchall()

    def delete_labels(self, labels: Iterable[int], version: int) -> None:
        labels = [int(l) for l in labels]
        for chunk in _chunks(labels):
            self.conn.execute(f"DELETE FROM points WHERE label IN ({_marks(chunk)})", chunk)
        self.conn.executemany("INSERT INTO changes VALUES (?, ?, -1)", ((version, l) for l in labels))

    def put_index(self, name: str, config: dict[str, Any]) -> None:
        self.conn.execute("INSERT OR REPLACE INTO indexes VALUES (?, ?)", (name, json.dumps(config)))

    def create_metadata_index(self, key: str) -> None:
        self.conn.execute(metadata_index_sql(key))

    def metadata_indexes(self) -> list[str]:
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'meta_%'")
        return sorted(r[0] for r in rows)

    def drop_index(self, name: str) -> None:
        self.conn.execute("DELETE FROM indexes WHERE name = ?", (name,))

    def trim_log(self, up_to_version: int) -> None:
        """Forget changes every derived structure has absorbed."""
        self.conn.execute("DELETE FROM changes WHERE version <= ?", (up_to_version,))
        self.set_meta("log_start", str(up_to_version))

    # ------------------------------------------------------------------ reads
    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM points").fetchone()[0]

    def index_configs(self) -> dict[str, dict[str, Any]]:
        return {name: json.loads(cfg) for name, cfg in self.conn.execute("SELECT name, config FROM indexes")}

    def labels_of(self, ext_ids: Sequence[Any]) -> dict[Any, int]:
        """ext_id -> label for the ids that exist (typed: "1" and 1 are different ids)."""
        found: dict[Any, int] = {}
        for chunk in _chunks(list(ext_ids)):
            for ext, label in self.conn.execute(
                f"SELECT ext_id, label FROM points WHERE ext_id IN ({_marks(chunk)})", chunk
            ):
                found[(type(ext), ext)] = label
        return found

    def next_label(self) -> int:
        return int(self._meta("next_label"))

    def int_ids(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(labels, ids) of every point when every id is an int, else None.  SQLite hands over each column as
        one text that NumPy parses: no Python object per point (a million ids in 0.2 s instead of 1 s)."""
        if self.conn.execute("SELECT 1 FROM points WHERE typeof(ext_id) != 'integer' LIMIT 1").fetchone():
            return None
        labels, ids = self.conn.execute("SELECT group_concat(label), group_concat(ext_id) FROM points").fetchone()
        if labels is None:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.fromstring(labels, dtype=np.int64, sep=","), np.fromstring(ids, dtype=np.int64, sep=",")

    def ids_in_chunks(self, size: int = 65_536):
        """(labels, ext_ids) of every point, a chunk at a time."""
        cursor = self.conn.execute("SELECT label, ext_id FROM points")
        while rows := cursor.fetchmany(size):
            labels, ext_ids = zip(*rows)
            yield np.array(labels, dtype=np.int64), list(ext_ids)

    def first_ids(self, limit: int) -> list[Any]:
        return [r[0] for r in self.conn.execute("SELECT ext_id FROM points ORDER BY label LIMIT ?", (limit,))]

    def all_ids(self) -> tuple[np.ndarray, list[Any]]:
        rows = self.conn.execute("SELECT label, ext_id FROM points ORDER BY label").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]

    def points(self, labels: Sequence[int]) -> tuple[list[Any], list[str | None]]:
        """ext_ids and metadata JSON of labels, in the order given (all must exist)."""
        by_label: dict[int, tuple] = {}
        for chunk in _chunks([int(l) for l in labels]):
            for row in self.conn.execute(
                f"SELECT label, ext_id, metadata FROM points WHERE label IN ({_marks(chunk)})", chunk
            ):
                by_label[row[0]] = row[1:]
        rows = [by_label[int(l)] for l in labels]
        return [r[0] for r in rows], [r[1] for r in rows]

    def metadata_of(self, labels: Sequence[int]) -> dict[int, str | None]:
        out: dict[int, str | None] = {}
        for chunk in _chunks(sorted({int(l) for l in labels})):
            out.update(self.conn.execute(f"SELECT label, metadata FROM points WHERE label IN ({_marks(chunk)})", chunk))
        return out

    def ids_of_labels(self, labels: Sequence[int]) -> tuple[np.ndarray, list[Any]]:
        """(labels, ext_ids) of those of ``labels`` whose points are still stored, in the order given."""
        by_label: dict[int, Any] = {}
        for chunk in _chunks([int(l) for l in labels]):
            by_label.update(self.conn.execute(
                f"SELECT label, ext_id FROM points WHERE label IN ({_marks(chunk)})", chunk))
        found = [l for l in np.asarray(labels).tolist() if l in by_label]
        return np.array(found, dtype=np.int64), [by_label[l] for l in found]

    def deletions_since(self, version: int) -> list[int]:
        """Labels deleted after ``version`` (the change log records deletions: additions are log rows)."""
        return [r[0] for r in self.conn.execute(
            "SELECT label FROM changes WHERE version > ? AND op < 0 ORDER BY version, rowid", (version,))]

    def metadata_values(self, key: str, from_label: int) -> tuple[np.ndarray, list[str], list[Any]]:
        """(labels, JSON types, values) of the points from ``from_label`` on whose metadata holds ``key`` as a
        string, a number or a boolean (the columns ``lookalike.filter_masks`` filters on)."""
        path = path_literal(key)
        rows = self.conn.execute(
            f"SELECT label, json_type(metadata, {path}) AS kind, json_extract(metadata, {path}) FROM points "
            f"WHERE label >= ? AND kind IN ('text', 'integer', 'real', 'true', 'false')", (from_label,)).fetchall()
        if not rows:
            return np.empty(0, np.int64), [], []
        labels, kinds, values = zip(*rows)
        return np.array(labels, dtype=np.int64), list(kinds), list(values)

    def filter_labels(self, where: dict[str, Any]) -> np.ndarray:
        sql, params = compile_where(where)
        rows = self.conn.execute(f"SELECT label FROM points WHERE {sql}", params).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)


class _SafeConnection:
    """An sqlite3 connection whose errors arrive as typed lookalike errors: a full disk, a lock held too long and
    a corrupt file each say what happened (the transaction is rolled back by the caller's context manager)."""

    def __init__(self, conn: sqlite3.Connection, file: Path):
        self._conn = conn
        self._file = file

    def execute(self, sql: str, params: Any = ()):
        try:
            return self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise translate_error(exc, self._file) from None

    def executemany(self, sql: str, rows: Any):
        try:
            return self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise translate_error(exc, self._file) from None

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def close(self) -> None:
        self._conn.close()


def translate_error(exc: sqlite3.Error, file: Path) -> Exception:
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError) and "points.ext_id" in text:
        return DuplicateIdError(f"{file}: an id is already stored ({text})")
    if "full" in text:
        return StorageFullError(f"{file}: the disk is full ({text}); the write was rolled back, nothing was lost")
    if "locked" in text or "busy" in text:
        return StorageBusyError(
            f"{file}: another process held the write lock for over {BUSY_TIMEOUT_S:.0f}s ({text}); retry later"
        )
    if isinstance(exc, (sqlite3.DatabaseError,)) and not isinstance(exc, (sqlite3.IntegrityError, sqlite3.InterfaceError)):
        if any(w in text for w in ("malformed", "not a database", "corrupt", "disk I/O")):
            return StorageFormatError(f"{file} is corrupt or unreadable: {text}")
    return StorageFormatError(f"{file}: SQLite error: {text}")


class _Transaction:
    """``with store.transaction():`` — BEGIN, COMMIT on success, ROLLBACK on any exception."""

    def __init__(self, conn: sqlite3.Connection, begin: str, on_end=None):
        self.conn = conn
        self.begin = begin
        self.on_end = on_end  # called once the transaction is over, whatever its outcome

    def __enter__(self):
        self.conn.execute(self.begin)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                try:
                    self.conn.execute("COMMIT")
                except Exception:
                    self._rollback()
                    raise
            else:
                self._rollback()
        finally:
            if self.on_end is not None:
                self.on_end()
        return False

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except Exception:  # the original error is the one worth reporting
                pass


def _chunks(items: list, size: int = _CHUNK):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _marks(chunk: list) -> str:
    return ",".join("?" * len(chunk))
