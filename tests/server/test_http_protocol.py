"""The server's HTTP protocol on a real uvicorn server on loopback: a plain single query is answered below ASGI (no
request reaches the ASGI app) exactly as the full application answers it; every other request (a batch, an
error, a chunked body, a busy collection, pipelined requests) goes the ASGI way whole and is answered in order."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from lookalike.server import create_app
from lookalike.server.fast_lane import QueryFastLane

from .support import ITEMS_DIM, CountingApp, ServerThread, query_body

QUERY = "/api/collections/items/query"


@pytest.fixture(scope="module")
def served(items_db):
    """(server, the ASGI way's counter, the full app's counter, a client of the full app alone)."""
    full = CountingApp(create_app(items_db))
    asgi = CountingApp(QueryFastLane(full))
    server = ServerThread(asgi, lane=False).start()
    with TestClient(create_app(items_db)) as alone:
        yield server, asgi, full, alone
    server.stop()


def comparable(answer: dict) -> dict:
    """The answer without its timings."""
    answer["stats"].pop("search_ms")
    answer["stats"].pop("exact_ms", None)
    return answer


@pytest.mark.parametrize("fields", [{}, {"index": "hnsw", "params": {"ef": 30}}, {"where": {"group": "é"}},
                                    {"include_metadata": False}, {"index": "flat"}])
def test_a_single_query_is_answered_below_asgi_as_the_full_app_answers_it(served, fields):
    server, asgi, full, alone = served
    payload = query_body(np.random.default_rng(1).normal(size=ITEMS_DIM), **fields)
    with httpx.Client(base_url=server.url) as client:
        client.post(QUERY, json=payload)  # the collection opened (a first query may go the ASGI way)
        before = asgi.calls
        got = client.post(QUERY, json=payload)
        assert asgi.calls == before  # no ASGI cycle
    want = alone.post(QUERY, json=payload)
    assert got.status_code == want.status_code == 200
    assert comparable(got.json()) == comparable(want.json())
    for header in ("content-type", "x-content-type-options", "referrer-policy", "x-frame-options"):
        assert got.headers[header] == want.headers[header]
    assert "date" in got.headers and int(got.headers["content-length"]) == len(got.content)


@pytest.mark.parametrize("payload", [
    query_body(np.ones((3, ITEMS_DIM))),  # a batch: a worker thread's work
    query_body(np.ones(ITEMS_DIM), with_recall=True),  # an exact search behind it
])
def test_other_queries_go_the_asgi_way_and_are_answered_as_before(served, payload):
    server, asgi, full, alone = served
    with httpx.Client(base_url=server.url) as client:
        before = (asgi.calls, full.calls)
        got = client.post(QUERY, json=payload)
    assert (asgi.calls, full.calls) == (before[0] + 1, before[1])  # the ASGI lane answered
    assert comparable(got.json()) == comparable(alone.post(QUERY, json=payload).json())


@pytest.mark.parametrize("send", [
    lambda c: c.post("/api/collections/nope/query", json=query_body(np.ones(ITEMS_DIM))),  # unknown collection
    lambda c: c.post(QUERY, json=query_body(np.ones(ITEMS_DIM + 1))),  # wrong dimension
    lambda c: c.post(QUERY, json=query_body(np.full(ITEMS_DIM, np.inf))),  # inf
    lambda c: c.post(QUERY, json={**query_body(np.ones(ITEMS_DIM)), "k": 0}),  # k <= 0
    lambda c: c.post(QUERY, content=b"{not json", headers={"content-type": "application/json"}),
    lambda c: c.post(QUERY + "?k=3", json=query_body(np.ones(ITEMS_DIM))),  # a query string: not plain
])
def test_errors_and_unusual_requests_are_answered_by_the_full_app(served, send):
    server, asgi, full, alone = served
    with httpx.Client(base_url=server.url) as client:
        before = asgi.calls
        got = send(client)
    assert asgi.calls == before + 1
    want = send(alone)
    assert got.status_code == want.status_code
    assert got.json() == want.json() if got.status_code >= 400 else comparable(got.json()) == comparable(want.json())


def raw_request(path: str, payload: bytes, *, extra: bytes = b"") -> bytes:
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
            + extra + b"content-length: %d\r\n\r\n" % len(payload) + payload)


def read_responses(sock, count: int) -> list[tuple[int, bytes]]:
    """``count`` HTTP responses (status, body) read from ``sock``, each sized by its content-length."""
    data, answers = b"", []

    def more() -> bytes:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection before a whole response")
        return chunk

    while len(answers) < count:
        while b"\r\n\r\n" not in data:
            data += more()
        head, data = data.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length:"))
        while len(data) < length:
            data += more()
        answers.append((int(lines[0].split()[1]), data[:length]))
        data = data[length:]
    return answers


def test_pipelined_requests_are_answered_in_order(served):
    """Three requests in one write: a plain query (the lane), a batch (the ASGI way), a plain query again."""
    server, _, _, alone = served
    rng = np.random.default_rng(2)
    payloads = [query_body(rng.normal(size=ITEMS_DIM)), query_body(rng.normal(size=(2, ITEMS_DIM))),
                query_body(rng.normal(size=ITEMS_DIM))]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"".join(raw_request(QUERY, json.dumps(p).encode()) for p in payloads))
        answers = read_responses(sock, 3)
    for (status, content), payload in zip(answers, payloads):
        assert status == 200
        assert comparable(json.loads(content)) == comparable(alone.post(QUERY, json=payload).json())


def test_a_chunked_body_and_an_expected_continue_go_the_asgi_way(served):
    server, asgi, _, alone = served
    payload = json.dumps(query_body(np.ones(ITEMS_DIM))).encode()
    chunked = (b"POST " + QUERY.encode() + b" HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
               b"transfer-encoding: chunked\r\n\r\n" + b"%x\r\n" % len(payload) + payload + b"\r\n0\r\n\r\n")
    want = comparable(alone.post(QUERY, content=payload, headers={"content-type": "application/json"}).json())
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        before = asgi.calls
        sock.sendall(chunked)
        [(status, content)] = read_responses(sock, 1)
        assert status == 200 and comparable(json.loads(content)) == want
        sock.sendall(raw_request(QUERY, payload, extra=b"expect: 100-continue\r\n"))
        data = b""
        while b"100 Continue" not in data:
            data += sock.recv(65536)
        [(status, content)] = read_responses(_Prefixed(sock, data.split(b"\r\n\r\n", 1)[1]), 1)
        assert status == 200 and comparable(json.loads(content)) == want
    assert asgi.calls == before + 2


class _Prefixed:
    """A socket whose first bytes were already read."""

    def __init__(self, sock: socket.socket, first: bytes):
        self.sock, self.first = sock, first

    def recv(self, size: int) -> bytes:
        if self.first:
            first, self.first = self.first, b""
            return first
        return self.sock.recv(size)


def test_a_query_of_a_busy_collection_is_answered_once_the_write_is_done(items_db):
    """A query that would wait (a write holds the collection) is not answered on the event loop: it goes to a
    worker thread, and the server keeps answering other requests meanwhile."""
    app = create_app(items_db)
    server = ServerThread(app).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            payload = query_body(np.ones(ITEMS_DIM))
            first = client.post(QUERY, json=payload).json()
            handle = app.state.lookalike.handle("items")
            collection = handle.collection
            answers = []
            with collection._lock.exclusive():  # as a write publishing its rows
                thread = threading.Thread(target=lambda: answers.append(client.post(QUERY, json=payload)))
                thread.start()
                with httpx.Client(base_url=server.url) as other:
                    assert other.get("/api/health").status_code == 200  # the loop is not waiting
                thread.join(0.3)
                assert not answers  # the query waits for the write, in a worker thread
            thread.join(30)
            assert comparable(answers[0].json()) == comparable(first)
    finally:
        server.stop()


def test_with_the_access_log_every_query_goes_the_asgi_way(items_db):
    """uvicorn logs a request as its ASGI cycle answers it: with ``--access-log`` the lane steps aside."""
    asgi = CountingApp(QueryFastLane(create_app(items_db)))
    server = ServerThread(asgi, lane=False, access_log=True).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            client.post(QUERY, json=query_body(np.ones(ITEMS_DIM)))
            before = asgi.calls
            assert client.post(QUERY, json=query_body(np.ones(ITEMS_DIM))).status_code == 200
        assert asgi.calls == before + 1
    finally:
        server.stop()


@pytest.mark.parametrize("payload, rows", [(query_body(np.ones(ITEMS_DIM)), 1),  # the lane's
                                           (query_body(np.ones((2, ITEMS_DIM))), 2)])  # the ASGI way's
def test_a_query_still_being_sent_when_the_server_stops_is_answered_then_closed(items_db, payload, rows):
    """A stop closes idle connections at once; one whose query body is half sent gets its answer (below ASGI or
    through it), then the connection closes."""
    server = ServerThread(create_app(items_db)).start()
    content = json.dumps(payload).encode()
    request = raw_request(QUERY, content)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nhost: test\r\n\r\n")
        assert read_responses(sock, 1)[0][0] == 200
        sock.sendall(request[:-10])  # the headers and most of the body
        stopping = threading.Thread(target=server.stop)
        stopping.start()
        time.sleep(0.5)  # the server is stopping, waiting for this connection
        sock.sendall(request[-10:])
        [(status, answer)] = read_responses(sock, 1)
        assert status == 200 and len(json.loads(answer)["ids"]) == rows
        assert sock.recv(1) == b""  # then closed
        stopping.join(15)
    assert not stopping.is_alive()

