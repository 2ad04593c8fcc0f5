"""What keeps the server safe to run: loopback by default, an API key on writes, bounded request bodies.

* ``check_bind``: binding any address other than loopback requires an API key (a search page left open on a
  network with writable endpoints is how catalogs get wiped).
* ``require_api_key``: a FastAPI dependency on every write endpoint.  The key comes as ``X-API-Key: KEY`` or
  ``Authorization: Bearer KEY``, compared in constant time.  With no key configured (loopback only), writes are open.
* ``BodyLimitMiddleware``: refuses a body whose Content-Length is over the limit before reading it, and stops one
  that streams past it (chunked uploads), with 413.  Photo uploads have their own, smaller limit.
* ``SecurityHeadersMiddleware``: nosniff / no framing / no referrer everywhere, and a strict Content-Security-Policy
  on the page (it loads only its own script and style).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import socket

from fastapi import Request

from .errors import BodyTooLargeError, UnauthorizedError, error_body

API_KEY_ENV = "LOOKALIKE_API_KEY"
API_KEY_HEADER = "X-API-Key"
MAX_DRAIN = 64 * 1024 * 1024  # a refused body up to this size is read and dropped before the 413 is sent
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


class InsecureBindError(ValueError):
    """A non-loopback address without an API key."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and names that resolve only to them (localhost)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def check_bind(host: str, api_key: str | None) -> None:
    if not is_loopback(host) and not api_key:
        raise InsecureBindError(
            f"refusing to serve on {host} without an API key: pass --api-key or set ${API_KEY_ENV} "
            "(writes then need it), or bind 127.0.0.1"
        )


def resolve_api_key(flag_value: str | None) -> str | None:
    key = flag_value if flag_value is not None else os.environ.get(API_KEY_ENV)
    return key or None


def presented_key(request: Request) -> str | None:
    key = request.headers.get(API_KEY_HEADER)
    if key:
        return key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def require_api_key(request: Request) -> None:
    """FastAPI dependency of write endpoints."""
    expected = request.app.state.lookalike.config.api_key
    if expected is None:
        return
    given = presented_key(request)
    if given is None:
        raise UnauthorizedError(f"this endpoint writes: send the API key as '{API_KEY_HEADER}: KEY' or a Bearer token")
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8")):
        raise UnauthorizedError("wrong API key")


# --- ASGI middlewares (plain ASGI: they see the raw body stream) ---------------------------------------------------
class BodyLimitMiddleware:
    """413 for a request body over ``limit_for(path)`` bytes, announced or streamed."""

    def __init__(self, app, max_body: int, max_upload: int, upload_suffix: str = "/search/image"):
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload
        self.upload_suffix = upload_suffix

    def limit_for(self, path: str) -> int:
        # a photo upload is a file plus a few small form fields; everything else is JSON
        return self.max_upload + 64 * 1024 if path.endswith(self.upload_suffix) else self.max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope.get("path", ""))
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                announced = int(length)
            except ValueError:
                announced = -1
            if announced < 0:
                return await _send_json(send, 400, error_body("BadRequest", "invalid Content-Length header"))
            if announced > limit:
                await _drain(receive, announced)
                return await _send_json(send, 413, error_body(
                    "PayloadTooLarge", f"request body of {announced} bytes is over the limit of {limit} bytes"))
        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError as exc:
            if started:
                raise
            await _drain(receive, MAX_DRAIN)
            await _send_json(send, 413, error_body("PayloadTooLarge", exc.detail))


#: on every response: no content-type sniffing, no referrer, no framing
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY")]


class SecurityHeadersMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        page = path == "/" or path.startswith("/static/")

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or []) + SECURITY_HEADERS
                if page:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


async def _drain(receive, announced: int) -> None:
    """Read and drop the rest of a refused body (up to MAX_DRAIN bytes), so that the client, still sending, gets
    the 413 rather than a connection reset; past that the connection is closed on it."""
    if announced > MAX_DRAIN:
        return
    drained = 0
    while drained <= MAX_DRAIN:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _send_json(send, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})
