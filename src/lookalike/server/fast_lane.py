"""The request a server answers most, answered below the framework: ``POST /api/collections/{name}/query``.

Through FastAPI a single vector query passes some ten ASGI layers on its way in and out (the error, telemetry,
body-limit and header middlewares, two routers, the endpoint's dependency scope), each wrapping ``receive`` and
``send``: profiled under a stream of single queries, 0.39 ms of server CPU a request, of which the query itself
took 0.05 ms.  With four clients on two cores the one server process was the bottleneck.

``QueryFastLane`` is the outermost ASGI app.  A query request with nothing unusual about it (a JSON body whose
announced length is within the limit, no CORS to answer) is read here, validated by the same schema
(``QueryRequest``), answered by the same code as the route (``data.answer_query``) and serialised by the same
JSON writer (pydantic's), with the same security headers.  Anything else, and any error on the way (a
bad body, an unknown collection, a wrong parameter), goes to the full application with the body replayed, which
answers exactly as it would have: the lane never writes an error of its own.

Below ASGI itself, the server's HTTP protocol (``http_protocol.LaneHttpProtocol``) asks the lane first
(``answer_now``), as soon as the request's last byte is parsed: a query that can be answered at once, without
waiting for anything, is answered there, with no ASGI cycle, task or messages; any other goes the ASGI way.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import TypeAdapter

from .data import answer_query, answer_query_now
from .schemas import QueryRequest
from .security import SECURITY_HEADERS

QUERY_PATH = re.compile(r"/api/collections/([^/]+)/query")
_JSON = TypeAdapter(dict[str, Any])  # pydantic's own JSON writer, as FastAPI's (the answer is built to QueryResponse)
_JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")
ANSWER_HEADERS = ((b"content-type", b"application/json"), *SECURITY_HEADERS)  # and its content-length


class QueryFastLane:
    """Wraps the FastAPI ``app`` (whose ``state.lookalike`` is the server's state)."""

    def __init__(self, app: Any):
        self.app = app
        self.state = app.state.lookalike

    async def __call__(self, scope, receive, send):
        name, length = self._query_of(scope)
        if name is None:
            return await self.app(scope, receive, send)
        body, more, whole = await _read_body(receive, length)
        if not whole:  # not the body announced, or the client went away: the full app sees it as it came
            return await self.app(scope, _replay(body, receive, more), send)
        try:
            answer = await answer_query(self.state, name, QueryRequest.model_validate_json(body))
            content = _JSON.dump_json(answer)
        except Exception:  # the full app answers with its error handlers (a query only reads: asking twice is safe)
            return await self.app(scope, _replay(body, receive), send)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-length", str(len(content)).encode()), *ANSWER_HEADERS]})
        await send({"type": "http.response.body", "body": content})

    def answer_now(self, name: str, body: bytes) -> bytes | None:
        """The JSON answer of a query of collection ``name`` (the request's ``body``) that can be given at once, on
        the calling thread (the event loop): one vector, the collection open and nothing holding it.  None for any
        other, and for any error: the ASGI way then answers it (a query only reads: asking twice is safe)."""
        try:
            answer = answer_query_now(self.state, name, QueryRequest.model_validate_json(body))
            return None if answer is None else _JSON.dump_json(answer)
        except Exception:
            return None

    def _query_of(self, scope) -> tuple[str | None, int]:
        if scope["type"] != "http":
            return None, 0
        return self.plain_query(scope["method"], scope["path"], scope["headers"])

    def plain_query(self, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[str | None, int]:
        """(the collection named by a plain query request, its body's announced length), else (None, 0)."""
        if method != "POST" or self.state.config.cors_origins:
            return None, 0
        match = QUERY_PATH.fullmatch(path)
        if match is None:
            return None, 0
        headers = dict(headers)
        if headers.get(b"content-type", b"").lower() not in _JSON_TYPES or b"transfer-encoding" in headers:
            return None, 0  # not JSON, or a body not sized by its content-length alone
        length = headers.get(b"content-length", b"")
        if not length.isdigit() or not 0 < int(length) <= self.state.config.max_body_bytes:
            return None, 0
        return match.group(1), int(length)


async def _read_body(receive, announced: int) -> tuple[bytes, bool, bool]:
    """(what was read, whether more is to come, whether it is the whole body as announced): reading stops at the
    first message that is not a part of the body, or past the announced length."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), False, False
        chunk = message.get("body", b"")
        parts.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
        if size > announced or not more:
            return b"".join(parts), more, size == announced and not more


def _replay(body: bytes, receive, more_body: bool = False):
    """A ``receive`` that gives back ``body`` first, then the client's next messages."""
    pending = [{"type": "http.request", "body": body, "more_body": more_body}]

    async def again():
        return pending.pop() if pending else await receive()

    return again
