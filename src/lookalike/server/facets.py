"""Facets for the page's filters: the metadata fields with a few distinct values (class, colour, product type...)
and how many items carry each value.

Read through a read-only SQLite connection of its own on the collection's file (the ``points`` table of the
documented on-disk format), so it never contends with the serving connection; cached per data version.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

SAMPLE_ROWS = 2000  # rows read to discover which fields are facets
MAX_VALUES = 60  # a field with more distinct values in the sample is not a facet (a name, a description)
TOP_VALUES = 100  # values listed per facet
SKIP_FIELDS = frozenset({"image", "name", "id", "path", "file", "detail_desc", "prod_name", "index", "article_id"})
_FIELD = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .-]{0,63}$")

_cache: dict[tuple[str, int], dict[str, Any]] = {}
_cache_lock = threading.Lock()


def collection_facets(sqlite_file: Path) -> dict[str, list[dict[str, Any]]]:
    """``{field: [{"value", "count"}, ...]}``, most common values first, fields in alphabetical order."""
    conn = sqlite3.connect(Path(sqlite_file).resolve().as_uri() + "?mode=ro", uri=True, timeout=5.0)
    try:
        version = int(conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])
        key = (str(sqlite_file), version)
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        facets = {field: _counts(conn, field) for field in _facet_fields(conn)}
    finally:
        conn.close()
    with _cache_lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = facets
    return facets


def _facet_fields(conn: sqlite3.Connection) -> list[str]:
    values: dict[str, set] = {}
    for (text,) in conn.execute("SELECT metadata FROM points WHERE metadata IS NOT NULL LIMIT ?", (SAMPLE_ROWS,)):
        try:
            metadata = json.loads(text)
        except ValueError:
            continue
        for field, value in metadata.items() if isinstance(metadata, dict) else ():
            if isinstance(value, str) and field not in SKIP_FIELDS and _FIELD.match(field):
                values.setdefault(field, set()).add(value)
    return sorted(f for f, seen in values.items() if 2 <= len(seen) <= MAX_VALUES)


def _counts(conn: sqlite3.Connection, field: str) -> list[dict[str, Any]]:
    path = '$."' + field + '"'  # field names are checked against _FIELD: no quote can end the path early
    rows = conn.execute(
        "SELECT json_extract(metadata, ?) AS value, COUNT(*) AS n FROM points WHERE value IS NOT NULL "
        "GROUP BY value ORDER BY n DESC, value LIMIT ?", (path, TOP_VALUES),
    ).fetchall()
    return [{"value": value, "count": n} for value, n in rows]
