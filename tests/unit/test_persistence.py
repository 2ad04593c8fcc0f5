"""Reopen, derived files, and two processes: SQLite is the truth, index files are caches."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lookalike
from tests.conftest import clustered

pytestmark = pytest.mark.persistence
DIM = 8


def fill(path, n=300, index=None, **params):
    db = lookalike.Database(path)
    col = db.create_collection("c", dim=DIM, metric="l2")
    col.add(list(range(n)), clustered(n, DIM, 4, seed=0), [{"i": i} for i in range(n)])
    if index:
        col.create_index(index, **params)
    return db, col


def test_reopen_gives_identical_results(tmp_path):
    db, col = fill(tmp_path / "db")
    col.delete([0, 1, 2])
    col.upsert([5], np.zeros((1, DIM)))
    queries = clustered(20, DIM, 4, seed=1)
    before = col.query(queries, k=7)
    db.close()
    col2 = lookalike.Database(tmp_path / "db").get_collection("c")
    after = col2.query(queries, k=7)
    np.testing.assert_array_equal(before.ids, after.ids)
    np.testing.assert_array_equal(before.distances, after.distances)
    assert len(col2) == 297


def test_stale_derived_files_catch_up_from_the_change_log(tmp_path):
    db, col = fill(tmp_path / "db")
    db.close()  # derived/flat saved at this version
    db = lookalike.Database(tmp_path / "db")
    col = db.get_collection("c")
    col.delete([10, 11])
    col.add([1000], np.full((1, DIM), 9.0))
    col._store.close()  # a crash: no flush, derived files stay at the old version
    col = lookalike.Database(tmp_path / "db").get_collection("c")
    result = col.query(np.full(DIM, 9.0), k=1)
    assert result.ids[0, 0] == 1000
    everything = col.query(col.get_vectors(), k=5)
    assert not np.isin(everything.ids, [10, 11]).any(), "deleted points never come back"


def test_corrupt_derived_files_are_rebuilt_not_used(tmp_path):
    db, col = fill(tmp_path / "db", index="ivf", nlist=4)
    queries = clustered(5, DIM, 4, seed=2)
    want = col.query(queries, k=5, nprobe=4)
    db.close()
    vectors = tmp_path / "db" / "collections" / "c" / "derived" / "ivf" / "live.npy"
    assert vectors.exists()
    raw = bytearray(vectors.read_bytes())
    raw[-40:] = b"\xff" * 40  # garbage in the data, same size
    vectors.write_bytes(bytes(raw))
    col = lookalike.Database(tmp_path / "db").get_collection("c")
    np.testing.assert_array_equal(col.query(queries, k=5, nprobe=4).ids, want.ids)
    manifest = vectors.parent / "manifest.json"
    manifest.write_text("{truncated")
    col = lookalike.Database(tmp_path / "db").get_collection("c")
    np.testing.assert_array_equal(col.query(queries, k=5, nprobe=4).ids, want.ids)


def test_derived_files_of_another_collection_are_not_used(tmp_path):
    db, col = fill(tmp_path / "db", index="hnsw", M=8)
    db.close()
    derived = tmp_path / "db" / "collections" / "c" / "derived" / "hnsw"
    db = lookalike.Database(tmp_path / "db")
    db.drop_collection("c")
    col = db.create_collection("c", dim=DIM, metric="l2")
    col.add([1], np.ones((1, DIM)))
    col.create_index("hnsw", M=8)
    db.close()
    assert json.loads((derived / "manifest.json").read_text())["count"] == 1


READER = textwrap.dedent(
    """
    import sys, time, numpy as np, lookalike
    col = lookalike.Database(sys.argv[1]).get_collection("c")
    seen = []
    deadline = time.time() + 60
    while time.time() < deadline:
        n = len(col)
        result = col.query(np.full(8, 100.0), k=1)
        # a consistent snapshot: the count only grows, in whole batches of 50
        assert n % 50 == 0, n
        seen.append(n)
        if result.ids[0, 0] == "last":
            break
        time.sleep(0.01)
    print(seen[0], seen[-1], len(set(seen)))
    """
)


def test_readers_in_other_processes_see_new_writes(tmp_path):
    db = lookalike.Database(tmp_path / "db")
    col = db.create_collection("c", dim=DIM, metric="l2")
    col.add([f"a{i}" for i in range(50)], np.random.default_rng(0).normal(size=(50, DIM)))
    readers = [
        subprocess.Popen([sys.executable, "-c", READER, str(tmp_path / "db")], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for batch in range(1, 20):
        col.add([f"b{batch}-{i}" for i in range(50)], np.random.default_rng(batch).normal(size=(50, DIM)))
    col.add(["last"] + [f"z{i}" for i in range(49)], np.vstack([np.full((1, DIM), 100.0), np.zeros((49, DIM)) + 1]))
    for reader in readers:
        out, _ = reader.communicate(timeout=90)
        assert reader.returncode == 0
        first, last, distinct = map(int, out.split())
        assert last == 1050


WRITER = textwrap.dedent(
    """
    import sys, numpy as np, lookalike
    col = lookalike.Database(sys.argv[1]).get_collection("c")
    tag = sys.argv[2]
    for b in range(10):
        col.add([f"{tag}-{b}-{i}" for i in range(20)], np.random.default_rng(b).normal(size=(20, 8)))
    """
)


def test_two_writer_processes_serialise(tmp_path):
    db = lookalike.Database(tmp_path / "db")
    db.create_collection("c", dim=DIM, metric="l2")
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "db"), tag]) for tag in "xy"]
    for w in writers:
        assert w.wait(timeout=120) == 0
    col = db.get_collection("c")
    assert len(col) == 400
    assert len(col.query(np.ones(DIM), k=400).ids[0]) == 400
