"""The query fast lane answers POST /api/collections/{name}/query as the full application does, and hands the full
application every request it does not answer (errors included), body intact."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from lookalike import Database
from lookalike.server import create_app
from lookalike.server.fast_lane import QueryFastLane
from lookalike.server.protocol import encode_array

DIM = 8


class CountingApp:
    """The full app, counting the requests that reach it."""

    def __init__(self, app):
        self.app, self.state, self.calls = app, app.state, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("lane") / "db"
    rng = np.random.default_rng(0)
    with Database(path) as db:
        col = db.create_collection("items", dim=DIM)
        col.add(list(range(200)), rng.normal(size=(200, DIM)).astype(np.float32),
                [{"group": "é" if i % 2 else "b", "n": i} for i in range(200)])
        col.create_index("hnsw", M=8)
    return path


@pytest.fixture(scope="module")
def clients(db_path):
    """(lane client, the counting full app behind it, a client of the full app alone)."""
    app = create_app(db_path, max_body_bytes=100_000)
    counting = CountingApp(app)
    with TestClient(QueryFastLane(counting)) as lane, TestClient(create_app(db_path, max_body_bytes=100_000)) as full:
        yield lane, counting, full


def body(vectors, **fields):
    return {"vectors": encode_array(np.asarray(vectors, dtype=np.float32)), "k": 5, **fields}


QUERY = "/api/collections/items/query"


@pytest.mark.parametrize("fields", [{}, {"index": "hnsw", "params": {"ef": 30}}, {"where": {"group": "é"}},
                                    {"include_metadata": False}, {"index": "flat"}])
def test_the_lane_answers_a_query_as_the_full_app(clients, fields):
    lane, counting, full = clients
    rng = np.random.default_rng(1)
    for shape in ((DIM,), (1, DIM), (3, DIM)):
        payload = body(rng.normal(size=shape), **fields)
        before = counting.calls
        got, want = lane.post(QUERY, json=payload), full.post(QUERY, json=payload)
        assert counting.calls == before  # answered in the lane
        assert got.status_code == want.status_code == 200
        answer, expected = got.json(), want.json()
        answer["stats"].pop("search_ms"), expected["stats"].pop("search_ms")
        assert answer == expected
        for header in ("content-type", "x-content-type-options", "referrer-policy", "x-frame-options"):
            assert got.headers[header] == want.headers[header]


@pytest.mark.parametrize("send", [
    lambda c: c.post("/api/collections/nope/query", json=body(np.ones(DIM))),  # unknown collection
    lambda c: c.post(QUERY, json=body(np.ones(DIM + 1))),  # wrong dimension
    lambda c: c.post(QUERY, json=body(np.full(DIM, np.nan))),  # NaN
    lambda c: c.post(QUERY, json={**body(np.ones(DIM)), "k": 0}),  # k <= 0
    lambda c: c.post(QUERY, json={**body(np.ones(DIM)), "params": {"nprobe": 3}}),  # not the index's parameter
    lambda c: c.post(QUERY, json={**body(np.ones(DIM)), "surprise": 1}),  # a field the schema refuses
    lambda c: c.post(QUERY, content=b"{not json", headers={"content-type": "application/json"}),
    lambda c: c.post(QUERY, content=json.dumps(body(np.ones(DIM))), headers={"content-type": "text/plain"}),
    lambda c: c.post(QUERY, json={**body(np.ones((50, DIM))), "pad": "x" * 200_000}),  # over the body limit
])
def test_every_other_request_reaches_the_full_app_which_answers_as_before(clients, send):
    lane, counting, full = clients
    before = counting.calls
    got, want = send(lane), send(full)
    assert counting.calls == before + 1
    assert got.status_code == want.status_code and got.status_code >= 400
    assert got.json() == want.json()


def test_other_routes_and_a_cors_server_pass_through(db_path, clients):
    lane, counting, _ = clients
    before = counting.calls
    assert lane.get("/api/health").status_code == 200
    assert lane.post("/api/collections/items/points/get", json={"ids": [1]}).json()["ids"] == [1]
    assert counting.calls == before + 2
    cors = CountingApp(create_app(db_path, cors_origins=["http://shop.example"]))
    with TestClient(QueryFastLane(cors)) as client:
        answer = client.post(QUERY, json=body(np.ones(DIM)), headers={"origin": "http://shop.example"})
    assert answer.status_code == 200 and cors.calls == 1
    assert answer.headers["access-control-allow-origin"] == "http://shop.example"
