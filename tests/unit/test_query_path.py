"""The collection's query path: the shared change token that says whether anything was written, queries checked
once (NaN and inf refused by whichever index answers), and metadata made when the caller first reads it."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

import lookalike
from lookalike.errors import NonFiniteVectorError
from lookalike.storage.change_token import ChangeToken
from lookalike.storage.sqlite import CHANGES_SUFFIX, CollectionStore
from lookalike.types import CollectionResult
from tests.conftest import clustered

DIM = 16


@pytest.fixture
def col(db):
    c = db.create_collection("items", dim=DIM, metric="cosine")
    c.add([f"p{i}" for i in range(300)], clustered(300, DIM, 6, seed=0),
          [{"group": i % 3, "name": f"item {i}"} for i in range(300)])
    return c


# --- the change token --------------------------------------------------------------------------------------------


def test_a_token_announced_through_one_mapping_is_read_through_another(tmp_path):
    path = tmp_path / "c.sqlite-changes"
    first, second = ChangeToken(path), ChangeToken(path)
    assert path.stat().st_size == 8 and first.read() == second.read() == 0  # a new file: all zero
    seen = {0}
    for _ in range(20):
        first.announce()
        assert second.read() == first.read() and second.read() not in seen  # a new value every time
        seen.add(second.read())
    first.close()
    second.close()
    with pytest.raises(ValueError):
        first.read()


def test_every_write_transaction_moves_the_stamp_of_every_connection(col):
    reader = CollectionStore(col._store.file)
    try:
        stamp = reader.change_stamp()
        col.add(["new"], clustered(1, DIM, 1, seed=5))
        committed = reader.change_stamp()
        assert committed != stamp
        with pytest.raises(RuntimeError):
            with col._writer().transaction():
                raise RuntimeError("rolled back")
        assert reader.change_stamp() != committed  # a rollback costs readers one needless look, never a miss
        assert (col._store.file.parent / (col._store.file.name + CHANGES_SUFFIX)).exists()
    finally:
        reader.close()


WRITER = """
import sys, numpy as np, lookalike
db = lookalike.Database(sys.argv[1])
col = db.get_collection("items")
col.add(["from-another-process"], np.full((1, {dim}), 7.0, dtype=np.float32), [{{"group": 9}}])
db.close()
"""


def test_a_write_by_another_process_is_found_by_the_next_query(col, db):
    probe = np.full((1, DIM), 7.0, dtype=np.float32)
    assert col.query(probe, k=1).ids[0, 0] != "from-another-process"  # caught up, stamp taken
    subprocess.run([sys.executable, "-c", WRITER.format(dim=DIM), str(db.path)], check=True)
    hit = col.query(probe, k=1)
    assert hit.ids[0, 0] == "from-another-process" and hit.metadatas[0][0] == {"group": 9}


# --- queries checked once ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", ["flat", "hnsw", "ivf", "ivfpq"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [None, {"group": 1}])
def test_a_nan_or_inf_query_is_refused_by_every_index(col, index, bad, where):
    if index == "hnsw":
        col.create_index("hnsw", M=8, default=False)
    elif index == "ivf":
        col.create_index("ivf", nlist=8, default=False)
    elif index == "ivfpq":
        col.create_index("ivfpq", nlist=8, m=4, default=False)
    col.add(["tail"], clustered(1, DIM, 1, seed=3))  # a point no index holds yet: the tail is searched too
    query = clustered(1, DIM, 1, seed=4)[0].astype(np.float32)
    query[3] = bad
    for shaped in (query, query[None, :], query.astype(np.float64)):
        with pytest.raises(NonFiniteVectorError):
            col.query(shaped, k=5, index=index, where=where)
    assert col.query(clustered(1, DIM, 1, seed=4), k=5, index=index, where=where).ids.shape == (1, 5)


# --- metadata made when first read -------------------------------------------------------------------------------


def test_metadata_read_later_is_each_hits_own_copy(col):
    q = clustered(4, DIM, 6, seed=1)
    result = col.query(q, k=5)
    assert isinstance(result, CollectionResult)
    stored = col.get(result.ids.ravel().tolist()).metadatas
    assert [m for row in result.metadatas for m in row] == stored
    result.metadatas[0][0]["group"] = "edited"  # the caller's copy: the next answer is untouched
    assert col.query(q, k=5).metadatas[0][0] == stored[0]
    assert result.hits(1)[0]["metadata"] == stored[5]


def test_metadata_is_read_after_the_database_closed_and_travels_when_pickled(tmp_path):
    with lookalike.Database(tmp_path / "db") as db:
        col = db.create_collection("c", dim=DIM)
        col.add([1, 2, 3], clustered(3, DIM, 1, seed=0), [{"n": 1}, {"n": 2}, None])
        result = col.query(clustered(1, DIM, 1, seed=0), k=3)
        pickled = pickle.dumps(col.query(clustered(1, DIM, 1, seed=0), k=3))
    assert sorted(result.metadatas[0], key=str) == sorted([{"n": 1}, {"n": 2}, None], key=str)
    assert pickle.loads(pickled).metadatas == result.metadatas


def test_a_hit_deleted_before_its_metadata_is_read_keeps_what_was_decoded_or_reads_none(col):
    q = clustered(1, DIM, 6, seed=2)
    seen = col.query(q, k=3)
    seen.metadatas  # noqa: B018  (decoded now)
    unseen = col.query(q, k=3)  # the same hits: already decoded for the first result
    fresh = col.query(clustered(1, DIM, 6, seed=9) * -1, k=3)
    col.delete([seen.ids[0, 0], fresh.ids[0, 0]])
    assert unseen.metadatas == seen.metadatas
    assert fresh.metadatas[0][0] is None and fresh.metadatas[0][1] is not None


def test_include_metadata_false_gives_none_per_hit(col):
    result = col.query(clustered(2, DIM, 6, seed=1), k=4, include_metadata=False)
    assert result.metadatas == [[None] * 4, [None] * 4]


def test_metadata_already_decoded_is_read_without_waiting_for_a_writer(col):
    import threading

    q = clustered(1, DIM, 6, seed=3)
    col.query(q, k=5).metadatas  # noqa: B018  (these hits' metadata decoded)
    later = col.query(q, k=5)
    holding, release = threading.Event(), threading.Event()

    def writer():
        with col._lock.exclusive():  # as a catch-up or an indexing step would
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    holding.wait(10)
    read = threading.Thread(target=lambda: later.metadatas)
    read.start()
    read.join(5)
    waited = read.is_alive()
    release.set()
    thread.join(10)
    read.join(10)
    assert not waited and later.metadatas[0][0] is not None


def test_query_now_answers_with_its_metadata_made_under_its_lock(col):
    result = col.query_now(clustered(1, DIM, 6, seed=4), k=3)
    assert type(result.__dict__["_metadatas"]) is list  # made already: the server reads it on its event loop


def test_the_default_index_is_the_committed_one_without_a_catch_up(col, db):
    assert col.default_index == "flat"
    with lookalike.Database(db.path) as other:  # another connection commits: this collection has not caught up
        other.get_collection("items").create_index("ivf", nlist=8)
    assert col.default_index == "ivf" and col._default_index == "flat"
    col.query(clustered(1, DIM, 6, seed=5), k=3)  # the catch-up
    assert col.default_index == col._default_index == "ivf"


# --- the short way of one plain query ------------------------------------------------------------------------------


def _short_ways_taken(monkeypatch, index) -> list:
    """The answers ``index.search_one`` gives from now on (None: it declined)."""
    answers = []
    search_one = index.search_one

    def counted(query, k, params):
        answers.append(search_one(query, k, params))
        return answers[-1]

    monkeypatch.setattr(index, "search_one", counted)
    return answers


def _general_paths_taken(monkeypatch, col) -> list:
    """One entry per query the collection answers by its general path from now on."""
    calls = []
    general = col._query_in_memory

    def counted(*args):
        calls.append(args)
        return general(*args)

    monkeypatch.setattr(col, "_query_in_memory", counted)
    return calls


@pytest.mark.parametrize("kind, params", [("hnsw", {"ef": 24}), ("ivf", {"nprobe": 3})])
def test_one_plain_query_takes_the_short_way_and_answers_as_the_general_path(col, monkeypatch, kind, params):
    col.create_index(kind, **({"M": 8} if kind == "hnsw" else {"nlist": 8}))
    general_paths = _general_paths_taken(monkeypatch, col)
    for seed in range(8):
        q = clustered(1, DIM, 6, seed=seed)[0].astype(np.float32)
        short = col.query(q, k=7, **params)
        general = col.query(q.astype(np.float64), k=7, **params)  # float64: converted, so the general path
        assert short.ids.tolist() == general.ids.tolist()
        assert np.allclose(short.distances, general.distances, atol=1e-6)
        assert np.allclose(short.similarities, general.similarities, atol=1e-6)
        assert short.metadatas == general.metadatas
        assert short.stats["index"] == general.stats["index"] == kind
        assert short.stats["params"] == general.stats["params"] == {**col._indexes[kind].index.query_defaults,
                                                                    **params}
    assert len(general_paths) == 8  # the float64 queries only


def test_the_short_way_uses_the_tuned_parameters_and_the_callers_win(col):
    col.create_index("hnsw", M=8)
    col.tune("hnsw", target_recall=0.9, k=5, sample=50)
    tuned = col.tuned_params("hnsw")["ef"]
    q = clustered(1, DIM, 6, seed=1)[0].astype(np.float32)
    assert col.query(q, k=5).stats["params"]["ef"] == tuned
    assert col.query(q, k=5, ef=tuned + 7).stats["params"]["ef"] == tuned + 7


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_points_the_index_does_not_hold_or_no_longer_holds_take_the_general_path(col, monkeypatch, kind):
    col.create_index(kind, **({"M": 8} if kind == "hnsw" else {"nlist": 8}))
    col.stop_indexing()  # the new point stays in the tail
    general_paths = _general_paths_taken(monkeypatch, col)
    new = np.full(DIM, 3.0, dtype=np.float32)
    new[0] = -9.0
    col.add(["new"], new[None, :])
    assert col.query(new, k=3).ids[0, 0] == "new"  # found in the tail, merged with the index's answer
    assert len(general_paths) == 1
    col.optimize(kind)  # the index catches up: the short way again
    taken = _short_ways_taken(monkeypatch, col._indexes[kind].index)
    assert col.query(new, k=3).ids[0, 0] == "new" and len(general_paths) == 1 and taken[0] is not None
    col.delete(["new"])
    assert "new" not in col.query(new, k=3).ids[0].tolist()  # written since: the general path catches up
    assert len(general_paths) == 2
    taken.clear()
    assert "new" not in col.query(new, k=3).ids[0].tolist()  # a tombstone: the index's short way declines
    assert len(general_paths) == 3 and taken[0] is None


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_bad_single_queries_are_refused_as_before(col, kind):
    from lookalike.errors import DimensionMismatchError, InvalidKError, InvalidParameterError, ZeroVectorError

    col.create_index(kind, **({"M": 8} if kind == "hnsw" else {"nlist": 8}))
    q = clustered(1, DIM, 6, seed=2)[0].astype(np.float32)
    with pytest.raises(NonFiniteVectorError):
        col.query(np.where(np.arange(DIM) == 2, np.nan, q).astype(np.float32), k=3)
    with pytest.raises(ZeroVectorError):
        col.query(np.zeros(DIM, dtype=np.float32), k=3)
    with pytest.raises(DimensionMismatchError):
        col.query(q[:-1], k=3)
    with pytest.raises(InvalidKError):
        col.query(q, k=0)
    with pytest.raises(InvalidParameterError):
        col.query(q, k=3, nprobe_typo=4)
    for not_a_name in ([], {"hnsw": 1}, 3):  # an index is named by a str
        for query in (col.query, col.query_now):
            with pytest.raises(InvalidParameterError):
                query(q, k=3, index=not_a_name)


def test_an_ivfpq_index_never_answers_with_the_ivf_flat_kernel(col):
    col.create_index("ivfpq", nlist=8, m=4)
    index = col._indexes["ivfpq"].index
    q = clustered(1, DIM, 6, seed=3).astype(np.float32)
    assert index.search_one(q, 5, {}) is None
    result = col.query(q[0], k=5)
    assert result.ids.tolist() == col.query(q[0].astype(np.float64), k=5).ids.tolist()


def test_query_now_takes_the_short_way_and_never_waits(col):
    import threading

    col.create_index("hnsw", M=8)
    q = clustered(1, DIM, 6, seed=4)[0].astype(np.float32)
    result = col.query_now(q, k=3)
    assert type(result.__dict__["_metadatas"]) is list and result.ids.tolist() == col.query(q, k=3).ids.tolist()
    holding, release = threading.Event(), threading.Event()

    def writer():
        with col._lock.exclusive():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    holding.wait(10)
    try:
        assert col.query_now(q, k=3) is None  # the lock is taken: the server answers from a worker thread
    finally:
        release.set()
        thread.join(10)
