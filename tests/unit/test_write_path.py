"""Writes never wait for an index: new points are found at once through an exact scan of the unindexed tail,
merged with the index's answer; the indexer (optimize, a background thread, or the writer past tail_limit) folds
them in; searches run beside writes, every answer checked against exact search."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import lookalike
from lookalike.tail import tail_limit
from tests.conftest import clustered

DIM = 16


def make(db, kind, n=2000, **params):
    col = db.create_collection(kind, dim=DIM, metric="cosine")
    col.add([f"p{i}" for i in range(n)], clustered(n, DIM, 10, seed=1), [{"half": i % 2} for i in range(n)])
    col.create_index(kind, **params)
    return col


INDEXES = [("hnsw", {"M": 8}, {"ef": 64}), ("ivf", {"nlist": 16}, {"nprobe": 4}),
           ("ivfpq", {"nlist": 16, "m": 4}, {"nprobe": 4})]


@pytest.mark.parametrize("kind,params,query", INDEXES)
def test_new_points_are_found_at_once_before_the_index_has_them(db, kind, params, query):
    col = make(db, kind, **params)
    fresh = clustered(300, DIM, 10, seed=7) * 3.0  # far from everything else
    col.add([f"n{i}" for i in range(300)], fresh, [{"half": i % 2} for i in range(300)])
    assert col.unindexed() == {kind: 300}
    hits = col.query(fresh[:20], k=1, **query)
    assert hits.ids[:, 0].tolist() == [f"n{i}" for i in range(20)]
    filtered = col.query(fresh[:20], k=1, where={"half": 1}, **query)
    assert all(int(i[1:]) % 2 == 1 for i in filtered.ids[:, 0])
    col.upsert(["n0"], -fresh[:1])  # a replaced and a deleted tail point are skipped, in the tail and the index
    col.delete(["n1", "p0"])
    again = col.query(fresh[:2], k=3, **query).ids.tolist()
    assert "n1" not in sum(again, []) and again[0][0] != "n0"
    assert col.query(-fresh[0], k=1, **query).ids[0, 0] == "n0"
    assert col.optimize() == {kind: 300 + 1}
    assert col.unindexed() == {kind: 0}
    assert col.query(fresh[2:20], k=1, **query).ids[:, 0].tolist() == [f"n{i}" for i in range(2, 20)]


def test_the_tail_answer_is_exact_and_merges_with_the_index(db):
    col = make(db, "hnsw", M=8)
    col.add([f"n{i}" for i in range(500)], clustered(500, DIM, 10, seed=3))
    q = clustered(30, DIM, 10, seed=4)
    approx = col.query(q, k=10, index="hnsw", ef=200, with_recall=True)
    assert approx.recall.mean() >= 0.97  # the tail part is exact, the graph part nearly so
    assert any(str(i).startswith("n") for i in approx.ids.ravel()) and any(str(i).startswith("p")
                                                                           for i in approx.ids.ravel())


def test_a_tail_past_its_limit_is_indexed_by_the_writer(db):
    col = db.create_collection("big", dim=DIM)
    col.add(["seed"], np.ones((1, DIM), np.float32))
    col.create_index("ivf", nlist=4)
    limit = tail_limit(DIM)
    col.add([f"n{i}" for i in range(limit + 100)], clustered(limit + 100, DIM, 5, seed=2))
    assert col.unindexed()["ivf"] <= limit
    col.add(["one more"], np.ones((1, DIM), np.float32))
    assert col.unindexed()["ivf"] <= limit


def test_the_background_indexer_catches_up_and_saves(tmp_path):
    db = lookalike.Database(tmp_path / "db")
    col = make(db, "hnsw", M=8)
    col.start_indexing()
    for b in range(5):
        col.add([f"b{b}-{i}" for i in range(200)], clustered(200, DIM, 10, seed=10 + b))
    deadline = time.time() + 60
    while col.unindexed()["hnsw"] and time.time() < deadline:
        time.sleep(0.05)
    assert col.unindexed() == {"hnsw": 0}
    deadline = time.time() + 30
    manifest = tmp_path / "db" / "collections" / "hnsw" / "derived" / "hnsw" / "manifest.json"
    import json

    while json.loads(manifest.read_text())["n_rows"] < 3000 and time.time() < deadline:
        time.sleep(0.05)
    assert json.loads(manifest.read_text())["n_rows"] == 3000  # saved off the request path
    db.close()
    col = lookalike.Database(tmp_path / "db").get_collection("hnsw")
    assert col.query(clustered(1, DIM, 10, seed=14), k=1, index="hnsw").ids[0, 0] is not None
    assert col.unindexed() == {"hnsw": 0}


def test_searches_run_beside_writes_and_every_answer_is_checked(tmp_path):
    """Four threads search (by a point's own vector, which must come first, and against exact search) while one
    thread writes batches and the background indexer runs."""
    db = lookalike.Database(tmp_path / "db")
    col = make(db, "hnsw", n=1000, M=8, ef_construction=64)
    col.start_indexing()
    written: list[tuple[str, np.ndarray]] = []  # acknowledged points, appended after add() returns
    deleted: set[str] = set()  # marked before the delete starts: a search may run beside it
    errors: list[str] = []
    answered = []
    done = threading.Event()

    def writer():
        for b in range(30):
            x = clustered(100, DIM, 10, seed=100 + b) + 0.01 * b
            ids = [f"w{b}-{i}" for i in range(100)]
            col.add(ids, x)
            written.extend(zip(ids, x))
            if b % 10 == 9:
                deleted.update(ids[:5])
                col.delete(ids[:5])
        done.set()

    def searcher(seed):
        rng = np.random.default_rng(seed)
        count = 0
        while not done.is_set() or count < 30:  # at least 30 searches each, however fast the writer was
            if not written:
                time.sleep(0.001)
                continue
            ident, vector = written[int(rng.integers(len(written)))]
            try:
                got = col.query(vector, k=5, index="hnsw", ef=64, with_recall=True)
                if ident not in deleted and got.ids[0, 0] != ident and got.distances[0, 0] > 1e-5:
                    errors.append(f"{ident} not found first: {got.ids[0].tolist()}")
                if got.recall[0] < 0.6:
                    errors.append(f"recall {got.recall[0]} against exact search")
                answered.append(1)
                count += 1
            except Exception as exc:  # noqa: BLE001 - any error in a thread is a failure
                errors.append(repr(exc))
                return

    threads = [threading.Thread(target=searcher, args=(s,)) for s in range(4)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]
    assert len(answered) >= 120
    gone = [vector for ident, vector in written if ident in deleted]
    assert not deleted & set(col.query(np.array(gone), k=3, index="hnsw", ef=64).ids.ravel().tolist())
    assert len(col) == 1000 + 30 * 100 - 3 * 5
    db.close()


def test_a_batch_read_back_wrong_is_refused_and_nothing_is_kept(db, monkeypatch):
    import os

    from lookalike.errors import StorageFormatError

    col = db.create_collection("verified", dim=4, metric="l2")
    col.add(["a"], np.ones((1, 4), np.float32))
    real = os.pread

    def flipped(fd, n, offset):
        data = real(fd, n, offset)
        return bytes([data[0] ^ 0xFF]) + data[1:]

    monkeypatch.setattr(os, "pread", flipped)  # what the disk gives back differs from what was written
    with pytest.raises(StorageFormatError, match="read back"):
        col.add(["b"], np.full((1, 4), 2.0, np.float32))
    monkeypatch.undo()
    assert len(col) == 1 and col.has(["a", "b"]) == [True, False]
    col.add(["b"], np.full((1, 4), 2.0, np.float32))
    assert col.query(np.full(4, 2.0, np.float32), k=1).ids[0, 0] == "b"
    assert lookalike.database.check(col.directory.parent.parent)["verified"]["rows"] == 2


def test_peek_shows_the_first_points(db):
    col = db.create_collection("peeked", dim=3, metric="l2")
    assert col.peek().ids == []
    col.add(["a", "b", "c"], np.eye(3, dtype=np.float32), [{"n": 1}, {"n": 2}, None])
    first = col.peek(2)
    assert first.ids == ["a", "b"] and first.metadatas == [{"n": 1}, {"n": 2}]
    np.testing.assert_array_equal(first.vectors, np.eye(3, dtype=np.float32)[:2])
    with pytest.raises(lookalike.errors.InvalidParameterError):
        col.peek(0)
