"""The client's HTTP transport against hand-written answers from a real socket on loopback: the forms of an answer
that lookalike's own server never sends but a proxy in front of it may (chunked, no length, Connection: close),
and the broken ones (not HTTP, cut off), each a typed error or a clean retry."""

from __future__ import annotations

import socket
import threading

import pytest

from lookalike.client.transport import Transport
from lookalike.server.protocol import ServerUnavailableError


class ScriptedServer:
    """Accepts connections on loopback and answers the n-th request with ``answers[n]`` (raw bytes; None closes the
    connection without answering).  Records the requests and counts the connections."""

    def __init__(self, answers: list[bytes | None], close_after_each: bool = False):
        self.answers, self.close_after_each = list(answers), close_after_each
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            conn, _ = self.listener.accept()
            self.connections += 1
            with conn:
                while self.answers:
                    request = self._read_request(conn)
                    if request is None:
                        break
                    self.requests.append(request)
                    answer = self.answers.pop(0)
                    if answer is None:
                        break
                    conn.sendall(answer)
                    if self.close_after_each:
                        break

    @staticmethod
    def _read_request(conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += conn.recv(65536)
        return head + b"\r\n\r\n" + body


def ok(body: bytes, *headers: str) -> bytes:
    head = "\r\n".join(["HTTP/1.1 200 OK", "Content-Type: application/json", *headers])
    return head.encode() + b"\r\n\r\n" + body


def test_a_request_is_one_write_with_its_length_and_the_key():
    server = ScriptedServer([ok(b'{"a": 1}', "Content-Length: 8")])
    transport = Transport(server.url, api_key="secret")
    assert transport.post("/things", {"x": [1, 2]}) == {"a": 1}
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /api/things HTTP/1.1"
    assert "X-API-Key: secret" in lines and f"Content-Length: {len(body)}" in lines
    assert body == b'{"x": [1, 2]}'


def test_chunked_answers_and_keep_alive_reuse_one_connection():
    chunked = ok(b"4\r\n[1, \r\n3\r\n2, \r\n2\r\n3]\r\n0\r\n\r\n", "Transfer-Encoding: chunked")
    server = ScriptedServer([chunked, ok(b"[]", "Content-Length: 2")])
    transport = Transport(server.url)
    assert transport.get("/a") == [1, 2, 3]
    assert transport.get("/b") == []
    assert server.connections == 1


def test_an_answer_without_a_length_ends_with_the_connection():
    server = ScriptedServer([ok(b'{"done": true}', "Connection: close"), ok(b"[]", "Content-Length: 2")],
                            close_after_each=True)
    transport = Transport(server.url)
    assert transport.get("/a") == {"done": True}
    assert transport.get("/b") == []  # on a new connection: the first one was closed
    assert server.connections == 2


def test_an_idle_connection_the_server_dropped_is_reopened_once():
    server = ScriptedServer([ok(b"1", "Content-Length: 1"), None, ok(b"2", "Content-Length: 1")])
    transport = Transport(server.url)
    assert transport.get("/a") == 1
    assert transport.get("/b") == 2  # the dropped request went again, on a fresh connection
    assert server.connections == 2


def test_an_answer_cut_off_is_a_typed_error_and_not_sent_again():
    server = ScriptedServer([ok(b'{"partial', "Content-Length: 100"), ok(b"[]", "Content-Length: 2")],
                            close_after_each=True)
    transport = Transport(server.url)
    with pytest.raises(ServerUnavailableError, match="middle of its answer"):
        transport.post("/write", {"n": 1})
    assert len(server.requests) == 1  # a write that reached the server is never repeated


def test_an_answer_that_is_not_http_is_a_typed_error():
    server = ScriptedServer([b"SSH-2.0-OpenSSH_9.6\r\n\r\n"])
    with pytest.raises(ServerUnavailableError, match="cannot reach"):
        Transport(server.url).get("/health")


def test_a_url_without_a_valid_port_is_refused():
    from lookalike.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="port"):
        Transport("http://127.0.0.1:99999")
