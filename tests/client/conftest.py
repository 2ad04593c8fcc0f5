"""A real server (uvicorn on a free loopback port, in a thread) over a database of its own, and a Client on it."""

from __future__ import annotations

import socket

import pytest

import lookalike
from lookalike.server import create_app

from tests.server.support import ServerThread

API_KEY = "client-test-key"
# small body limit, so that batches are split across requests without big test data
LIMITS = {"max_body_bytes": 200_000, "preload": False, "query_log": False}


def start_server(db_path, **options) -> ServerThread:
    lookalike.Database(db_path).close()
    running = ServerThread(create_app(db_path, **{"api_key": API_KEY, **LIMITS, **options}))
    # The listening socket is made with proto 0, so asyncio does not turn Nagle off on the connections it accepts
    # (it checks proto == IPPROTO_TCP), and each answer waits ~40 ms for a delayed ACK.  Linux copies TCP_NODELAY
    # from the listening socket to accepted ones.
    running.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return running.start()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("client-server") / "db")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def client(server):
    with lookalike.Client(server.url, api_key=API_KEY) as remote:
        yield remote


@pytest.fixture
def database(tmp_path):
    with lookalike.Database(tmp_path / "embedded") as db:
        yield db


@pytest.fixture(params=["embedded", "server"])
def db(request, database, client):
    """The same API twice: an embedded Database and a Client; collections are dropped afterwards."""
    target = database if request.param == "embedded" else client
    before = set(target.list_collections())
    yield target
    for name in set(target.list_collections()) - before:
        target.drop_collection(name)
