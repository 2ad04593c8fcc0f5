"""Facets for the page's filters: the metadata fields with a few distinct values (class, colour, product type...)
and how many items carry each value.

Read through a read-only SQLite connection of its own on the collection's file (the ``points`` table of the
documented on-disk format), so it never contends with the serving connection; cached per data version.  A sharded
collection has one such file per shard: each is read where it is (here, or by a Ray task on the shard's node) and
the counts are summed.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

from ..database import SQLITE_FILE

SAMPLE_ROWS = 2000  # rows read to discover which fields are facets
MAX_VALUES = 60  # a field with more distinct values in the sample is not a facet (a name, a description)
TOP_VALUES = 100  # values listed per facet
SKIP_FIELDS = frozenset({"image", "name", "id", "path", "file", "detail_desc", "prod_name", "index", "article_id"})
_FIELD = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .-]{0,63}$")

_cache: dict[tuple[str, int], dict[str, Any]] = {}
_cache_lock = threading.Lock()


def collection_facets(sqlite_file: Path) -> dict[str, list[dict[str, Any]]]:
    """``{field: [{"value", "count"}, ...]}``, most common values first, fields in alphabetical order."""
    conn = _open_read_only(sqlite_file)
    try:
        version = int(conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])
        key = (str(sqlite_file), version)
        cached = _cache.get(key)
        if cached is not None:
            return cached
        facets = {field: _counts(conn, field) for field in _facet_fields(conn)}
    finally:
        conn.close()
    return _remember(key, facets)


def sharded_facets(database: Any, name: str, version: int) -> dict[str, list[dict[str, Any]]]:
    """The facets of collection ``name`` of a ``ShardedDatabase``, as ``collection_facets`` gives them, with counts
    summed over the shards.  ``version`` (the collection's, which any write changes) keys the cache."""
    key = (f"{database.path} {name}", version)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    files = [Path(database.shard_directory(i)) / "collections" / name / SQLITE_FILE for i in range(database.n_shards)]
    elsewhere = {i: str(file) for i, file in enumerate(files) if not file.is_file()}  # shards on other nodes' disks
    pending = _read_elsewhere(database, elsewhere) if elsewhere else None
    per_shard = [shard_facets(file) for i, file in enumerate(files) if i not in elsewhere]
    if pending is not None:
        import ray

        per_shard += ray.get(pending, timeout=database.query_timeout_s)
    return _remember(key, _merge(per_shard))


def _remember(key: tuple[str, int], facets: dict[str, Any]) -> dict[str, Any]:
    with _cache_lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = facets
    return facets


def shard_facets(sqlite_file: str | Path) -> dict[str, list[dict[str, Any]]]:
    """One shard's facets: fields with even a single value here count, since other shards may hold more."""
    conn = _open_read_only(sqlite_file)
    try:
        return {field: _counts(conn, field) for field in _facet_fields(conn, min_values=1)}
    finally:
        conn.close()


def _read_elsewhere(database: Any, files: dict[int, str]) -> list:
    """Start a task on the node of each shard in ``files`` (shard -> its SQLite file there); their ObjectRefs."""
    nodes = {shard["shard"]: shard["node"] for shard in database.shard_info()}
    return [read_on_node(nodes[i], file) for i, file in files.items()]


def read_on_node(node_id: str, sqlite_file: str):
    """A Ray ObjectRef of ``shard_facets(sqlite_file)``, run by a task on node ``node_id`` (where the file is)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    on_node = NodeAffinitySchedulingStrategy(node_id, soft=False)
    return _remote_shard_facets().options(scheduling_strategy=on_node).remote(sqlite_file)


@functools.cache
def _remote_shard_facets():
    import ray

    return ray.remote(num_cpus=0, max_retries=1)(shard_facets)


def _merge(per_shard: list[dict[str, list[dict[str, Any]]]]) -> dict[str, list[dict[str, Any]]]:
    totals: dict[str, dict[Any, int]] = {}
    for facets in per_shard:
        for field, counts in facets.items():
            merged = totals.setdefault(field, {})
            for row in counts:
                merged[row["value"]] = merged.get(row["value"], 0) + row["count"]
    # most common first; equal counts in SQLite's order (numbers before text), as one collection lists them
    order = lambda item: (-item[1], isinstance(item[0], str), item[0])  # noqa: E731
    return {field: [{"value": value, "count": n} for value, n in sorted(counts.items(), key=order)[:TOP_VALUES]]
            for field, counts in sorted(totals.items()) if len(counts) >= 2}


def _open_read_only(sqlite_file: str | Path) -> sqlite3.Connection:
    return sqlite3.connect(Path(sqlite_file).resolve().as_uri() + "?mode=ro", uri=True, timeout=5.0)


def _facet_fields(conn: sqlite3.Connection, min_values: int = 2) -> list[str]:
    values: dict[str, set] = {}
    for (text,) in conn.execute("SELECT metadata FROM points WHERE metadata IS NOT NULL LIMIT ?", (SAMPLE_ROWS,)):
        try:
            metadata = json.loads(text)
        except ValueError:
            continue
        for field, value in metadata.items() if isinstance(metadata, dict) else ():
            if isinstance(value, str) and field not in SKIP_FIELDS and _FIELD.match(field):
                values.setdefault(field, set()).add(value)
    return sorted(f for f, seen in values.items() if min_values <= len(seen) <= MAX_VALUES)


def _counts(conn: sqlite3.Connection, field: str) -> list[dict[str, Any]]:
    path = '$."' + field + '"'  # field names are checked against _FIELD: no quote can end the path early
    rows = conn.execute(
        "SELECT json_extract(metadata, ?) AS value, COUNT(*) AS n FROM points WHERE value IS NOT NULL "
        "GROUP BY value ORDER BY n DESC, value LIMIT ?", (path, TOP_VALUES),
    ).fetchall()
    return [{"value": value, "count": n} for value, n in rows]
