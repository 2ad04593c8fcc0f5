"""What travels between the server and ``lookalike.Client``, in one module that imports neither FastAPI nor an HTTP
library, so both sides share it.

Arrays.  A batch of vectors is not sent as JSON text of floats (about 10 bytes per float, slow to parse both ways):
it travels as ``{"dtype": "float32", "shape": [n, d], "data": "<base64>"}``, the base64 of the array's bytes as
little-endian float32 in row-major order (4 bytes per float, x4/3 for base64).  Distances travel the same way,
which also carries the +inf of padded hits (JSON has no inf).

Errors.  Every error answer is ``{"error": {"type": "DimensionMismatchError", "message": ...}}``; ``error_class``
turns the ``type`` back into the class the server raised (lookalike's error tree, the server's own errors, the
embedders' errors), so the client raises what the embedded API would have raised.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
from typing import Any

import numpy as np

from ..errors import InvalidInputError, LookalikeError, NoEmbedderError  # noqa: F401 (NoEmbedderError: re-exported)

WIRE_DTYPE = "float32"
_LITTLE_ENDIAN_F32 = np.dtype("<f4")


# --- errors the server raises itself (the core tree lives in lookalike/errors.py) -----------------------------------
class PayloadTooLargeError(InvalidInputError):
    """An upload or a picture over the server's limits."""

    http_status = 413


class UnauthorizedError(LookalikeError, PermissionError):
    """A write without the right API key."""

    http_status = 401


class BuildInProgressError(LookalikeError, RuntimeError):
    """An index build was asked for while another one runs on the same collection, a query names the index being
    built for the first time, or a collection is dropped while one of its indexes is being built."""

    http_status = 409


class ServerError(LookalikeError):
    """An error answer whose ``type`` names no class this lookalike knows (a newer server, a proxy in between, a
    bug: 500).  ``type_name`` is the server's name for it and ``http_status`` the status it came with."""

    def __init__(self, message: str, type_name: str = "ServerError", http_status: int = 500):
        super().__init__(message)
        self._type_name = type_name
        self.http_status = http_status

    @property
    def type_name(self) -> str:
        return self._type_name


class ServerUnavailableError(LookalikeError, ConnectionError):
    """The server could not be reached (refused, reset, timed out) or did not answer with JSON."""

    http_status = 503


# --- arrays --------------------------------------------------------------------------------------------------------
def encode_array(array: Any) -> dict[str, Any]:
    """``{"dtype": "float32", "shape": [...], "data": base64}`` of an array of numbers."""
    arr = np.ascontiguousarray(array, dtype=_LITTLE_ENDIAN_F32)
    return {"dtype": WIRE_DTYPE, "shape": list(arr.shape), "data": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_array(payload: Any, *, ndim: int | None = None, what: str = "vectors") -> np.ndarray:
    """The float32 array an ``encode_array`` payload carries (writable, native byte order).  Anything malformed
    (wrong dtype, a shape that does not match the byte count, bad base64) raises InvalidInputError."""
    if not isinstance(payload, dict):
        raise InvalidInputError(f"{what} must be an encoded array {{dtype, shape, data}}, got {type(payload).__name__}")
    dtype, shape, data = payload.get("dtype", WIRE_DTYPE), payload.get("shape"), payload.get("data")
    if dtype != WIRE_DTYPE:
        raise InvalidInputError(f"{what}: dtype must be {WIRE_DTYPE!r} (little-endian), got {dtype!r}")
    return decode_fields(shape, data, ndim=ndim, what=what)


def decode_fields(shape: Any, data: Any, *, ndim: int | None = None, what: str = "vectors") -> np.ndarray:
    """``decode_array`` of a payload whose dtype is known to be the wire's (a validated ``EncodedArray``)."""
    if not isinstance(shape, (list, tuple)) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                       for s in shape):
        raise InvalidInputError(f"{what}: shape must be a list of non-negative integers, got {shape!r}")
    if ndim is not None and len(shape) != ndim:
        raise InvalidInputError(f"{what}: expected a {ndim}-D shape, got {list(shape)}")
    if not isinstance(data, str):
        raise InvalidInputError(f"{what}: data must be a base64 string")
    try:  # strict, in C (b64decode's validate=True checks with a regular expression: ms per MB)
        raw = binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(f"{what}: data is not valid base64: {exc}") from None
    expected = 4 * math.prod(shape)
    if len(raw) != expected:
        raise InvalidInputError(
            f"{what}: shape {list(shape)} needs {expected} bytes of float32, the data holds {len(raw)}"
        )
    return np.frombuffer(raw, dtype=_LITTLE_ENDIAN_F32).astype(np.float32).reshape(shape)


# --- errors --------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _known_errors() -> dict[str, type[LookalikeError]]:
    from .. import errors as core
    from ..embed import base as embed

    classes: dict[str, type[LookalikeError]] = {}
    for namespace in (vars(core), vars(embed), globals()):
        for name, value in namespace.items():
            if isinstance(value, type) and issubclass(value, LookalikeError) and name.endswith("Error"):
                classes[name] = value
    return classes


# names the HTTP layer (not a lookalike class) gives its errors, and the class that means the same
_HTTP_NAMES = {"PayloadTooLarge": "PayloadTooLargeError", "Unauthorized": "UnauthorizedError"}


def error_class(type_name: str) -> type[LookalikeError] | None:
    """The class named ``type_name`` in lookalike's error tree, the server's errors or the embedders' errors."""
    return _known_errors().get(_HTTP_NAMES.get(type_name, type_name))


def rebuild_error(status: int | None, body: Any) -> LookalikeError:
    """The exception an error answer (``{"error": {"type", "message"}}``) stands for: the class its ``type`` names
    when it is one of ours, else a ServerError; a request refused by the HTTP layer itself (422: the body did not
    validate) is an InvalidInputError.  ``status`` None: an error reported inside an answer (a failed build)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ServerError(f"HTTP {status} without a lookalike error body: {str(body)[:200]}", "HTTPError",
                           status or 500)
    type_name, message = str(error.get("type", "HTTPError")), str(error.get("message", ""))
    klass = error_class(type_name)
    if klass is None or klass is ServerError:
        if status in (400, 422):
            exc: LookalikeError = InvalidInputError(f"{type_name}: {message}")
            exc.http_status = status
            return exc
        return ServerError(message, type_name, status or 500)
    exc = klass(message)
    if status is not None and exc.http_status != status:
        exc.http_status = status
    return exc


__all__ = [
    "BuildInProgressError", "NoEmbedderError", "PayloadTooLargeError", "ServerError", "ServerUnavailableError",
    "UnauthorizedError", "decode_array", "encode_array", "error_class", "rebuild_error",
]
