"""lookalike.Client against a real server on loopback: the same answers and the same errors as an embedded
Database, batches split across requests, typed ids, and a connection that recovers."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest

import lookalike
from lookalike import errors
from lookalike.client import Client, RemoteCollection, ServerUnavailableError

DIM = 8


def points(n: int, seed: int = 0, dim: int = DIM):
    rng = np.random.default_rng(seed)
    ids = [i if i % 3 else f"doc-{i}" for i in range(n)]  # ints and strings in one collection
    metadata = [{"group": "even" if i % 2 == 0 else "odd", "rank": i} if i % 5 else None for i in range(n)]
    return ids, rng.normal(size=(n, dim)).astype(np.float32), metadata


def observe(db) -> dict:
    """Run the same script of calls on an embedded Database or a Client and record what comes back."""
    seen = {}
    col = db.create_collection("script", DIM, "l2")
    ids, vectors, metadata = points(60)
    col.add(ids[:40], vectors[:40], metadata[:40])
    col.upsert(ids[30:], vectors[30:] + 1, metadata[30:])
    seen["len"] = len(col)
    seen["count"] = col.count()
    seen["ids"] = col.ids()
    seen["vectors"] = col.get_vectors()
    got = col.get([ids[5], ids[33], ids[3]])
    seen["get"] = (got.ids, got.vectors, got.metadatas)
    seen["has"] = col.has([ids[1], "missing", 10_000, ids[59]])
    result = col.query(vectors[:7], k=5, where={"group": "even"}, with_recall=True)
    seen["query"] = (result.ids.tolist(), result.distances, result.similarities, result.metadatas,
                     result.true_knn, result.recall)
    single = col.query(vectors[0], k=70)  # one 1-D query, k past the count: padded
    seen["padded"] = (single.ids.tolist(), single.distances)
    seen["deleted_where"] = col.delete(where={"rank": {"$gte": 50}})
    seen["deleted_ids"] = col.delete([ids[1], ids[2]])
    seen["after"] = (len(col), col.ids())
    cosine = db.get_or_create_collection("script-cos", DIM)
    cosine.add(["a", "b"], vectors[:2])
    seen["cosine"] = cosine.query(vectors[:2], k=2).similarities
    seen["same"] = db.get_or_create_collection("script-cos", DIM).count()
    seen["collections"] = db.list_collections()
    seen["info"] = {key: value for key, value in col.info().items() if key != "version"}
    db.drop_collection("script-cos")
    seen["dropped"] = ("script-cos" in db, db.list_collections())
    return seen


def test_the_client_answers_as_the_embedded_database(database, client):
    embedded, remote = observe(database), observe(client)
    client.drop_collection("script")
    assert embedded.keys() == remote.keys()
    for key in embedded:
        assert _same(embedded[key], remote[key]), key


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if a is None or b is None:
            return a is b
        return a.shape == b.shape and a.dtype == b.dtype and np.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b  # ids keep their type: 7 is not "7"


def _expect(db, make):
    """The error a call raises."""
    with pytest.raises(lookalike.LookalikeError) as caught:
        make(db)
    return caught.value


ERROR_CASES = {
    "duplicate id": (errors.DuplicateIdError, lambda db, col: col.add([1], np.ones((1, DIM)))),
    "wrong dim": (errors.DimensionMismatchError, lambda db, col: col.query(np.ones(DIM + 1))),
    "unknown id": (errors.IdNotFoundError, lambda db, col: col.get([1, "nope"])),
    "delete unknown id": (errors.IdNotFoundError, lambda db, col: col.delete(["nope"])),
    "bad filter": (errors.InvalidFilterError, lambda db, col: col.query(np.ones(DIM), where={"x": {"$regex": "a"}})),
    "unknown index": (errors.UnknownIndexTypeError, lambda db, col: col.query(np.ones(DIM), index="nope")),
    "index not built": (errors.IndexNotBuiltError, lambda db, col: col.query(np.ones(DIM), index="hnsw")),
    "bad k": (errors.InvalidKError, lambda db, col: col.query(np.ones(DIM), k=0)),
    "float k": (errors.InvalidKError, lambda db, col: col.query(np.ones(DIM), k=2.0)),
    "unknown query parameter": (errors.InvalidParameterError, lambda db, col: col.query(np.ones(DIM), bogus=3)),
    "zero vector": (errors.ZeroVectorError, lambda db, col: col.add([9], np.zeros((1, DIM)))),
    "nan": (errors.NonFiniteVectorError, lambda db, col: col.add([9], np.full((1, DIM), np.nan))),
    "empty batch": (errors.EmptyBatchError, lambda db, col: col.add([], np.ones((0, DIM)))),
    "bad id": (errors.InvalidIdError, lambda db, col: col.add([1.5], np.ones((1, DIM)))),
    "drop flat": (errors.InvalidInputError, lambda db, col: col.drop_index("flat")),
    "drop missing index": (errors.IndexNotBuiltError, lambda db, col: col.drop_index("ivf")),
    "bad build parameter": (errors.InvalidParameterError, lambda db, col: col.create_index("ivf", nlist=0)),
    "missing collection": (errors.CollectionNotFoundError, lambda db, col: db.get_collection("no-such")),
    "existing collection": (errors.CollectionExistsError, lambda db, col: db.create_collection("errors", DIM)),
    "other dim, exist_ok": (errors.CollectionExistsError,
                            lambda db, col: db.get_or_create_collection("errors", DIM + 1)),
    "bad name": (errors.InvalidNameError, lambda db, col: db.create_collection("../up", DIM)),
    "bad metric": (errors.UnknownMetricError, lambda db, col: db.create_collection("m", DIM, "hamming")),
    "drop missing collection": (errors.CollectionNotFoundError, lambda db, col: db.drop_collection("no-such")),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_errors_are_the_embedded_ones(db, case):
    expected, call = ERROR_CASES[case]
    col = db.create_collection("errors", DIM)
    col.add([1, "one"], np.ones((2, DIM)), [{"x": 1}, None])
    error = _expect(db, lambda target: call(target, col))
    assert type(error) is expected, (type(error), str(error))
    assert str(error)


def test_server_side_errors_keep_type_message_and_status(client):
    col = client.create_collection("typed", DIM)
    col.add([1], np.ones((1, DIM)))
    with pytest.raises(errors.DuplicateIdError) as caught:
        col.add([1], np.ones((1, DIM)))  # only the server can know: its message, its status
    assert "already in collection 'typed'" in str(caught.value) and caught.value.http_status == 409
    with pytest.raises(KeyError):  # a lookalike KeyError is still a KeyError
        col.get(["absent"])
    client.drop_collection("typed")


def test_ids_keep_their_type_on_the_wire(client):
    col = client.create_collection("typed-ids", 2, "l2")
    col.add([7, "7", -(2**63), "x" * 512], np.array([[0, 0], [5, 5], [9, 9], [1, 1]], np.float32))
    result = col.query([[0.1, 0.0], [5, 5.1]], k=1)
    assert result.ids[0, 0] == 7 and type(result.ids[0, 0]) is int
    assert result.ids[1, 0] == "7" and type(result.ids[1, 0]) is str
    assert col.get(["7"]).vectors[0].tolist() == [5, 5]
    assert col.get([7]).vectors[0].tolist() == [0, 0]
    assert col.has([-(2**63), "x" * 512, "7", 8]) == [True, True, True, False]
    client.drop_collection("typed-ids")


def test_batches_larger_than_a_request_are_split(client, database, monkeypatch):
    """200 kB bodies: 3,000 x 32-d vectors (about 700 kB of base64) and 2,000 queries take several requests."""
    sent = []
    original = client._http.request
    monkeypatch.setattr(client._http, "request",
                        lambda method, path, body=None: sent.append(path) or original(method, path, body))
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 32)).astype(np.float32)
    ids = [f"p{i}" for i in range(3000)]
    metadata = [{"i": i} for i in range(3000)]
    remote = client.create_collection("big", 32, "dot")
    local = database.create_collection("big", 32, "dot")
    remote.upsert(ids, x, metadata)
    local.upsert(ids, x, metadata)
    writes = sum(path.endswith("/points") for path in sent)
    assert writes >= 3 and len(remote) == 3000
    np.testing.assert_array_equal(remote.get_vectors(), x)
    queries = rng.normal(size=(2000, 32)).astype(np.float32)
    far, near = remote.query(queries, k=3), local.query(queries, k=3)
    assert sum(path.endswith("/query") for path in sent) >= 2
    assert far.ids.tolist() == near.ids.tolist() and np.allclose(far.distances, near.distances, rtol=1e-5)
    assert far.metadatas == near.metadatas
    assert remote.delete(ids[:2500]) == 2500 and len(remote) == 500
    client.drop_collection("big")


def test_index_lifecycle_through_the_server(client):
    col = client.create_collection("indexed", DIM)
    ids, x, metadata = points(300, seed=5)
    col.add(ids, x, metadata)
    built = col.create_index("ivf", nlist=4)
    assert built["type"] == "ivf" and built["count"] == 300 and built["build_s"] >= 0
    assert col.indexes == ["flat", "ivf"] and col.default_index == "ivf"
    exact = col.query(x[:20], k=5, index="flat")
    approx = col.query(x[:20], k=5, index="ivf", nprobe=4, with_recall=True)  # every list probed: exact
    assert approx.ids.tolist() == exact.ids.tolist() and np.all(approx.recall == 1.0)
    report = col.tune("ivf", target_recall=0.9, k=5, sample=30)
    assert report.index == "ivf" and report.param == "nprobe" and 0 <= report.recall <= 1
    _, others, _ = points(40, seed=9)  # query vectors to tune on, kept for text queries only
    text = col.tune("ivf", target_recall=0.9, k=5, queries=others + 0.5, modality="text")
    assert text.n_queries == 40 and text.param == "nprobe"
    assert col.query(x[:3], k=5, modality="text").ids.tolist() == \
        col.query(x[:3], k=5, nprobe=text.value).ids.tolist()
    col.create_metadata_index("group")
    assert [name for name in col.info()["metadata_indexes"] if "group" in name]
    assert col.query(x[:2], k=3, where={"group": "odd"}).metadatas[0][0]["group"] == "odd"
    col.drop_index("ivf")
    assert col.indexes == ["flat"] and col.default_index == "flat"
    client.drop_collection("indexed")


def test_a_dropped_collection_is_gone_for_everyone(client):
    col = client.create_collection("short-lived", DIM)
    col.add([1], np.ones((1, DIM)))
    other = Client(client.url, api_key=client._http._headers.get("X-API-Key"))
    held = other.get_collection("short-lived")
    client.drop_collection("short-lived")
    for call in (lambda: len(held), lambda: held.query(np.ones(DIM)), lambda: held.add([2], np.ones((1, DIM)))):
        with pytest.raises(errors.CollectionNotFoundError):
            call()
    again = client.create_collection("short-lived", DIM)  # the name is free again, and the data is gone
    assert len(again) == 0 and len(held) == 0
    client.drop_collection("short-lived")


def test_one_client_serves_many_threads(client):
    col = client.create_collection("threads", DIM, "l2")
    ids, x, _ = points(200, seed=9)
    col.add(ids, x)
    expected = col.query(x, k=1).ids[:, 0].tolist()
    failures = []

    def work(rows):
        for row in rows:
            if col.query(x[row], k=1).ids[0, 0] != expected[row]:
                failures.append(row)

    threads = [threading.Thread(target=work, args=(range(start, 200, 4),)) for start in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and ids == expected  # every point is its own nearest neighbour
    client.drop_collection("threads")


def test_a_connection_closed_by_the_server_is_reopened(client):
    client.list_collections()
    connection = client._http._local.connection
    connection.sock.shutdown(socket.SHUT_RDWR)  # what the server does to an idle keep-alive connection
    assert isinstance(client.list_collections(), list)
    assert client._http._local.connection is not connection


def test_an_unreachable_server_is_a_typed_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(ServerUnavailableError, match="cannot reach"):
            Client(f"http://127.0.0.1:{port}").list_collections()
    with pytest.raises(errors.InvalidInputError):
        Client("ftp://example.org")


def test_writes_need_the_key(server, client):
    anonymous = Client(server.url)
    col = client.create_collection("guarded", DIM)
    col.add([1], np.ones((1, DIM)))
    remote = anonymous.get_collection("guarded")
    assert remote.query(np.ones(DIM), k=1).ids[0, 0] == 1  # reads are open
    from lookalike.server.protocol import UnauthorizedError

    for write in (lambda: remote.add([2], np.ones((1, DIM))), lambda: remote.delete([1]),
                  lambda: anonymous.drop_collection("guarded"), lambda: anonymous.create_collection("x", 2),
                  lambda: remote.create_metadata_index("a"), lambda: remote.drop_index("ivf"),
                  lambda: remote.tune()):
        with pytest.raises(UnauthorizedError):
            write()
    assert len(col) == 1
    client.drop_collection("guarded")


def test_client_is_exported_lazily():
    assert lookalike.Client is Client
    assert isinstance(lookalike.Client("127.0.0.1:1"), Client)  # a bare host:port is http
    assert RemoteCollection.__name__ in lookalike.client.__all__


def test_serve_can_create_an_empty_database(tmp_path):
    from lookalike.server.cli import prepare_database

    assert "--create" in prepare_database(tmp_path / "new")
    assert prepare_database(tmp_path / "new", create=True) is None
    assert lookalike.Database(tmp_path / "new").list_collections() == []
    assert prepare_database(tmp_path / "new") is None  # a database now: served as it is
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert "not a lookalike database" in prepare_database(tmp_path / "other", create=True)
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt"]  # nothing written into it
