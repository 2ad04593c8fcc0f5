"""Loopback by default, the API key on writes, CORS off unless configured, and the serve command's refusals."""

from __future__ import annotations

import argparse

import httpx
import pytest

from lookalike.server.cli import add_serve_arguments, run_serve
from lookalike.server.security import check_bind, is_loopback, InsecureBindError

from .conftest import assert_error, serve
from .support import API_KEY

WRITES = [
    ("/api/collections/catalog/index", {"type": "ivf", "params": {"nlist": 4}}),
    ("/api/collections/catalog/points", {"ids": [10_000], "vectors": [[0.5] * 64]}),
    ("/api/collections/catalog/points/delete", {"ids": [0]}),
    ("/api/collections", {"name": "new", "dim": 4}),
]


@pytest.mark.parametrize("path, body", WRITES)
def test_writes_need_the_key(client, path, body):
    assert_error(client.post(path, json=body), 401, "UnauthorizedError")
    assert_error(client.post(path, json=body, headers={"X-API-Key": "wrong"}), 401, "UnauthorizedError")
    assert_error(client.post(path, json=body, headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(client.post(path, json=body, headers={"Authorization": f"Basic {API_KEY}"}), 401)
    assert client.get("/api/collections/catalog").json()["count"] == 240  # nothing changed


def test_reads_do_not_need_the_key(client):
    assert client.post("/api/collections/catalog/search", json={"text": "coat"}).status_code == 200


def test_bearer_and_header_keys_both_work(own_server):
    created = own_server.post("/api/collections", json={"name": "made-by-api", "dim": 4, "metric": "l2"},
                              headers={"Authorization": f"Bearer {API_KEY}"})
    assert created.status_code == 201 and created.json()["count"] == 0
    written = own_server.post("/api/collections/made-by-api/points", headers={"X-API-Key": API_KEY},
                              json={"ids": [1, "two"], "vectors": [[1, 0, 0, 0], [0, 1, 0, 0]],
                                    "metadata": [{"c": "x"}, None]})
    assert written.json() == {"written": 2, "count": 2}
    hits = own_server.post("/api/collections/made-by-api/search", json={"vector": [0, 1, 0, 0], "k": 1}).json()
    assert hits["hits"][0]["id"] == "two"
    assert_error(own_server.post("/api/collections", json={"name": "made-by-api", "dim": 4},
                                 headers={"X-API-Key": API_KEY}), 409, "CollectionExistsError")
    assert_error(own_server.post("/api/collections", json={"name": "../evil", "dim": 4},
                                 headers={"X-API-Key": API_KEY}), 400, "InvalidNameError")
    assert_error(own_server.post("/api/collections", json={"name": "e", "dim": 4, "embedder": "nope"},
                                 headers={"X-API-Key": API_KEY}), 400)


def test_writes_are_atomic_and_checked(own_server):
    key = {"X-API-Key": API_KEY}
    before = own_server.get("/api/collections/vectors").json()["count"]
    bad = own_server.post("/api/collections/vectors/points", headers=key,
                          json={"ids": [900, 901], "vectors": [[0.1] * 8, [0.1] * 7]})
    assert_error(bad, 400)
    duplicate = own_server.post("/api/collections/vectors/points", headers=key,
                                json={"ids": [1], "vectors": [[0.1] * 8], "replace": False})
    assert_error(duplicate, 409, "DuplicateIdError")
    assert_error(own_server.post("/api/collections/vectors/points/delete", headers=key, json={"ids": [1, 99_999]}),
                 404, "IdNotFoundError")
    smuggled = own_server.post("/api/collections/vectors/points", headers=key,
                               json={"ids": [902], "vectors": [[0.1] * 8], "metadata": [{"image": "/etc/hostname"}]})
    assert_error(smuggled, 400, "InvalidInputError")  # the image route cannot be pointed at an arbitrary file
    assert own_server.get("/api/collections/vectors").json()["count"] == before
    deleted = own_server.post("/api/collections/vectors/points/delete", headers=key, json={"where": {"group": "a"}})
    assert deleted.json()["deleted"] == 25
    assert_error(own_server.post("/api/collections/vectors/points/delete", headers=key, json={}), 422)


def test_no_cors_headers_by_default(client):
    response = client.options("/api/collections/catalog/search", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in client.get("/api/health", headers={"Origin": "https://x.example"}).headers


def test_cors_when_configured(catalog):
    running = serve(catalog[0], cors_origins=["https://shop.example"], preload=False, query_log=False)
    try:
        allowed = httpx.get(f"{running.url}/api/health", headers={"Origin": "https://shop.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
        other = httpx.get(f"{running.url}/api/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    finally:
        running.stop()


def test_security_headers(client):
    headers = client.get("/api/health").headers
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True),
                                            ("localhost", True), ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.10", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_binding_beyond_loopback_needs_a_key():
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "some-key")
    with pytest.raises(InsecureBindError):
        check_bind("0.0.0.0", None)


def _serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(list(argv))


def test_serve_refuses_an_open_bind_without_key(catalog, monkeypatch, capsys):
    monkeypatch.delenv("LOOKALIKE_API_KEY", raising=False)
    assert run_serve(_serve_args("--db", str(catalog[0]), "--host", "0.0.0.0")) == 2
    assert "API key" in capsys.readouterr().err


def test_serve_refuses_a_directory_that_is_not_a_database(tmp_path, capsys):
    assert run_serve(_serve_args("--db", str(tmp_path / "nothing"))) == 2
    assert "not a lookalike database" in capsys.readouterr().err


def test_serve_refuses_a_port_in_use(catalog, server, capsys):
    assert run_serve(_serve_args("--db", str(catalog[0]), "--port", str(server.port))) == 2
    assert "in use" in capsys.readouterr().err


def test_serve_defaults():
    args = _serve_args()
    assert (args.host, args.port, args.cors_origin) == ("127.0.0.1", 8000, [])


def test_serve_command_runs_a_server(catalog, tmp_path):
    """run_serve end to end in a child process: it prints the URL, answers, and stops cleanly on Ctrl-C."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = ("import argparse, sys; from lookalike.server.cli import add_serve_arguments, run_serve; "
            "p = argparse.ArgumentParser(); add_serve_arguments(p); sys.exit(run_serve(p.parse_args(sys.argv[1:])))")
    child = subprocess.Popen([sys.executable, "-c", code, "--db", str(catalog[0]), "--port", str(port),
                              "--no-preload", "--log-level", "warning"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except httpx.TransportError:
                assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
                time.sleep(0.1)
        assert health.json()["auth_required_for_writes"] is False
        assert httpx.post(f"http://127.0.0.1:{port}/api/collections/vectors/search",
                          json={"vector": [0.0] * 8, "k": 2}).status_code == 200
    finally:
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out
