"""``lookalike serve``: the arguments and the runner (wired into the main CLI by lookalike/cli.py).

This module imports nothing heavy at import time, so ``lookalike --help`` stays instant.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
AUTO_WORKERS = "auto"
# `--workers auto` stops here: each process holds its own Python runtime, compiled kernels and embedders (100 MB to
# 750 MB), and one server process already answers a few thousand queries a second
MAX_AUTO_WORKERS = 4


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=os.environ.get("LOOKALIKE_DB", "lookalike-db"),
                        help="database directory (default: $LOOKALIKE_DB or lookalike-db)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to bind (default {DEFAULT_HOST}; any other needs an API key)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--api-key", default=None,
                        help="key that write endpoints require (default: $LOOKALIKE_API_KEY; none = loopback only)")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="allow this origin to call the API from a browser (repeatable; default: CORS off)")
    parser.add_argument("--max-upload-mb", type=float, default=10.0, help="largest photo upload (default 10 MB)")
    parser.add_argument("--max-body-mb", type=float, default=32.0, help="largest JSON body (default 32 MB)")
    parser.add_argument("--no-query-log", action="store_true", help="do not record queries")
    parser.add_argument("--workers", type=parse_workers, default=AUTO_WORKERS,
                        help="server processes sharing the port and the database (SQLite WAL, the index files "
                             "mapped once): searches run in parallel, one per core. Default 'auto': one per usable "
                             f"core, at most {MAX_AUTO_WORKERS} (1 on a sharded database); 1 = a single process")
    parser.add_argument("--no-preload", action="store_true",
                        help="start at once and load indexes and embedders on the first query instead")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument("--access-log", action="store_true",
                        help="log one line per request (off by default: written on the event loop, it costs every "
                             "request time; the query log and /metrics record searches without it)")
    parser.add_argument("--create", action="store_true",
                        help="create an empty database at --db when there is none (to fill it through the API or "
                             "lookalike.Client); with --ray-address, a sharded one of --shards shards")
    try:  # --ray-address / --shards: a sharded database on Ray (lookalike.distributed; Ray itself loads later)
        from ..distributed.cli import add_shard_arguments
    except ImportError:  # pragma: no cover - a build without lookalike.distributed serves single-node databases
        return
    add_shard_arguments(parser)


def run_serve(args: argparse.Namespace) -> int:
    from .security import InsecureBindError, check_bind, resolve_api_key

    api_key = resolve_api_key(args.api_key)
    try:
        check_bind(args.host, api_key)
    except InsecureBindError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    db_path = Path(args.db)
    ray_address, n_shards = getattr(args, "ray_address", None), getattr(args, "shards", None)
    problem = prepare_database(db_path, create=getattr(args, "create", False), ray_address=ray_address,
                               n_shards=n_shards)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if not port_is_free(args.host, args.port):
        print(f"error: {args.host}:{args.port} is in use: pick another --port", file=sys.stderr)
        return 2
    from .state import MiB, ServerConfig

    config = ServerConfig(
        db_path=db_path, api_key=api_key, cors_origins=list(args.cors_origin),
        max_upload_bytes=int(args.max_upload_mb * MiB), max_body_bytes=int(args.max_body_mb * MiB),
        query_log=not args.no_query_log, preload=not args.no_preload, ray_address=ray_address, n_shards=n_shards,
    )
    from ..errors import LookalikeError
    from .opening import serves_sharded

    sharded = serves_sharded(db_path, ray_address)
    workers = resolve_workers(args.workers, sharded)
    if workers > 1 and sharded:
        print("error: --workers serves a single-node database; a sharded one scales on Ray", file=sys.stderr)
        return 2
    try:
        serve(config, args.host, args.port, log_level=args.log_level, workers=workers, access_log=args.access_log)
    except (ImportError, LookalikeError) as exc:  # Ray missing, a shard count that does not match, ...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def serve(config, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, log_level: str = "info",
          workers: int = 1, access_log: bool = False) -> None:
    """Run the server until interrupted (the demo calls this too).  Refuses an insecure bind.  With ``workers`` > 1,
    uvicorn starts that many processes on the port; each builds its app from the config passed in the
    environment (see ``lookalike.server.app.app_from_environment``)."""
    import numba
    import uvicorn

    from .app import create_app
    from .fast_lane import QueryFastLane
    from .http_protocol import LaneHttpProtocol
    from .security import check_bind

    check_bind(host, config.api_key)
    if "NUMBA_THREADING_LAYER" not in os.environ:
        # requests run in threads and Numba's parallel kernels are called from several at once: use a layer that
        # allows it (OpenMP or TBB); the fallback "workqueue" layer would abort the process
        numba.config.THREADING_LAYER = "threadsafe"
    shown = f"[{host}]" if ":" in host else host
    if workers > 1:
        from .app import CONFIG_ENV, config_to_environment
        from .metrics import prepare_multiprocess

        prepare_multiprocess(workers)  # before the workers import prometheus-client: counters shared through files

        os.environ[CONFIG_ENV] = config_to_environment(config)
        print(f"lookalike: serving {config.db_path} at http://{shown}:{port}/ with {workers} worker processes "
              "(API docs: /docs; Ctrl-C stops)", flush=True)
        uvicorn.run("lookalike.server.app:app_from_environment", factory=True, host=host, port=port,
                    log_level=log_level, server_header=False, workers=workers, access_log=access_log,
                    http=LaneHttpProtocol)
        return
    app = create_app(config)
    print(f"lookalike: serving {config.db_path} at http://{shown}:{port}/  (API docs: /docs; Ctrl-C stops)",
          flush=True)
    uvicorn.run(QueryFastLane(app), host=host, port=port, log_level=log_level, server_header=False,
                access_log=access_log, http=LaneHttpProtocol)


def parse_workers(value: str) -> int | str:
    """``--workers``: "auto" or a count >= 1."""
    if value == AUTO_WORKERS:
        return value
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number, got {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {count}")
    return count


def resolve_workers(workers: int | str, sharded: bool = False) -> int:
    """The process count ``--workers`` asks for: "auto" is one per core this process may run on, at most
    MAX_AUTO_WORKERS, and 1 for a sharded database (its searches run in the Ray actors, not in the server)."""
    if workers != AUTO_WORKERS:
        return int(workers)
    if sharded:
        return 1
    return max(1, min(MAX_AUTO_WORKERS, usable_cores()))


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset narrow), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def prepare_database(db_path: Path, *, create: bool = False, ray_address: str | None = None,
                     n_shards: int | None = None) -> str | None:
    """None when ``db_path`` is a database to serve (created first, empty, with ``create``); else the problem.
    With ``ray_address`` (or a sharded manifest at ``db_path``) the database is a sharded one."""
    from ..distributed.layout import MANIFEST

    if (db_path / MANIFEST).is_file():
        return None
    if (db_path / "lookalike.json").is_file():
        if ray_address is not None or n_shards is not None:
            return (f"{db_path} is a single-node database: serve it without --ray-address / --shards (or ingest its "
                    "points into a sharded one)")
        return None
    if ray_address is None and n_shards is not None:
        return "--shards makes a sharded database: add --ray-address (local, auto or ray://host:10001)"
    if not create:
        return (f"{db_path} is not a lookalike database: build one first (lookalike demo --db {db_path}), or pass "
                "--create to serve an empty one")
    from ..errors import LookalikeError

    try:
        if ray_address is not None:
            from ..distributed.layout import open_layout

            open_layout(db_path, n_shards)  # the manifest only: the shard actors create their directories
        else:
            from ..database import Database

            Database(db_path).close()
    except LookalikeError as exc:  # a directory that is not empty and not ours: never written into
        return str(exc)
    return None


def port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
