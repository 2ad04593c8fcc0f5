"""The snapshot routes: taken while one client writes and another searches, listed, downloaded, restored with the
same answers, deleted; every route behind the API key; names that cannot reach outside the snapshot folder."""

from __future__ import annotations

import threading

import httpx
import numpy as np
import pytest

import lookalike
from lookalike.server.protocol import encode_array

from .conftest import assert_error, serve
from .support import API_KEY

KEY = {"X-API-Key": API_KEY}
BATCH = 100


@pytest.fixture
def served(tmp_path):
    path = tmp_path / "db"
    rng = np.random.default_rng(4)
    with lookalike.Database(path) as db:
        col = db.create_collection("items", dim=8, metric="cosine")
        col.add(list(range(2000)), rng.standard_normal((2000, 8)).astype(np.float32))
        col.create_index("ivf", nlist=8)
    running = serve(path)
    with httpx.Client(base_url=running.url, timeout=60) as http:
        yield path, http
    running.stop()


def test_snapshot_while_writing_and_searching_then_restore(served, tmp_path):
    path, http = served
    rng = np.random.default_rng(5)
    stop = threading.Event()
    written: list[int] = []
    searched = [0]

    def write():
        for b in range(1000):
            if stop.is_set():
                return
            ids = list(range(10_000 + b * BATCH, 10_000 + (b + 1) * BATCH))
            answer = http.post("/api/collections/items/points", headers=KEY, json={
                "ids": ids, "vectors": encode_array(rng.standard_normal((BATCH, 8)).astype(np.float32))})
            assert answer.status_code == 200, answer.text
            written.append(b)

    def search():
        while not stop.is_set():
            assert http.post("/api/collections/items/search", json={"vector": [0.2] * 8, "k": 5}).is_success
            searched[0] += 1

    threads = [threading.Thread(target=write), threading.Thread(target=search)]
    for thread in threads:
        thread.start()
    while len(written) < 3:
        threading.Event().wait(0.01)
    taken = http.post("/api/snapshots", headers=KEY)
    stop.set()
    for thread in threads:
        thread.join()
    assert taken.status_code == 201, taken.text
    name, size = taken.json()["name"], taken.json()["size"]
    assert searched[0] > 0 and size > 0
    listed = http.get("/api/snapshots", headers=KEY).json()["snapshots"]
    assert [s["name"] for s in listed] == [name] and listed[0]["size"] == size
    download = http.get(f"/api/snapshots/{name}", headers=KEY)
    assert download.status_code == 200 and len(download.content) == size
    (tmp_path / name).write_bytes(download.content)
    restored = lookalike.Database.restore(tmp_path / name, tmp_path / "restored")
    col = restored.get_collection("items")
    new = len(col) - 2000
    assert new % BATCH == 0 and new >= 3 * BATCH  # whole acknowledged batches only
    queries = col.get_vectors()[:10]
    exact = col.query(queries, k=5, index="flat")
    assert np.array_equal(col.query(queries, k=5, index="ivf", nprobe=8).ids, exact.ids)
    restored.close()
    assert http.delete(f"/api/snapshots/{name}", headers=KEY).json() == {"deleted": name}
    assert http.get("/api/snapshots", headers=KEY).json()["snapshots"] == []


def test_snapshot_routes_need_the_key_and_plain_names(served):
    _, http = served
    assert_error(http.post("/api/snapshots"), 401)
    assert_error(http.get("/api/snapshots"), 401)
    assert_error(http.get("/api/snapshots/x.tar"), 401)
    assert_error(http.delete("/api/snapshots/x.tar"), 401)
    assert_error(http.get("/api/snapshots/nope.tar", headers=KEY), 404, "IdNotFoundError")
    assert_error(http.get("/api/snapshots/lookalike.json", headers=KEY), 400, "InvalidNameError")
    assert_error(http.get("/api/snapshots/..%2Flookalike.json", headers=KEY), 404)
    assert_error(http.delete("/api/snapshots/.hidden.tar", headers=KEY), 400, "InvalidNameError")
