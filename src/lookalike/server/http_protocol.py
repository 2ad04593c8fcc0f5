"""The server's HTTP protocol: uvicorn's httptools protocol, with each response sent in one write, and a plain
query answered as soon as its last byte is parsed, below ASGI.

One write: uvicorn writes a response's head (status line and headers) and its body with two ``transport.write``
calls, so two ``send`` system calls; on loopback each one runs the receiver's whole TCP path in the sender's thread,
and profiling the server under a stream of searches showed them taking a quarter of the event loop's time.  The
transport here holds the head until the body's first write (the next call, in the same turn of the event loop)
and sends both together; a head not followed by a write in that turn is sent on its own (``call_soon``).

The query lane: through ASGI every request costs uvicorn a request-response cycle, a task, an event and the
messages of ``receive`` and ``send`` (about a third of the server's CPU per single query once the framework's
layers were bypassed by ``fast_lane.QueryFastLane``).  A request that the lane recognises as a plain query
(``QueryFastLane.plain_query``: POST .../query, a JSON body of announced length, no CORS, no access log) is
collected here instead; once whole, the lane answers it at once if it can (``QueryFastLane.answer_now``: one
vector, the collection open and nothing holding it) and the answer is written with the headers uvicorn would
have written.  Otherwise (a batch, an error, a busy collection) the request is handed to uvicorn exactly as it
would have gone: its cycle made, its body given, its ASGI task started.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .fast_lane import ANSWER_HEADERS, QueryFastLane

STATUS_OK = b"HTTP/1.1 200 OK\r\n"


class _OneWriteTransport:
    """A transport that joins a response head to the write that follows it; everything else passes through."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head + data)
        elif data.startswith(b"HTTP/") and data.endswith(b"\r\n\r\n"):
            self._head = bytes(data)
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def _flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class LaneHttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_OneWriteTransport(transport, self.loop))
        self._lane = _lane_of(self.app)
        self._lane_query: tuple[str, int, bytearray] | None = None  # (collection, announced length, body so far)
        self._close_after_answer = False  # the server is stopping: the query being read is answered, then closed

    def on_headers_complete(self) -> None:
        self._lane_query = self._plain_query()
        if self._lane_query is None:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._lane_query is None:
            super().on_body(body)
        else:
            self._lane_query[2].extend(body)

    def on_message_complete(self) -> None:
        if self._lane_query is None:
            return super().on_message_complete()
        name, length, body = self._lane_query
        self._lane_query = None
        content = self._lane.answer_now(name, bytes(body)) if len(body) == length else None
        if content is None:
            self._the_asgi_way(body)
            return
        self.transport.write(self._response(content))
        self.on_response_complete()  # uvicorn's own end of a response: the request counted, keep-alive armed
        if self._close_after_answer:
            self.transport.close()

    def shutdown(self) -> None:
        """The server is stopping: a query whose body is still being read is answered first (as uvicorn lets a
        request under way finish), then its connection is closed."""
        if self._lane_query is None:
            super().shutdown()
        else:
            self._close_after_answer = True

    def _plain_query(self) -> tuple[str, int, bytearray] | None:
        """(collection, announced length, an empty body) if the request whose headers were just parsed is one the
        lane may answer: a plain query, on a connection with nothing else under way."""
        if self._lane is None or not self._nothing_else_under_way() or not self._plain_http():
            return None
        name, length = self._lane.plain_query(self.parser.get_method().decode("ascii"),
                                              self.root_path + self.url.decode("latin-1"), self.headers)
        return None if name is None else (name, length, bytearray())

    def _nothing_else_under_way(self) -> bool:
        """No earlier request of the connection still being answered, no write backed up, no concurrency limit
        for uvicorn to enforce, no access log (uvicorn writes it as its cycles answer)."""
        return not (self.config.access_log or self.limit_concurrency is not None or self.pipeline
                    or (self.cycle is not None and not self.cycle.response_complete) or self.flow.write_paused)

    def _plain_http(self) -> bool:
        """HTTP/1.1 kept alive, no upgrade, no 100-continue, a path without query string or escapes (the lane
        checks the headers: a body sized by its content-length alone)."""
        return (self.parser.get_http_version() == "1.1" and self.parser.should_keep_alive()
                and not self.parser.should_upgrade() and not self.expect_100_continue
                and b"?" not in self.url and b"%" not in self.url)

    def _the_asgi_way(self, body: bytearray) -> None:
        """Hand the request, whole, to uvicorn as its parser would have: the cycle made, the body given, the end
        of the message told (the ASGI task starts with the cycle)."""
        super().on_headers_complete()
        if self._close_after_answer:
            self.cycle.keep_alive = False  # uvicorn closes the connection after this response
        if body:
            super().on_body(bytes(body))
        super().on_message_complete()

    def _response(self, content: bytes) -> bytes:
        """A 200 with the lane's answer and the headers the ASGI way writes (uvicorn's defaults first: the date)."""
        parts = [STATUS_OK]
        for name, value in (*self.server_state.default_headers, (b"content-length", b"%d" % len(content)),
                            *ANSWER_HEADERS):
            parts += (name, b": ", value, b"\r\n")
        parts += (b"\r\n", content)
        return b"".join(parts)


def _lane_of(app: Any) -> QueryFastLane | None:
    """The query lane among the ASGI apps uvicorn wraps around each other (its proxy-headers middleware, ...)."""
    while app is not None and not isinstance(app, QueryFastLane):
        app = getattr(app, "app", None)
    return app
