"""Fixtures: a synthetic catalog served by a real uvicorn server on a free loopback port, and an httpx client."""

from __future__ import annotations

import httpx
import pytest

from .support import API_KEY, ITEMS_DIM, ServerThread, build_catalog, pick_embedder

LIMITS = {"max_upload_bytes": 300_000, "max_body_bytes": 2_000_000, "max_image_pixels": 4_000_000}


@pytest.fixture(scope="session")
def embedder():
    return pick_embedder()


@pytest.fixture(scope="session")
def catalog(tmp_path_factory, embedder):
    """(database path, item vectors) of the shared read-mostly catalog."""
    db = tmp_path_factory.mktemp("served") / "db"
    vectors = build_catalog(db, embedder)
    return db, vectors


def serve(db, **options):
    from lookalike.server import create_app

    return ServerThread(create_app(db, **{"api_key": API_KEY, **LIMITS, **options})).start()


@pytest.fixture(scope="session")
def items_db(tmp_path_factory):
    """A database with one small collection, ``items`` (300 x 8, l2, HNSW; metadata with a non-ASCII value), for
    the query lanes' tests."""
    import numpy as np

    from lookalike import Database

    path = tmp_path_factory.mktemp("items") / "db"
    rng = np.random.default_rng(0)
    with Database(path) as db:
        col = db.create_collection("items", dim=ITEMS_DIM)
        col.add(list(range(300)), rng.normal(size=(300, ITEMS_DIM)).astype(np.float32),
                [{"group": "é" if i % 2 else "b", "n": i} for i in range(300)])
        col.create_index("hnsw", M=8)
    return path


@pytest.fixture(scope="session")
def server(catalog):
    running = serve(catalog[0])
    yield running
    running.stop()


@pytest.fixture(scope="session")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def own_server(tmp_path_factory, embedder):
    """A server on a database of its own, for tests that write (rebuilds, upserts)."""
    db = tmp_path_factory.mktemp("own") / "db"
    build_catalog(db, embedder, with_ivf=False)
    running = serve(db)
    with httpx.Client(base_url=running.url, timeout=60) as http:
        yield http
    running.stop()


def assert_error(response: httpx.Response, status: int, type_name: str | None = None) -> dict:
    """The response is the JSON error shape with this status (and error type)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"type", "message"} and error["message"]
    if type_name is not None:
        assert error["type"] == type_name, error
    return error
