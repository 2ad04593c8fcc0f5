"""The query log: one row per search the server answered, in ``<database>/querylog.sqlite``, exportable as JSON or
Parquet (the original app logged its queries to Parquet for offline analysis).

A row records what was asked and what it cost, never the raw photo: a text query is kept as typed, a photo or a
vector by the SHA-256 of its bytes, so a repeated query can be recognised without storing anyone's pictures.
The log is a side channel: if it cannot be written (read-only directory, full disk), the query is still answered
and the problem is logged once.  It is off the query's path: ``record`` queues the row and a writer thread inserts
the queue in one transaction every ``FLUSH_S`` (one SQLite commit per query cost more than the search itself);
every read flushes first, so a query is in the log as soon as its answer has been sent.
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger("lookalike.server")

LOG_FILE = "querylog.sqlite"
MAX_TEXT = 1000  # characters of a text query kept in the log
TOP_IDS = 10  # ids of the first hits kept per query
DEFAULT_MAX_ROWS = 1_000_000  # older rows are trimmed past this
FLUSH_S = 0.2  # the writer thread inserts what was queued this often

COLUMNS: list[tuple[str, str]] = [  # (name, SQLite type); the order of JSON and Parquet exports
    ("id", "INTEGER PRIMARY KEY AUTOINCREMENT"),
    ("time", "TEXT NOT NULL"),
    ("mode", "TEXT NOT NULL"),
    ("text", "TEXT"),
    ("digest", "TEXT"),
    ("collection", "TEXT NOT NULL"),
    ("index_name", "TEXT"),
    ("params", "TEXT"),
    ("k", "INTEGER"),
    ("filter", "TEXT"),
    ("n_hits", "INTEGER"),
    ("latency_ms", "REAL"),
    ("embed_ms", "REAL"),
    ("search_ms", "REAL"),
    ("exact_ms", "REAL"),
    ("recall", "REAL"),
    ("top_ids", "TEXT"),
]
_JSON_COLUMNS = ("params", "filter", "top_ids")


class QueryLog:
    """Thread-safe append-only log of queries, written in batches by a daemon thread."""

    def __init__(self, path: str | Path, *, max_rows: int = DEFAULT_MAX_ROWS):
        self.path = Path(path)
        self.max_rows = max_rows
        self._lock = threading.Lock()  # the connection
        self._failed = False
        self._closed = False
        self._inserts = 0
        self._pending: list[list[Any]] = []  # rows queued by record(), in order
        self._pending_lock = threading.Lock()
        self._wake = threading.Event()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=5.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # a lost last query on power loss is acceptable here
        columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
        self._conn.execute(f"CREATE TABLE IF NOT EXISTS queries({columns})")
        self._names = names = [name for name, _ in COLUMNS if name != "id"]
        self._insert = f"INSERT INTO queries({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
        self._writer = threading.Thread(target=self._write_loop, name="querylog-writer", daemon=True)
        self._writer.start()

    def record(self, *, mode: str, collection: str, text: str | None = None, digest: str | None = None,
               index: str | None = None, params: dict[str, Any] | None = None, k: int | None = None,
               where: Any = None, n_hits: int = 0, latency_ms: dict[str, float | None] | None = None,
               recall: float | None = None, top_ids: list[Any] | None = None) -> bool | None:
        """Queue one query for the log; True, or None when the log can no longer be written."""
        latency = latency_ms or {}
        row = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "mode": mode,
            "text": None if text is None else text[:MAX_TEXT],
            "digest": digest,
            "collection": collection,
            "index_name": index,
            "params": json.dumps(params or {}, sort_keys=True),
            "k": k,
            "filter": None if where is None else json.dumps(where, sort_keys=True),
            "n_hits": n_hits,
            "latency_ms": latency.get("total"),
            "embed_ms": latency.get("embed"),
            "search_ms": latency.get("search"),
            "exact_ms": latency.get("exact"),
            "recall": recall,
            "top_ids": json.dumps(list(top_ids or [])[:TOP_IDS]),
        }
        if self._failed or self._closed:
            return None
        with self._pending_lock:
            self._pending.append([row[name] for name in self._names])
        return True

    def pending(self) -> int:
        """Rows queued and not yet written."""
        with self._pending_lock:
            return len(self._pending)

    def flush(self) -> None:
        """Insert every queued row now, in one transaction."""
        with self._pending_lock:
            rows, self._pending = self._pending, []
        if not rows:
            return
        try:
            with self._lock:
                self._conn.execute("BEGIN")
                self._conn.executemany(self._insert, rows)
                self._conn.execute("COMMIT")
                before, self._inserts = self._inserts, self._inserts + len(rows)
                if before // 1000 != self._inserts // 1000:
                    self._trim()
        except sqlite3.Error as exc:
            if not self._failed:
                log.warning("query log %s cannot be written (%s): queries are answered but not logged", self.path, exc)
                self._failed = True
            try:
                with self._lock:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _write_loop(self) -> None:
        while not self._closed:
            self._wake.wait(FLUSH_S)
            self._wake.clear()
            self.flush()

    def _trim(self) -> None:
        self._conn.execute("DELETE FROM queries WHERE id <= (SELECT MAX(id) FROM queries) - ?", (self.max_rows,))

    def rows(self, limit: int | None = None, collection: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` rows (all when None), oldest first, JSON columns decoded."""
        self.flush()
        sql = "SELECT * FROM queries"
        args: list[Any] = []
        if collection is not None:
            sql += " WHERE collection = ?"
            args.append(collection)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            cursor = self._conn.execute(sql, args)
            names = [d[0] for d in cursor.description]
            fetched = cursor.fetchall()
        out = []
        for values in reversed(fetched):
            row = dict(zip(names, values))
            for name in _JSON_COLUMNS:
                if row[name] is not None:
                    row[name] = json.loads(row[name])
            out.append(row)
        return out

    def count(self) -> int:
        self.flush()
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM queries").fetchone()[0]

    def close(self) -> None:
        self.flush()
        self._closed = True
        self._wake.set()
        with self._lock:
            self._conn.close()


def to_parquet(rows: list[dict[str, Any]]) -> bytes:
    """Rows of the log as a Parquet file: typed columns; params and filter as JSON text, top_ids as a list of
    strings (ids may be ints or strings; Parquet wants one type per column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("id", pa.int64()), ("time", pa.timestamp("ms", tz="UTC")), ("mode", pa.string()), ("text", pa.string()),
        ("digest", pa.string()), ("collection", pa.string()), ("index_name", pa.string()), ("params", pa.string()),
        ("k", pa.int32()), ("filter", pa.string()), ("n_hits", pa.int32()), ("latency_ms", pa.float64()),
        ("embed_ms", pa.float64()), ("search_ms", pa.float64()), ("exact_ms", pa.float64()),
        ("recall", pa.float64()), ("top_ids", pa.list_(pa.string())),
    ])
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    for row in rows:
        for name in schema.names:
            value = row.get(name)
            if name == "time":
                value = datetime.fromisoformat(value)
            elif name in ("params", "filter"):
                value = None if value is None else json.dumps(value, sort_keys=True)
            elif name == "top_ids":
                value = [str(v) for v in (value or [])]
            columns[name].append(value)
    table = pa.table(columns, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()
