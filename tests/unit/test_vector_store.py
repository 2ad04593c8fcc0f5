"""One float32 copy per collection: every index reads the flat index's rows (the vector store), saves none of
its own, follows it when its rows are renumbered (IVF order, compaction), and reopens without a rebuild."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from lookalike import Database
from tests.conftest import clustered

DIM = 16
N = 3000


@pytest.fixture
def col(tmp_path):
    db = Database(tmp_path / "db")
    col = db.create_collection("c", dim=DIM, metric="cosine")
    x = clustered(N, DIM, 12, seed=4)
    col.add([f"p{i}" for i in range(N)], x, [{"i": i} for i in range(N)])
    yield col
    db.close()


def queries(n=40):
    return clustered(n, DIM, 12, seed=9)


def exact_ids(col, q, k=10):
    return col.query(q, k, index="flat").ids


def test_indexes_share_the_flat_index_rows_and_save_no_vectors(col):
    for kind, params in (("hnsw", {"M": 8}), ("ivf", {"nlist": 16}), ("ivfpq", {"nlist": 16, "m": 4})):
        col.create_index(kind, **params)
    flat = col._flat.index
    assert flat.owns_vectors
    for kind in ("hnsw", "ivf", "ivfpq"):
        index = col._indexes[kind].index
        assert not index.owns_vectors and index.source is flat
        assert np.shares_memory(index.vectors, flat.vectors)
        files = {f.name for f in (col.directory / "derived" / kind).iterdir()}
        assert "vectors.npy" not in files and "labels.npy" not in files
    assert (col.directory / "derived" / "flat" / "vectors.npy").exists()


def test_building_ivf_orders_the_store_by_list_and_other_answers_do_not_change(col):
    q = queries()
    col.create_index("hnsw", M=8, ef_construction=64)
    before = col.query(q, 10, index="hnsw", ef=50)
    generation = col._flat.index.generation
    col.create_index("ivf", nlist=16)
    assert col._flat.index.generation != generation  # the store was renumbered...
    after = col.query(q, 10, index="hnsw", ef=50)
    assert after.ids.tolist() == before.ids.tolist()  # ...and the graph with it: the same answers
    np.testing.assert_allclose(after.distances, before.distances, rtol=1e-6)
    _, rows, _ = col._indexes["ivf"].index._lists.packed()
    np.testing.assert_array_equal(rows, np.arange(N))  # list after list, consecutive rows
    exhaustive = col.query(q, 10, index="ivf", nprobe=16)
    assert exhaustive.ids.tolist() == exact_ids(col, q).tolist()


def test_reopening_loads_every_index_beside_the_mapped_store_without_rebuilding(tmp_path, col, caplog):
    q = queries()
    col.create_index("ivf", nlist=16)
    col.create_index("ivfpq", nlist=16, m=4, default=False)
    col.create_index("hnsw", M=8, default=False)
    want = {kind: col.query(q, 10, index=kind).ids.tolist() for kind in ("flat", "ivf", "ivfpq", "hnsw")}
    col._store.close()
    with caplog.at_level(logging.INFO, logger="lookalike.collection"):
        db = Database(tmp_path / "db")
        again = db.get_collection("c")
        got = {kind: again.query(q, 10, index=kind).ids.tolist() for kind in want}
    assert got == want
    assert not [r for r in caplog.records if "rebuild" in r.getMessage()]
    flat = again._flat.index
    assert isinstance(flat.vectors, np.memmap)  # mapped, not read
    db.close()


def test_deletes_then_compaction_renumber_every_index_and_answers_stay_exact(tmp_path, col):
    q = queries()
    col.create_index("ivf", nlist=16)
    col.create_index("hnsw", M=8, default=False)
    col.create_index("ivfpq", nlist=16, m=4, default=False)
    generation = col._flat.index.generation
    col.delete([f"p{i}" for i in range(0, N, 3)] + [f"p{i}" for i in range(1, N, 3)])  # 2/3 gone
    assert col._flat.index.generation != generation and col._flat.index.n_deleted == 0  # compacted
    for kind in ("ivf", "hnsw", "ivfpq"):
        index = col._indexes[kind].index
        assert index.source is col._flat.index and len(index) == N // 3
    truth = exact_ids(col, q)
    assert col.query(q, 10, index="ivf", nprobe=16).ids.tolist() == truth.tolist()
    assert col.query(q, 10, index="ivfpq", nprobe=16, rerank=100).ids.tolist() == truth.tolist()
    hnsw = col.query(q, 10, index="hnsw", ef=200).ids
    assert np.mean([len(set(a) & set(b)) for a, b in zip(hnsw.tolist(), truth.tolist())]) >= 9.5
    assert all(str(i)[1:].isdigit() and int(str(i)[1:]) % 3 == 2 for i in truth.ravel())
    col.add(["new"], clustered(1, DIM, 12, seed=9)[:1])  # writes after compaction reach every index
    for kind in ("ivf", "hnsw", "ivfpq"):
        assert col.query(clustered(1, DIM, 12, seed=9)[:1], 1, index=kind).ids[0, 0] == "new"


def test_a_corrupt_store_is_rebuilt_from_sqlite_and_the_indexes_with_it(tmp_path, col, caplog):
    q = queries()
    col.create_index("ivf", nlist=16)
    want = col.query(q, 10, nprobe=16).ids.tolist()
    col._store.close()
    vectors = tmp_path / "db" / "c" / "derived" / "flat" / "vectors.npy"
    if not vectors.exists():
        vectors = next((tmp_path / "db").rglob("derived/flat/vectors.npy"))
    with open(vectors, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\xff" * 64)  # a checksum error (the file is small enough to be checked)
    with caplog.at_level(logging.WARNING, logger="lookalike.collection"):
        db = Database(tmp_path / "db")
        got = db.get_collection("c").query(q, 10, nprobe=16).ids.tolist()
    assert got == want
    assert any("unusable" in r.getMessage() for r in caplog.records)
    db.close()
