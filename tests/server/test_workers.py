"""`lookalike serve --workers N`: several processes on one port and one database answer as one server would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workers_db(tmp_path_factory):
    import lookalike

    path = tmp_path_factory.mktemp("workers") / "db"
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((500, 16)).astype(np.float32)
    with lookalike.Database(path) as db:
        col = db.create_collection("items", dim=16, metric="cosine")
        col.add([f"item-{i}" for i in range(500)], vectors, [{"n": i} for i in range(500)])
        col.create_index("hnsw", M=8, ef_construction=64)
    return path, vectors


def test_two_workers_answer_like_the_embedded_collection(workers_db):
    import lookalike

    path, vectors = workers_db
    port = free_port()
    env = {**os.environ, "LOOKALIKE_API_KEY": ""}
    server = subprocess.Popen([sys.executable, "-m", "lookalike.cli", "serve", "--db", str(path), "--port", str(port),
                               "--workers", "2", "--log-level", "warning"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.3)
        with lookalike.Database(path) as db:
            expected = db.get_collection("items").query(vectors[:40], k=5, ef=64)

        def ask(row: int):
            with lookalike.Client(url) as client:
                return client.get_collection("items").query(vectors[row], k=5, ef=64).ids[0].tolist()

        with ThreadPoolExecutor(4) as pool:  # concurrent requests spread over both workers
            answers = list(pool.map(ask, range(40)))
        assert answers == expected.ids.tolist()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_workers_must_be_positive(workers_db):
    from lookalike.cli import main

    assert main(["serve", "--db", str(workers_db[0]), "--workers", "0"]) == 2
