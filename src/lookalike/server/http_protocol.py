"""uvicorn's httptools protocol, sending each response in one write instead of two.

uvicorn writes a response's head (status line and headers) and its body with two ``transport.write`` calls, so
two ``send`` system calls; on loopback each one runs the receiver's whole TCP path in the sender's thread, and
profiling the server under a stream of searches showed them taking a quarter of the event loop's time.  This
protocol holds the head until the body's first write (the next call, in the same turn of the event loop) and
sends both together; a head not followed by a write in that turn is sent on its own (``call_soon``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_OneWriteTransport(transport, self.loop))
