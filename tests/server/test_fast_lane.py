"""The query fast lane answers POST /api/collections/{name}/query as the full application does, and hands the full
application every request it does not answer (errors included), body intact."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from lookalike.server import create_app
from lookalike.server.fast_lane import QueryFastLane

from .support import ITEMS_DIM, CountingApp, query_body


@pytest.fixture(scope="module")
def clients(items_db):
    """(lane client, the counting full app behind it, a client of the full app alone)."""
    app = create_app(items_db, max_body_bytes=100_000)
    counting = CountingApp(app)
    with TestClient(QueryFastLane(counting)) as lane, TestClient(create_app(items_db, max_body_bytes=100_000)) as full:
        yield lane, counting, full


QUERY = "/api/collections/items/query"


@pytest.mark.parametrize("fields", [{}, {"index": "hnsw", "params": {"ef": 30}}, {"where": {"group": "é"}},
                                    {"include_metadata": False}, {"index": "flat"}])
def test_the_lane_answers_a_query_as_the_full_app(clients, fields):
    lane, counting, full = clients
    rng = np.random.default_rng(1)
    for shape in ((ITEMS_DIM,), (1, ITEMS_DIM), (3, ITEMS_DIM)):
        payload = query_body(rng.normal(size=shape), **fields)
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
    lambda c: c.post("/api/collections/nope/query", json=query_body(np.ones(ITEMS_DIM))),  # unknown collection
    lambda c: c.post(QUERY, json=query_body(np.ones(ITEMS_DIM + 1))),  # wrong dimension
    lambda c: c.post(QUERY, json=query_body(np.full(ITEMS_DIM, np.nan))),  # NaN
    lambda c: c.post(QUERY, json={**query_body(np.ones(ITEMS_DIM)), "k": 0}),  # k <= 0
    lambda c: c.post(QUERY, json={**query_body(np.ones(ITEMS_DIM)), "params": {"nprobe": 3}}),  # not HNSW's
    lambda c: c.post(QUERY, json={**query_body(np.ones(ITEMS_DIM)), "surprise": 1}),  # a field the schema refuses
    lambda c: c.post(QUERY, content=b"{not json", headers={"content-type": "application/json"}),
    lambda c: c.post(QUERY, content=json.dumps(query_body(np.ones(ITEMS_DIM))), headers={"content-type": "text/plain"}),
    lambda c: c.post(QUERY, json={**query_body(np.ones((50, ITEMS_DIM))), "pad": "x" * 200_000}),  # over the body limit
])
def test_every_other_request_reaches_the_full_app_which_answers_as_before(clients, send):
    lane, counting, full = clients
    before = counting.calls
    got, want = send(lane), send(full)
    assert counting.calls == before + 1
    assert got.status_code == want.status_code and got.status_code >= 400
    assert got.json() == want.json()


def test_other_routes_and_a_cors_server_pass_through(items_db, clients):
    lane, counting, _ = clients
    before = counting.calls
    assert lane.get("/api/health").status_code == 200
    assert lane.post("/api/collections/items/points/get", json={"ids": [1]}).json()["ids"] == [1]
    assert counting.calls == before + 2
    cors = CountingApp(create_app(items_db, cors_origins=["http://shop.example"]))
    with TestClient(QueryFastLane(cors)) as client:
        answer = client.post(QUERY, json=query_body(np.ones(ITEMS_DIM)), headers={"origin": "http://shop.example"})
    assert answer.status_code == 200 and cors.calls == 1
    assert answer.headers["access-control-allow-origin"] == "http://shop.example"
