"""`lookalike serve --workers N`: several processes on one port and one database answer as one server would."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .support import start_serve_process

import numpy as np
import pytest


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
    server, url = start_serve_process(path, workers=2)
    try:
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
