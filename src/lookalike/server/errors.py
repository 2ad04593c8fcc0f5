"""Errors -> JSON responses, in one place.

Every error answer has the same shape, whatever raised it::

    {"error": {"type": "DimensionMismatchError", "message": "expected 384 dims, got 3: ..."}}

* a ``LookalikeError`` answers with its own ``http_status`` (400 bad input, 404 unknown, 409 conflict, ...);
* a request FastAPI cannot validate (bad JSON, a missing or mistyped field, k out of range) answers 422, with the
  offending fields listed under ``error.details``;
* Starlette's HTTP errors (unknown route 404, wrong method 405, body over the limit 413) keep their status;
* anything else is a bug: 500 with a generic message (the traceback goes to the server log, not to the client).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import LookalikeError
from .protocol import BuildInProgressError, NoEmbedderError, PayloadTooLargeError, UnauthorizedError  # noqa: F401

log = logging.getLogger("lookalike.server")

_HTTP_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "ValidationError",
}


# --- errors raised by the server itself are defined in protocol.py (no FastAPI there, so the client rebuilds them)
class BodyTooLargeError(StarletteHTTPException):
    """Raised while a request body streams in, once it passes the limit.  It is an HTTPException so that FastAPI's
    body parsing lets it through unchanged (any other exception there becomes a generic 400)."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body over the limit of {limit} bytes")


# --- the JSON shape ------------------------------------------------------------------------------------------------
def error_body(type_name: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": type_name, "message": message, **extra}}


def error_response(status: int, type_name: str, message: str, headers: dict[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(type_name, message, **extra), status_code=status, headers=headers)


def _counted(request: Request, status: int, type_name: str) -> None:
    """Count an error answer in the app's metrics (lookalike_errors_total)."""
    request.app.state.lookalike.metrics.failed(type_name, status)


async def _lookalike_error(request: Request, exc: LookalikeError) -> JSONResponse:
    status = int(getattr(exc, "http_status", 500))
    if status >= 500:
        log.error("%s on %s %s: %s", exc.type_name, request.method, request.url.path, exc)
    headers = {"WWW-Authenticate": 'Bearer realm="lookalike"'} if status == 401 else None
    _counted(request, status, exc.type_name)
    return error_response(status, exc.type_name, str(exc), headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    details = [
        {"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", "")), "type": err.get("type")}
        for err in exc.errors()[:20]
    ]
    summary = "; ".join(f"{'.'.join(d['loc'][1:] or d['loc'])}: {d['msg']}" for d in details[:5])
    _counted(request, 422, "ValidationError")
    return error_response(422, "ValidationError", summary or "invalid request", details=details)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.method} {request.url.path}: see /docs for the API"
    type_name = _HTTP_TYPES.get(exc.status_code, "HTTPError")
    _counted(request, exc.status_code, type_name)
    return error_response(exc.status_code, type_name, message,
                          headers=getattr(exc, "headers", None))


async def _recursion_error(request: Request, exc: RecursionError) -> JSONResponse:
    _counted(request, 400, "InvalidInputError")
    return error_response(400, "InvalidInputError", "the request is nested too deeply")


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    _counted(request, 500, "InternalError")
    return error_response(500, "InternalError", "internal server error: see the server log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LookalikeError, _lookalike_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RecursionError, _recursion_error)
    app.add_exception_handler(Exception, _unexpected_error)
