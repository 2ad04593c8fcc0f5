"""SIGTERM while a client writes, another searches and an index builds: the server stops taking requests, answers
the ones in flight, writes its queued query-log rows and leaves the build either done or cleanly abandoned; every
acknowledged write is there after a restart, whole."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import numpy as np
import pytest

from .support import start_serve_process

DIM = 32
BATCH = 50


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_loses_nothing_acknowledged(tmp_path, stop):
    import lookalike
    from lookalike.server.protocol import encode_array
    from lookalike.server.querylog import LOG_FILE, QueryLog

    path = tmp_path / "db"
    rng = np.random.default_rng(11)
    with lookalike.Database(path) as db:
        db.create_collection("items", dim=DIM, metric="cosine").add(
            [f"base-{i}" for i in range(20_000)], rng.standard_normal((20_000, DIM)).astype(np.float32))
    server, url = start_serve_process(path)
    acknowledged_batches: list[list[str]] = []
    sent_batches: list[list[str]] = []
    searches = [0]
    stopping = threading.Event()

    def write():
        with httpx.Client(base_url=url, timeout=30) as http:
            for b in range(10_000):
                ids = [f"new-{b}-{i}" for i in range(BATCH)]
                sent_batches.append(ids)
                try:
                    answer = http.post("/api/collections/items/points", json={
                        "ids": ids, "vectors": encode_array(rng.standard_normal((BATCH, DIM)).astype(np.float32)),
                        "replace": True})
                except httpx.HTTPError:
                    return
                if answer.status_code != 200:
                    return
                acknowledged_batches.append(ids)

    def search():
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stopping.is_set():
                try:
                    answer = http.post("/api/collections/items/search", json={"vector": [0.1] * DIM, "k": 5})
                except httpx.HTTPError:
                    return
                if answer.status_code != 200:
                    return
                searches[0] += 1

    with httpx.Client(base_url=url, timeout=30) as http:
        build = http.post("/api/collections/items/index", json={
            "type": "hnsw", "params": {"M": 16, "ef_construction": 200}, "wait": False})
        assert build.status_code in (200, 202), build.text
    threads = [threading.Thread(target=write), threading.Thread(target=search)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    assert acknowledged_batches and searches[0] > 0
    server.send_signal(stop)
    try:
        server.wait(timeout=60)
    finally:
        stopping.set()
        for thread in threads:
            thread.join(timeout=60)
        if server.poll() is None:
            server.kill()
    # uvicorn shuts down gracefully, then raises the signal again so the exit status says what stopped it
    assert server.returncode in (0, -stop, 128 + stop), server.stderr.read()[-2000:]

    with lookalike.Database(path) as db:
        col = db.get_collection("items")
        acknowledged = [i for batch in acknowledged_batches for i in batch]
        assert all(col.has(acknowledged))  # nothing acknowledged is lost
        for batch in sent_batches[len(acknowledged_batches):]:  # a batch in flight: whole or absent
            assert len(set(col.has(batch))) == 1
        assert len(col) == 20_000 + BATCH * sum(all(col.has(b)) for b in sent_batches)
        assert set(col.indexes) <= {"flat", "hnsw"}  # the build finished, or left nothing behind
        hits = col.query(np.full(DIM, 0.1, dtype=np.float32), k=5)
        assert hits.ids.shape == (1, 5) and None not in hits.ids[0]
    log = QueryLog(path / LOG_FILE)
    try:
        assert log.count() >= searches[0]  # every answered search was logged before the process ended
    finally:
        log.close()
