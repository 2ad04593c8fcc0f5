"""Index rebuilds through the API while queries (and writes) keep being served."""

from __future__ import annotations

import time

import numpy as np
import pytest

from .conftest import assert_error
from .support import API_KEY

KEY = {"X-API-Key": API_KEY}
INDEX = "/api/collections/catalog/index"
SEARCH = "/api/collections/catalog/search"


def _query_until_built(client, body: dict, timeout: float = 120.0) -> tuple[int, dict]:
    """Send queries back to back while the build runs; every one must succeed.  Returns (queries sent while the
    status was 'building', the final status)."""
    during = 0
    deadline = time.monotonic() + timeout
    while True:
        answer = client.post(SEARCH, json=body)
        assert answer.status_code == 200, answer.text
        status = client.get(INDEX).json()
        if status["state"] != "building":
            return during, status
        during += 1
        assert time.monotonic() < deadline, "the build did not finish"


def test_first_build_while_querying(own_server, embedder):
    dim = embedder.dim
    started = own_server.post(INDEX, headers=KEY, json={"type": "ivf", "params": {"nlist": 8}})
    assert started.status_code == 202 and started.json()["state"] == "building"
    assert_error(own_server.post(INDEX, headers=KEY, json={"type": "ivf", "params": {"nlist": 4}}),
                 409, "BuildInProgressError")
    # an explicit query of the index being built for the first time is refused; the default query falls back
    explicit = own_server.post(SEARCH, json={"text": "coat", "index": "ivf"})
    assert explicit.status_code == 200 or explicit.json()["error"]["type"] == "BuildInProgressError"
    new_point = np.random.default_rng(5).normal(size=dim).tolist()
    written = own_server.post("/api/collections/catalog/points", headers=KEY,
                              json={"ids": ["written-during-build"], "vectors": [new_point]})
    assert written.status_code == 200
    during, status = _query_until_built(own_server, {"text": "coat", "k": 5, "with_recall": True})
    assert during >= 1
    assert status["state"] == "done" and status["build_s"] > 0 and status["total_s"] >= status["build_s"]
    assert status["default_index"] == "ivf" and "ivf" in status["indexes"]
    answer = own_server.post(SEARCH, json={"vector": new_point, "k": 1, "params": {"nprobe": 8}}).json()
    assert answer["index"] == "ivf" and answer["hits"][0]["id"] == "written-during-build"
    info = own_server.get("/api/collections/catalog").json()
    assert info["default_index"] == "ivf" and info["indexes"][1]["params"]["nlist"] == 8


def test_rebuild_serves_the_old_index_meanwhile(own_server):
    started = own_server.post(INDEX, headers=KEY, json={"type": "ivf", "params": {"nlist": 4}, "default": True})
    assert started.status_code == 202
    during, status = _query_until_built(own_server, {"text": "shirt", "k": 5, "index": "ivf",
                                                     "params": {"nprobe": 2}})
    assert status["state"] == "done" and status["params"] == {"nlist": 4}
    info = own_server.get("/api/collections/catalog").json()
    assert info["indexes"][1]["params"]["nlist"] == 4
    full = own_server.post(SEARCH, json={"text": "shirt", "k": 10, "params": {"nprobe": 4}, "with_recall": True})
    assert full.json()["recall"] == 1.0


def test_build_and_wait(own_server):
    done = own_server.post(INDEX, headers=KEY, json={"type": "rp_forest", "params": {"n_trees": 4}, "default": False,
                                                     "wait": True})
    assert done.status_code == 200 and done.json()["state"] == "done"
    assert own_server.get(INDEX + "/status").json()["state"] == "done"
    info = own_server.get("/api/collections/catalog").json()
    assert info["default_index"] == "ivf" and "rp_forest" in [i["name"] for i in info["indexes"]]
    assert own_server.post(SEARCH, json={"text": "bag", "index": "rp_forest"}).json()["index"] == "rp_forest"


@pytest.mark.parametrize("body, status, type_name", [
    ({"type": "nope"}, 400, "UnknownIndexTypeError"),
    ({"type": "ivf", "params": {"nlist": 0}}, 400, "InvalidParameterError"),
    ({"type": "ivf", "params": {"bogus": 3}}, 400, "InvalidParameterError"),
    ({"type": "ivf", "params": {"dim": 3}}, 400, "InvalidParameterError"),
    ({"type": "ivf", "params": {"nlist": [1]}}, 422, "ValidationError"),
    ({"params": {"nlist": 3}}, 422, "ValidationError"),
])
def test_bad_build_requests_fail_at_once(own_server, body, status, type_name):
    assert_error(own_server.post(INDEX, headers=KEY, json=body), status, type_name)
    assert own_server.get(INDEX).json()["state"] != "building"


def test_a_build_that_fails_reports_it(own_server, monkeypatch):
    from lookalike.server import builds

    def crash(self, handle, index_type, params, default):
        raise builds.BuildFailed({"type": "BuildProcessError", "message": "the build process was killed"})

    monkeypatch.setattr(builds.BuildManager, "_build_in_child", crash)
    status = own_server.post(INDEX, headers=KEY, json={"type": "hnsw", "wait": True}).json()
    assert status["state"] == "failed" and status["error"]["type"] == "BuildProcessError"
    assert "hnsw" not in status["indexes"]
    assert own_server.post(SEARCH, json={"text": "coat"}).status_code == 200


def test_concurrent_queries_and_writes(own_server, embedder):
    """Clients in parallel threads: searches and upserts interleave, all succeed, and every write is there."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(40, embedder.dim))
    before = own_server.get("/api/collections/catalog").json()["count"]

    def work(i):
        if i % 2:
            answer = own_server.post("/api/collections/catalog/points", headers=KEY,
                                     json={"ids": [f"parallel-{i}"], "vectors": [vectors[i].tolist()]})
        else:
            answer = own_server.post(SEARCH, json={"vector": vectors[i].tolist(), "k": 3, "index": "flat"})
        return answer.status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert set(pool.map(work, range(40))) == {200}
    assert own_server.get("/api/collections/catalog").json()["count"] == before + 20
    found = own_server.post(SEARCH, json={"vector": vectors[39].tolist(), "k": 1, "index": "flat"}).json()
    assert found["hits"][0]["id"] == "parallel-39"
