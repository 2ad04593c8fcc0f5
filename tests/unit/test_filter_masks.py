"""Filters answered from in-memory metadata columns (lookalike.filter_masks) give SQLite's answer, stay true as
points are written, deleted, upserted and the log rewritten, and make HNSW, IVF and exact search return only
allowed points."""

from __future__ import annotations

import random

import numpy as np
import pytest

import lookalike
from lookalike.errors import InvalidFilterError
from lookalike.filter_masks import EXACT_INTEGER, FilterMasks

DIM = 16
VALUES = [1, 2, 2.5, -3, 0, "1", "x", "y", "", "é", True, False, None, [1, 2], {"a": 1}, 2**60, 1e300]


def metadata(i: int) -> dict | None:
    rnd = random.Random(i)
    if i % 13 == 0:
        return None
    item = {"p": float(i % 100), "n": i}
    if i % 7:
        item["a"] = rnd.choice(VALUES)
    if i % 3 == 0:
        item["b"] = rnd.choice(["x", "y", "z"])
    return item


FILTERS = [
    {"a": 1}, {"a": 1.0}, {"a": "1"}, {"a": "x"}, {"a": True}, {"a": False}, {"a": 0}, {"a": ""}, {"a": "é"},
    {"a": {"$ne": "x"}}, {"a": {"$ne": 1}}, {"a": {"$eq": 2.5}}, {"a": {"$in": ["x", 1, True]}},
    {"a": {"$nin": ["y", 2]}}, {"a": {"$in": [False]}}, {"p": {"$gte": 10, "$lt": 15}}, {"a": {"$gt": 0}},
    {"a": {"$lte": -3}}, {"a": {"$gt": 1e299}}, {"$or": [{"a": "x"}, {"p": {"$lt": 3}}]},
    {"$and": [{"b": "x"}, {"$or": [{"a": 1}, {"a": {"$nin": [2.5, "y"]}}]}]}, {"a": 2.5, "p": {"$gt": 50}},
    {"missing": 1}, {"missing": {"$ne": 1}}, {"missing": {"$nin": ["q"]}}, {"n": {"$gte": 0}},
    {"a": 2**60},  # beyond 2**53: answered by SQLite
]


def labels_in(col, allowed) -> set[int]:
    flat = col._points.flat
    return set(flat.labels[allowed.rows].tolist()) & set(flat.labels[flat.live].tolist())


def sql_labels(col, where) -> set[int]:
    return set(col._store.filter_labels(where).tolist())


@pytest.fixture
def col(tmp_path):
    db = lookalike.Database(tmp_path / "db")
    col = db.create_collection("c", DIM, "cosine")
    n = 3000
    x = np.random.default_rng(0).standard_normal((n, DIM)).astype(np.float32)
    col.add(list(range(n)), x, [metadata(i) for i in range(n)])
    yield col
    db.close()


def allowed_of(col, where):
    col._ensure_synced()
    return col._filters.allowed(where, col._points.flat, col._store)


@pytest.mark.parametrize("where", FILTERS, ids=repr)
def test_columns_answer_as_sqlite(col, where):
    allowed = allowed_of(col, where)
    assert labels_in(col, allowed) == sql_labels(col, where)
    assert np.array_equal(allowed.rows, np.flatnonzero(allowed.mask))


def test_no_filter_and_the_empty_filter_mean_every_point(col):
    assert allowed_of(col, None) is None
    assert allowed_of(col, {}) is None
    q = np.ones(DIM, np.float32)
    assert col.query(q, k=7, where={}).ids.tolist() == col.query(q, k=7).ids.tolist()


def test_masks_follow_writes_deletes_upserts_and_a_rewrite(col):
    where = {"$or": [{"a": "x"}, {"b": "y"}]}
    first = allowed_of(col, where)
    assert labels_in(col, first) == sql_labels(col, where)
    rng = np.random.default_rng(1)
    col.add(list(range(3000, 3500)), rng.standard_normal((500, DIM)), [{"a": "x"} for _ in range(500)])
    col.delete(list(range(0, 600, 2)))
    col.upsert(list(range(1, 200, 2)), rng.standard_normal((100, DIM)), [{"b": "y"} for _ in range(100)])
    grown = allowed_of(col, where)
    assert len(grown.mask) == col._points.flat.n_rows > len(first.mask)
    assert labels_in(col, grown) == sql_labels(col, where)
    generation = col._points.flat.generation
    col.create_index("ivf", nlist=8)  # IVF reorders the log as it reads it fastest: the rows are renumbered
    col._ensure_synced()
    assert col._points.flat.generation != generation
    assert labels_in(col, allowed_of(col, where)) == sql_labels(col, where)


def test_another_process_writes_are_filtered_too(col, tmp_path):
    allowed_of(col, {"b": "z"})  # the column is built before the other handle writes
    with lookalike.Database(tmp_path / "db") as other:
        other.get_collection("c").add([9000, 9001], np.ones((2, DIM)), [{"b": "z"}, {"b": "q"}])
    result = col.query(np.ones(DIM), k=3, where={"b": "z"})
    assert 9000 in result.ids[0].tolist() and 9001 not in result.ids[0].tolist()
    assert labels_in(col, allowed_of(col, {"b": "z"})) == sql_labels(col, {"b": "z"})


def test_least_recently_used_masks_are_dropped_past_the_cache_size(col):
    col._filters = FilterMasks(cache_bytes=3 * (3000 + 8 * 3000))
    for i in range(10):
        allowed_of(col, {"p": {"$gte": i}})
    assert 1 <= len(col._filters._cached) <= 3
    assert "{'p': {'$gte': 9}}" in col._filters._cached
    assert labels_in(col, allowed_of(col, {"p": {"$gte": 0}})) == sql_labels(col, {"p": {"$gte": 0}})


def test_integers_beyond_float_precision_go_to_sqlite(col):
    col.add([5000, 5001], np.ones((2, DIM)), [{"big": EXACT_INTEGER + 1}, {"big": EXACT_INTEGER}])
    where = {"big": EXACT_INTEGER}  # equal to EXACT_INTEGER + 1 as a float64, not as an integer
    assert labels_in(col, allowed_of(col, where)) == sql_labels(col, where)
    assert col.query(np.ones(DIM), k=5, where=where).ids[0].tolist()[:1] == [5001]


def test_a_bad_filter_is_refused_every_time(col):
    for _ in range(2):  # a refused filter is not cached
        with pytest.raises(InvalidFilterError):
            col.query(np.ones(DIM), k=3, where={"a": {"$regex": "x"}})


@pytest.mark.parametrize("index", ["flat", "hnsw", "ivf"])
@pytest.mark.parametrize("where", [{"b": "x"}, {"p": {"$lt": 2}}, {"a": {"$ne": "x"}}, {"a": "y"}], ids=repr)
def test_every_index_returns_only_allowed_points_and_finds_the_nearest(col, index, where):
    if index != "flat":
        col.create_index(index, **({"nlist": 16} if index == "ivf" else {}))
    col.delete(list(range(1, 300, 3)))  # deleted points are never returned, filter or not
    q = np.random.default_rng(2).standard_normal((8, DIM)).astype(np.float32)
    allowed = sql_labels(col, where)
    exact = col.query(q, k=10, where=where, index="flat")
    hits = recall = 0
    for i in range(len(q)):
        one = col.query(q[i], k=10, where=where, index=index, **({"nprobe": 16} if index == "ivf" else {}))
        ids = [x for x in one.ids[0].tolist() if x is not None]
        assert all(col.has(ids)) and all(metadata_matches(col, x, where) for x in ids)
        assert len(ids) == min(10, len(allowed))
        hits += len(set(ids) & set(exact.ids[i].tolist()))
        recall += min(10, len(allowed))
    assert hits / recall >= 0.95


def metadata_matches(col, ext_id, where) -> bool:
    label = int(col._store.conn.execute("SELECT label FROM points WHERE ext_id = ?", (ext_id,)).fetchone()[0])
    return label in sql_labels(col, where)


@pytest.mark.parametrize("index", ["ivfpq", "lsh", "rp_forest", "sq8"])
def test_the_other_indexes_take_the_allowed_rows_too(col, index):
    params = {"ivfpq": {"nlist": 16, "m": 4}}.get(index, {})
    col.create_index(index, **params)
    where = {"b": "x"}
    q = np.random.default_rng(4).standard_normal((3, DIM)).astype(np.float32)
    allowed = sql_labels(col, where)
    for result in (col.query(q, k=10, where=where), col.query(q[0], k=10, where=where)):
        for row in result.ids:
            ids = [x for x in row.tolist() if x is not None]
            assert len(ids) == 10 and all(metadata_matches(col, x, where) for x in ids)
    assert len(allowed) > 10
