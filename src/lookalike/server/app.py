"""``create_app``: the FastAPI application of one database directory (API under /api, the page at /)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..web import STATIC_DIR, TEMPLATES_DIR
from .errors import install_error_handlers
from .data import router as data_router
from .routes import router
from .snapshots import router as snapshots_router
from .security import BodyLimitMiddleware, SecurityHeadersMiddleware
from .state import ServerConfig, ServerState

log = logging.getLogger("lookalike.server")

DESCRIPTION = """Search a lookalike database by text, photo or vector; create and drop collections; add, upsert, get
and delete points in batches; batch query by vectors; rebuild indexes while it serves; read the query log.  Batches
of vectors travel as `{"dtype": "float32", "shape": [n, dim], "data": base64}` (little-endian float32, row-major).
Errors are JSON: `{"error": {"type": ..., "message": ...}}`.  Write endpoints need the API key when the server has
one (`X-API-Key` header or `Authorization: Bearer`).  `lookalike.Client` speaks this API from Python."""


def settle_for_serving() -> None:
    """Two interpreter settings for a server whose requests share one process.  Everything loaded so far (the
    modules, the collections, the models) goes to the garbage collector's permanent generation, so a full
    collection, triggered by the objects a write creates, no longer walks it (measured: pauses of tens of ms
    while a client writes).  And a thread waiting for the GIL (the event loop, with a search to answer) gets it
    after 2 ms instead of 5 when another thread (a write's validation) runs Python code (1 ms slowed the writes
    as much as it sped the searches)."""
    import gc
    import sys

    gc.collect()
    gc.freeze()
    sys.setswitchinterval(0.002)


def create_app(db: str | Path | ServerConfig, **options: Any) -> FastAPI:
    """The app serving the database at ``db`` (a path, or a full ``ServerConfig``); ``options`` are
    ``ServerConfig`` fields: ``api_key``, ``cors_origins``, ``max_body_bytes``, ``max_upload_bytes``,
    ``max_image_pixels``, ``query_log``, ``preload``, and for a sharded database ``ray_address`` / ``n_shards``
    (a directory holding a sharded manifest is served sharded, on a local Ray unless ``ray_address`` says)."""
    config = db if isinstance(db, ServerConfig) else ServerConfig(db_path=Path(db), **options)
    state = ServerState(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if config.preload:
            await run_in_threadpool(state.preload)
        settle_for_serving()
        try:
            yield
        finally:
            await run_in_threadpool(state.close)

    app = FastAPI(title="lookalike", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url="/docs", redoc_url=None)
    app.state.lookalike = state
    install_error_handlers(app)
    app.include_router(router, prefix="/api")
    app.include_router(data_router, prefix="/api")
    app.include_router(snapshots_router, prefix="/api")

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus' scrape: counters of searches, writes, errors and builds; points, builds running, the query
        log's queue (see lookalike.server.metrics)."""
        body, content_type = state.metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(TEMPLATES_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Content-Type", "X-API-Key", "Authorization"])
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_body=config.max_body_bytes, max_upload=config.max_upload_bytes)
    return app


CONFIG_ENV = "LOOKALIKE_SERVE_CONFIG"  # the config of `lookalike serve --workers N`, for each worker process


def config_to_environment(config: ServerConfig) -> str:
    """The JSON a worker process rebuilds ``config`` from (single-node databases only: no actor options)."""
    import json

    fields = {name: getattr(config, name) for name in ("api_key", "cors_origins", "max_body_bytes",
                                                       "max_upload_bytes", "max_image_pixels", "query_log",
                                                       "preload")}
    return json.dumps({"db_path": str(config.db_path), **fields})


def app_from_environment():
    """The app of one worker of ``lookalike serve --workers N`` (uvicorn calls this factory in each process),
    behind the query fast lane as ``lookalike serve`` serves it."""
    import json
    import os

    from .fast_lane import QueryFastLane

    options = json.loads(os.environ[CONFIG_ENV])
    return QueryFastLane(create_app(ServerConfig(db_path=Path(options.pop("db_path")), **options)))
