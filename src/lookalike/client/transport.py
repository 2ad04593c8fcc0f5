"""JSON over HTTP with nothing but the standard library: one keep-alive connection per thread, the API key on every
request, and error answers turned back into lookalike's typed errors (``protocol.rebuild_error``).

``http.client`` rather than a third-party HTTP library keeps ``lookalike.Client`` free of dependencies beyond
lookalike's own.  A request that fails because the server closed an idle keep-alive connection is sent once more on a
fresh one; any other failure to reach the server raises ServerUnavailableError.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import InvalidInputError
from ..server.protocol import ServerUnavailableError, rebuild_error

# a server that closed the idle connection we reused: the request never reached it, so sending it again is safe
_STALE_CONNECTION = (http.client.RemoteDisconnected, http.client.CannotSendRequest, ConnectionResetError,
                     BrokenPipeError)


class Transport:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError(f"the server URL must be http(s)://host[:port][/prefix], got {url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/") + "/api"
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["X-API-Key"] = api_key
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
            payload = None if body is None else json.dumps(body, allow_nan=False, ensure_ascii=False).encode("utf-8")
        for attempt in range(2):
            connection, reused = self._connection()
            try:
                connection.request(method, self._prefix + path, body=payload, headers=headers or self._headers)
                response = connection.getresponse()
                data = response.read()
            except _STALE_CONNECTION as exc:
                self.close_connection()
                if reused and attempt == 0:
                    continue
                raise ServerUnavailableError(f"{method} {self.url}{path}: the connection was closed ({exc})") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close_connection()
                raise ServerUnavailableError(f"cannot reach the lookalike server at {self.url}: {exc}") from None
            if response.will_close:
                self.close_connection()
            return self._answer(method, path, response.status, data)
        raise AssertionError("unreachable")  # pragma: no cover

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
    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        klass = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = klass(self._host, self._port, timeout=self.timeout)
        self._local.connection = connection
        return connection, False

    def close_connection(self) -> None:
        """Close this thread's connection (the next request opens a new one)."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()


def segment(value: str) -> str:
    """A path segment (a collection or an index name), percent-encoded."""
    return quote(str(value), safe="")
