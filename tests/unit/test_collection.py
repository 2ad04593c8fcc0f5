"""Collection and Database: the API, filters, bad input (each case: a typed error and nothing written)."""

from __future__ import annotations

import numpy as np
import pytest

import lookalike
from lookalike.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    DimensionMismatchError,
    DuplicateIdError,
    EmptyBatchError,
    IdNotFoundError,
    IndexNotBuiltError,
    InvalidFilterError,
    InvalidIdError,
    InvalidInputError,
    InvalidKError,
    InvalidNameError,
    InvalidParameterError,
    NonFiniteVectorError,
    StorageFormatError,
    UnknownIndexTypeError,
    UnknownMetricError,
    ZeroVectorError,
)
from tests.conftest import clustered

DIM = 12


@pytest.fixture
def col(db):
    c = db.create_collection("products", dim=DIM, metric="cosine")
    data = clustered(200, DIM, 5, seed=0)
    c.add([f"p{i}" for i in range(200)], data,
          [{"colour": ["white", "black", "red"][i % 3], "price": i, "sale": i % 2 == 0} for i in range(200)])
    return c


def snapshot(col):
    return col._store.version(), len(col), sorted(map(str, col.ids()))


def test_database_lifecycle(db):
    a = db.create_collection("a", dim=4)
    db.create_collection("b", dim=8, metric="l2")
    assert db.list_collections() == ["a", "b"]
    assert db.get_collection("a") is a and a.metric == "cosine"
    with pytest.raises(CollectionExistsError):
        db.create_collection("a", dim=4)
    assert db.get_or_create_collection("a", dim=4) is a
    db.drop_collection("a")
    assert db.list_collections() == ["b"]
    with pytest.raises(CollectionNotFoundError):
        db.get_collection("a")
    with pytest.raises(KeyError):  # typed errors are also the built-in a Python user expects
        db.get_collection("nope")


@pytest.mark.parametrize("name", ["", "a/b", "..", ".hidden", "a\x00b", "x" * 10_000, 5, "sp ace"])
def test_bad_collection_names(db, name):
    with pytest.raises(InvalidNameError):
        db.create_collection(name, dim=4)
    assert db.list_collections() == []


def test_bad_metric_and_dim(db):
    with pytest.raises(UnknownMetricError):
        db.create_collection("x", dim=4, metric="hamming")
    with pytest.raises(InvalidParameterError):
        db.create_collection("x", dim=0)
    assert db.list_collections() == []


def test_add_get_query(col):
    assert len(col) == 200
    got = col.get(["p3", "p1"])
    assert got.ids == ["p3", "p1"] and got.vectors.shape == (2, DIM)
    assert got.metadatas[0] == {"colour": "white", "price": 3, "sale": False}
    result = col.query(got.vectors, k=5)
    assert result.ids.shape == (2, 5) and result.ids[0, 0] == "p3" and result.ids[1, 0] == "p1"
    assert result.similarities[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert result.metadatas[0][0]["price"] == 3
    hits = result.hits(0)
    assert hits[0]["id"] == "p3" and "similarity" in hits[0]


def test_int_and_str_ids_are_distinct(db):
    c = db.create_collection("mixed", dim=2, metric="l2")
    c.add([1, "1"], [[0, 0], [5, 5]])
    assert c.get([1]).vectors.tolist() == [[0, 0]]
    assert c.get(["1"]).vectors.tolist() == [[5, 5]]
    assert c.query([0, 0], k=1).ids[0, 0] == 1
    with pytest.raises(IdNotFoundError):
        c.get([2])


def test_upsert_replaces_and_delete_never_comes_back(col):
    new = np.ones(DIM, dtype=np.float32)
    col.upsert(["p0", "new"], np.stack([new, -new]), [{"colour": "green"}, None])
    assert len(col) == 201
    assert col.get(["p0"]).metadatas == [{"colour": "green"}]
    np.testing.assert_allclose(col.get(["p0"]).vectors[0], new)
    assert col.query(new, k=1).ids[0, 0] == "p0"
    assert col.delete(["p0", "p1"]) == 2
    result = col.query(col.get_vectors(), k=20)
    assert not np.isin(result.ids, ["p0", "p1"]).any()
    with pytest.raises(IdNotFoundError):
        col.get(["p0"])


def test_filters(col):
    q = col.get(["p10"]).vectors
    for where, check in [
        ({"colour": "red"}, lambda m: m["colour"] == "red"),
        ({"price": {"$gte": 100, "$lt": 150}}, lambda m: 100 <= m["price"] < 150),
        ({"colour": {"$in": ["white", "black"]}}, lambda m: m["colour"] in ("white", "black")),
        ({"colour": {"$nin": ["white"]}}, lambda m: m["colour"] != "white"),
        ({"colour": {"$ne": "red"}}, lambda m: m["colour"] != "red"),
        ({"$and": [{"colour": "red"}, {"price": {"$gt": 150}}]}, lambda m: m["colour"] == "red" and m["price"] > 150),
        ({"$or": [{"colour": "red"}, {"price": {"$lte": 5}}]}, lambda m: m["colour"] == "red" or m["price"] <= 5),
        ({"sale": True}, lambda m: m["sale"] is True),
    ]:
        result = col.query(q, k=10, where=where)
        metas = [m for m in result.metadatas[0] if m is not None]
        assert len(metas) == 10, where  # a filtered query still returns k hits when k matching points exist
        assert all(check(m) for m in metas), where


def test_filter_with_few_matches_returns_them_all(col):
    result = col.query(np.ones(DIM), k=10, where={"price": {"$in": [3, 4, 5]}})
    assert sorted(result.ids[0][:3]) == ["p3", "p4", "p5"] and list(result.ids[0][3:]) == [None] * 7


@pytest.mark.parametrize("where", [
    {"$xor": []}, {"a": {"$regex": "x"}}, {"a": {"$gt": "x"}}, {"a": []}, [], "colour", {"a": {"$in": []}},
    {"a\"); DROP TABLE points; --": 1}, {"$and": {"a": 1}}, {"a": {"$in": [[1]]}},
])
def test_bad_filters(col, where):
    before = snapshot(col)
    with pytest.raises(InvalidFilterError):
        col.query(np.ones(DIM), k=3, where=where)
    with pytest.raises(InvalidFilterError):
        col.delete(where=where)
    assert snapshot(col) == before


def test_deeply_nested_filter_is_refused(col):
    where: dict = {"colour": "red"}
    for _ in range(100):
        where = {"$and": [where]}
    with pytest.raises(InvalidFilterError):
        col.query(np.ones(DIM), k=3, where=where)


def test_sql_injection_in_filter_values_is_inert(col):
    result = col.query(np.ones(DIM), k=3, where={"colour": "red' OR '1'='1"})
    assert (result.ids == None).all()  # noqa: E711  (no match, and nothing else happened)
    assert len(col) == 200


@pytest.mark.parametrize("call, error", [
    (lambda c: c.add(["x"], np.ones((1, DIM + 1))), DimensionMismatchError),
    (lambda c: c.add(["x"], np.full((1, DIM), np.nan)), NonFiniteVectorError),
    (lambda c: c.add(["x"], np.full((1, DIM), np.inf)), NonFiniteVectorError),
    (lambda c: c.add([], np.empty((0, DIM))), EmptyBatchError),
    (lambda c: c.add(["x", "x"], np.ones((2, DIM))), DuplicateIdError),
    (lambda c: c.add(["p1"], np.ones((1, DIM))), DuplicateIdError),
    (lambda c: c.add(["x", "y"], np.ones((1, DIM))), InvalidInputError),
    (lambda c: c.add(["x"], np.zeros((1, DIM))), ZeroVectorError),
    (lambda c: c.add([None], np.ones((1, DIM))), InvalidIdError),
    (lambda c: c.add([True], np.ones((1, DIM))), InvalidIdError),
    (lambda c: c.add([1.5], np.ones((1, DIM))), InvalidIdError),
    (lambda c: c.add([""], np.ones((1, DIM))), InvalidIdError),
    (lambda c: c.add(["a\x00b"], np.ones((1, DIM))), InvalidIdError),
    (lambda c: c.add([2**70], np.ones((1, DIM))), InvalidIdError),
    (lambda c: c.add(["x"], np.ones((1, DIM)), [{"v": float("nan")}]), InvalidInputError),
    (lambda c: c.add(["x"], np.ones((1, DIM)), [{"v": object()}]), InvalidInputError),
    (lambda c: c.add(["x"], np.ones((1, DIM)), [{"big": "x" * 100_000}]), InvalidInputError),
    (lambda c: c.add(["x"], np.ones((1, DIM)), ["not a dict"]), InvalidInputError),
    (lambda c: c.add(["x"], [["a"] * DIM]), InvalidInputError),
    (lambda c: c.upsert(["x"], np.ones((1, DIM + 1))), DimensionMismatchError),
    (lambda c: c.delete(["p1", "nope"]), IdNotFoundError),
    (lambda c: c.get(["nope"]), IdNotFoundError),
    (lambda c: c.query(np.ones(DIM), k=0), InvalidKError),
    (lambda c: c.query(np.ones(DIM), k=-1), InvalidKError),
    (lambda c: c.query(np.ones(DIM), k="10"), InvalidKError),
    (lambda c: c.query(np.ones(DIM), k=10**9), InvalidKError),
    (lambda c: c.query(np.ones(DIM + 2), k=3), DimensionMismatchError),
    (lambda c: c.query(np.empty((0, DIM)), k=3), EmptyBatchError),
    (lambda c: c.query(np.ones(DIM), k=3, index="hnsw_typo"), UnknownIndexTypeError),
    (lambda c: c.query(np.ones(DIM), k=3, index="flat", nprobe=3), InvalidParameterError),
    (lambda c: c.create_index("nope"), UnknownIndexTypeError),
])
def test_bad_input_raises_and_writes_nothing(col, call, error):
    before = snapshot(col)
    with pytest.raises(error):
        call(col)
    assert snapshot(col) == before
    assert col.get(["p1"]).metadatas[0]["price"] == 1  # p1 untouched


def test_query_of_index_not_built(col):
    pytest.importorskip("lookalike.index.ivf")
    with pytest.raises(IndexNotBuiltError):
        col.query(np.ones(DIM), k=3, index="ivf")


def test_with_recall_flags_true_neighbours(col):
    result = col.query(col.get(["p1", "p2"]).vectors, k=5, with_recall=True)
    assert result.recall.tolist() == [1.0, 1.0] and result.true_knn.all()
    assert "exact_ms" in result.stats


def test_empty_collection_answers_padded(db):
    c = db.create_collection("empty", dim=3)
    result = c.query([1, 2, 3], k=4, with_recall=True)
    assert (result.ids == None).all() and np.isinf(result.distances).all()  # noqa: E711
    assert result.recall.tolist() == [1.0]


def test_not_our_directory(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file.txt").write_text("hello")
    with pytest.raises(StorageFormatError):
        lookalike.Database(tmp_path / "other")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "lookalike.json").write_text("{broken")
    with pytest.raises(StorageFormatError):
        lookalike.Database(tmp_path / "bad")


def test_corrupt_sqlite_file(tmp_path):
    db = lookalike.Database(tmp_path / "db")
    db.create_collection("c", dim=3).add([1], [[1, 2, 3]])
    db.close()
    sqlite = tmp_path / "db" / "collections" / "c" / "collection.sqlite"
    for suffix in ("-wal", "-shm"):
        (sqlite.parent / (sqlite.name + suffix)).unlink(missing_ok=True)
    sqlite.write_bytes(b"this is not an sqlite file at all" * 100)
    with pytest.raises(StorageFormatError):
        lookalike.Database(tmp_path / "db").get_collection("c")


def test_metadata_index_is_used_and_gives_the_same_answers(col):
    q = np.ones(DIM)
    where = {"colour": "red", "price": {"$gte": 10}}
    before = col.query(q, k=10, where=where)
    col.create_metadata_index("colour")
    col.create_metadata_index("colour")  # idempotent
    col.create_metadata_index("it's")  # a quote in a key is escaped, not executed
    plan = col._store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT label FROM points WHERE " + __import__(
            "lookalike.storage.filters", fromlist=["compile_where"]).compile_where({"colour": "red"})[0], ["red"]
    ).fetchall()
    assert any("meta_colour" in str(row) for row in plan)
    after = col.query(q, k=10, where=where)
    np.testing.assert_array_equal(before.ids, after.ids)
    assert len(col.info()["metadata_indexes"]) == 2
