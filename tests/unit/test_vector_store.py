"""One float32 copy per collection: the vector log, mapped by the flat index; every index reads its rows, saves none
of its own, follows them when they are renumbered (IVF order, compaction), and reopens without a rebuild."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from lookalike import Database
from lookalike.storage.vector_log import mapping_of
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


def mapped(array: np.ndarray) -> bool:
    """Whether ``array`` is a view of a memory mapping (the store hands out plain views of its mapped files)."""
    return mapping_of(array) is not None


def test_the_store_hands_out_plain_arrays_over_its_mapped_files(col):
    vectors, labels = col._points.flat.vectors, col._points.flat.labels
    assert type(vectors) is np.ndarray and type(labels) is np.ndarray  # slicing them runs no Python code
    assert mapped(vectors) and mapped(labels)


def queries(n=40):
    return clustered(n, DIM, 12, seed=9)


def exact_ids(col, q, k=10):
    return col.query(q, k, index="flat").ids


def test_indexes_share_the_flat_index_rows_and_save_no_vectors(col):
    for kind, params in (("hnsw", {"M": 8}), ("ivf", {"nlist": 16}), ("ivfpq", {"nlist": 16, "m": 4})):
        col.create_index(kind, **params)
    flat = col._points.flat
    assert flat.owns_vectors and mapped(flat.vectors)  # the log's rows
    for kind in ("hnsw", "ivf", "ivfpq"):
        index = col._indexes[kind].index
        assert not index.owns_vectors and index.source is flat
        assert np.shares_memory(index.vectors, flat.vectors)
        files = {f.name for f in (col.directory / "derived" / kind).iterdir()}
        assert "vectors.npy" not in files and "labels.npy" not in files
    assert not (col.directory / "derived" / "flat").exists()  # the log is the only copy
    on_disk = sum(p.stat().st_blocks * 512 for p in (col.directory / "vectors").iterdir())
    assert on_disk < 1.2 * N * DIM * 4 + 64 * 1024  # vectors + labels + norms, once


def test_building_ivf_orders_the_store_by_list_and_other_answers_do_not_change(col):
    q = queries()
    col.create_index("hnsw", M=8, ef_construction=64)
    before = col.query(q, 10, index="hnsw", ef=50)
    generation = col._points.flat.generation
    col.create_index("ivf", nlist=16)
    assert col._points.flat.generation != generation  # the store was renumbered...
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
    col.release()  # as a crash: nothing saved on the way out
    with caplog.at_level(logging.INFO, logger="lookalike.collection"):
        db = Database(tmp_path / "db")
        again = db.get_collection("c")
        got = {kind: again.query(q, 10, index=kind).ids.tolist() for kind in want}
    assert got == want
    assert not [r for r in caplog.records if "rebuild" in r.getMessage()]
    flat = again._points.flat
    assert mapped(flat.vectors)  # not read
    db.close()


def test_reopened_indexes_are_mapped_from_their_files_and_still_take_writes(tmp_path, col):
    col.create_index("hnsw", M=8)
    col.release()
    files = col.directory / "derived" / "hnsw"
    saved = {f.name: f.read_bytes() for f in files.iterdir()}
    db = Database(tmp_path / "db")
    again = db.get_collection("c")
    again.query(queries(1), 10, index="hnsw")
    graph = again._indexes["hnsw"].index._graph()
    assert all(mapped(part) for part in graph)  # one copy in the page cache, shared by every serving process
    new = clustered(50, DIM, 3, seed=9)
    again.add([f"new{i}" for i in range(50)], new)  # the graph takes them: its arrays copied on first write
    again.delete(["p0", "p1"])
    found = again.query(new, 1, index="hnsw", ef=64).ids[:, 0].tolist()
    assert found == [f"new{i}" for i in range(50)]
    assert {f.name: f.read_bytes() for f in files.iterdir()} == saved  # mapped read-only: the files untouched
    db.close()


def test_deletes_then_compaction_renumber_every_index_and_answers_stay_exact(tmp_path, col):
    q = queries()
    col.create_index("ivf", nlist=16)
    col.create_index("hnsw", M=8, default=False)
    col.create_index("ivfpq", nlist=16, m=4, default=False)
    generation = col._points.flat.generation
    col.delete([f"p{i}" for i in range(0, N, 3)] + [f"p{i}" for i in range(1, N, 3)])  # 2/3 gone
    assert col._points.flat.generation != generation and col._points.flat.n_deleted == 0  # compacted
    for kind in ("ivf", "hnsw", "ivfpq"):
        index = col._indexes[kind].index
        assert index.source is col._points.flat and len(index) == N // 3
    truth = exact_ids(col, q)
    assert col.query(q, 10, index="ivf", nprobe=16).ids.tolist() == truth.tolist()
    assert col.query(q, 10, index="ivfpq", nprobe=16, rerank=100).ids.tolist() == truth.tolist()
    hnsw = col.query(q, 10, index="hnsw", ef=200).ids
    assert np.mean([len(set(a) & set(b)) for a, b in zip(hnsw.tolist(), truth.tolist())]) >= 9.5
    assert all(str(i)[1:].isdigit() and int(str(i)[1:]) % 3 == 2 for i in truth.ravel())
    col.add(["new"], clustered(1, DIM, 12, seed=9)[:1])  # writes after compaction reach every index
    for kind in ("ivf", "hnsw", "ivfpq"):
        assert col.query(clustered(1, DIM, 12, seed=9)[:1], 1, index=kind).ids[0, 0] == "new"


def test_corrupt_index_files_are_rebuilt_and_a_corrupt_log_is_found_by_check(tmp_path, col, caplog):
    from lookalike.database import check
    from lookalike.errors import StorageFormatError

    q = queries()
    col.create_index("ivf", nlist=16)
    want = col.query(q, 10, nprobe=16).ids.tolist()
    col.release()
    lists = next((col.directory / "derived" / "ivf").glob("*.npy"))
    with open(lists, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\xff" * 64)  # a checksum error in an index file: a cache, rebuilt
    with caplog.at_level(logging.WARNING, logger="lookalike.collection"):
        db = Database(tmp_path / "db")
        got = db.get_collection("c").query(q, 10, nprobe=16).ids.tolist()
    assert got == want
    assert any("unusable" in r.getMessage() for r in caplog.records)
    db.close()
    assert check(tmp_path / "db")["c"]["rows"] == N
    log = next((col.directory / "vectors").glob("*.f32"))
    with open(log, "r+b") as fh:
        fh.seek(4 * DIM * 7)
        fh.write(b"\x01" * 8)  # a flipped row in the log: check says which rows
    with pytest.raises(StorageFormatError, match="corrupt"):
        check(tmp_path / "db")


def test_a_file_cut_while_it_is_mapped_is_measured_again(tmp_path, monkeypatch):
    """Another process's first append cuts the files back to their committed rows; a reader that read the
    sizes just before maps them again instead of failing (a race two writer processes met)."""
    from lookalike.storage.vector_log import VectorLog

    log = VectorLog(tmp_path, "g1", 4, with_norms=False)
    log.create()
    log.append(0, np.ones((10, 4), np.float32), np.arange(10, dtype=np.int64), None)
    real = VectorLog.capacity_rows
    sizes = iter([50_000])  # the sizes read before another process cut the files: far past their end now
    monkeypatch.setattr(VectorLog, "capacity_rows", lambda self: next(sizes, None) or real(self))
    view = log.rows(10)
    assert view.labels.tolist() == list(range(10)) and np.all(view.vectors == 1)
