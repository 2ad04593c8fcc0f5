"""JSON over HTTP/1.1: one keep-alive connection per thread, the API key on every request, and error answers turned
back into lookalike's typed errors (``protocol.rebuild_error``).

Each request is written to the socket in one send (request line, headers and body together) and the answer is
read with httptools, the C HTTP parser (llhttp) that lookalike's server already runs on.  The standard library's
``http.client`` did the same job with two sends a request, a file object per answer and the headers parsed by
the ``email`` package, and cost the client more CPU than the server's own work a query: measured on loopback
against the same server, a single query took 225-249 us of the client's CPU with it and 133-148 us with this (the
round trip 506-550 -> 366-461 us).  On a small machine a client's CPU is taken from the server beside it.

A request that fails because the server closed an idle keep-alive connection (nothing of an answer came back on a
reused connection) is sent once more on a fresh one; any other failure to reach the server raises
ServerUnavailableError.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import uuid
from typing import Any
from urllib.parse import quote, urlsplit

import httptools

from ..errors import InvalidInputError
from ..server.protocol import ServerUnavailableError, rebuild_error

RECEIVE_BYTES = 256 * 1024  # one recv; an answer of k=10 hits is about 1 KB, a batch's a few hundred KB


class StaleConnection(Exception):
    """The server closed the connection before any byte of the answer: an idle keep-alive connection it dropped."""


class BrokenAnswer(OSError):
    """The server closed the connection in the middle of its answer (the request reached it: never sent again)."""


class Answer:
    """httptools' callbacks for one response: its body, and whether the whole of it has arrived."""

    __slots__ = ("parser", "body", "framed", "headers_done", "keep_alive", "complete")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.framed = False  # its length is known (Content-Length or chunked), so it does not end with the connection
        self.headers_done = self.keep_alive = self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()  # read here: the parser forgets it once the answer ends

    def on_body(self, data: bytes) -> None:
        self.body.append(data)

    def on_message_complete(self) -> None:
        self.complete = True


class Connection:
    """One HTTP/1.1 connection: ``exchange`` sends a request and returns (status, body, keep-alive)."""

    def __init__(self, host: str, port: int, *, https: bool, timeout: float):
        sock = socket.create_connection((host, port), timeout=timeout)
        # the request goes out in one send, so Nagle would only delay it (waiting for the ACK of the last answer)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if https:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        self.sock = sock

    def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        self.sock.sendall(request)
        answer = Answer()
        received = False
        while not answer.complete:
            data = self.sock.recv(RECEIVE_BYTES)
            if not data:
                if not received:
                    raise StaleConnection()
                if answer.headers_done and not answer.framed:  # an answer without a length ends with the connection
                    return answer.parser.get_status_code(), b"".join(answer.body), False
                raise BrokenAnswer("the server closed the connection in the middle of its answer")
            received = True
            answer.parser.feed_data(data)
        return answer.parser.get_status_code(), b"".join(answer.body), answer.keep_alive

    def close(self) -> None:
        self.sock.close()


class Transport:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError(f"the server URL must be http(s)://host[:port][/prefix], got {url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        try:
            self._port = parts.port or (443 if self._https else 80)
        except ValueError:
            raise InvalidInputError(f"the server URL has no valid port: {url!r}") from None
        self._prefix = parts.path.rstrip("/") + "/api"
        host_header = parts.netloc.rpartition("@")[2]  # no user:password@ in the Host header
        headers = {"Host": host_header, "Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            headers["X-API-Key"] = api_key
        self._headers = headers
        self.timeout = timeout
        self._local = threading.local()

    # ------------------------------------------------------------------------------------------------ requests
    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def post_form(self, path: str, fields: dict[str, str], file_name: str, file_bytes: bytes) -> Any:
        """POST a multipart form (text ``fields`` and one file, the field ``file``) and return its JSON answer."""
        boundary = f"lookalike-{uuid.uuid4().hex}"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
                 for name, value in fields.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + file_bytes + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        headers = {**self._headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self.request("POST", path, body=b"".join(parts), headers=headers)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        """Send one request (a JSON body, or bytes with their ``headers``) and return its JSON answer; an error
        answer raises the error it names."""
        if isinstance(body, bytes):
            payload = body
        else:
            payload = b"" if body is None else json.dumps(body, allow_nan=False, ensure_ascii=False).encode("utf-8")
        request = self._head(method, path, headers or self._headers, len(payload)) + payload
        for attempt in range(2):
            reused = getattr(self._local, "connection", None) is not None
            try:
                status, data, keep_alive = self._connection().exchange(request)
            except (StaleConnection, BrokenPipeError, ConnectionResetError) as exc:
                self.close_connection()
                if reused and attempt == 0:  # the server dropped the idle connection: the request never reached it
                    continue
                raise ServerUnavailableError(
                    f"{method} {self.url}{path}: the connection was closed ({str(exc) or 'no answer'})") from None
            except (OSError, httptools.HttpParserError) as exc:
                self.close_connection()
                raise ServerUnavailableError(f"cannot reach the lookalike server at {self.url}: {exc}") from None
            if not keep_alive:
                self.close_connection()
            return self._answer(method, path, status, data)
        raise AssertionError("unreachable")  # pragma: no cover

    def _head(self, method: str, path: str, headers: dict[str, str], length: int) -> bytes:
        lines = [f"{method} {self._prefix}{path} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if length or method == "POST":
            lines.append(f"Content-Length: {length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _answer(self, method: str, path: str, status: int, data: bytes) -> Any:
        try:
            answer = json.loads(data) if data else None
        except ValueError:
            answer = None
            if status < 400:
                raise ServerUnavailableError(
                    f"{method} {self.url}{path} answered {status} with no JSON: is this a lookalike server?"
                ) from None
        if status >= 400:
            raise rebuild_error(status, answer if answer is not None else data[:200].decode("utf-8", "replace"))
        return answer

    # ------------------------------------------------------------------------------------------------ connections
    def _connection(self) -> Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = Connection(self._host, self._port, https=self._https, timeout=self.timeout)
            self._local.connection = connection
        return connection

    def close_connection(self) -> None:
        """Close this thread's connection (the next request opens a new one)."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()


def segment(value: str) -> str:
    """A path segment (a collection or an index name), percent-encoded."""
    return quote(str(value), safe="")
