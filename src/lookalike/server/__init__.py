"""The HTTP API (FastAPI) and the search page of lookalike.

``create_app(db_path, ...)`` makes the ASGI app; ``lookalike serve`` (``server/cli.py``) runs it with uvicorn.
Importing this package is cheap: FastAPI is imported only when an app is created.  See docs/server.md.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "ServerConfig":
        from .state import ServerConfig

        return ServerConfig
    raise AttributeError(f"module 'lookalike.server' has no attribute {name!r}")


__all__ = ["create_app", "ServerConfig"]
