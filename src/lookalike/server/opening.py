"""Opening what the server serves: a collection with a database object of its own, the one sharded database of a
sharded server, and the warm-up query that loads a collection's indexes.  Used by the server state (each handle)
and by index builds (a build opens its own copy), so neither has to import the other."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..collection import Collection
from ..database import Database
from ..distributed.layout import MANIFEST as SHARDED_MANIFEST  # layout.py does not import Ray
from ..errors import InvalidParameterError, LookalikeError, StorageFormatError

log = logging.getLogger("lookalike.server")


def open_collection(db_path: Path, name: str, opener: "DatabaseOpener | None" = None) -> tuple[Database, Collection]:
    """A Database object of its own for one collection, so that handles never share a SQLite connection (for a
    sharded database: the shared one, see ``DatabaseOpener``)."""
    db = opener() if opener is not None else Database(db_path, create=False)
    return db, db.get_collection(name)


class SharedDatabase:
    """The process's one ``ShardedDatabase``, lent out: everything passes through but ``close``, which does nothing
    (closing it would stop the shard actors every handle uses; ``DatabaseOpener.close`` does that at shutdown)."""

    def __init__(self, database: Any):
        self._database = database

    def __getattr__(self, name: str) -> Any:
        return getattr(self._database, name)

    def close(self) -> None:
        pass

    def __enter__(self) -> "SharedDatabase":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


class DatabaseOpener:
    """How the server opens its database, wherever it needs one (the catalog, each handle, collection creation).

    Single-node: a new ``Database(path, create=False)`` per call.  Sharded (the directory holds a sharded manifest,
    or ``ray_address`` is set): the one ``ShardedDatabase`` opened here, wrapped in ``SharedDatabase``."""

    def __init__(self, config: Any):  # a ServerConfig
        self.path = Path(config.db_path)
        self._shared = None
        if serves_sharded(self.path, config.ray_address):
            self._shared = open_sharded(self.path, config.ray_address, config.n_shards, config.actor_options)

    @property
    def sharded(self) -> bool:
        return self._shared is not None

    def __call__(self) -> Any:
        if self._shared is None:
            return Database(self.path, create=False)
        return SharedDatabase(self._shared)

    def close(self, *, flush: bool = True) -> None:
        """Stop the shard actors (server shutdown); ``flush`` False while a build may still be writing index files
        (a flush would save the shards' older in-memory indexes over them)."""
        if self._shared is not None:
            self._shared.close(flush=flush)


def serves_sharded(path: Path, ray_address: str | None) -> bool:
    """Whether the server serves the database at ``path`` as a sharded one: a Ray address is given, or the
    directory holds a sharded manifest."""
    return ray_address is not None or (Path(path) / SHARDED_MANIFEST).is_file()


def open_sharded(path: Path, ray_address: str | None, n_shards: int | None, actor_options: Any = None) -> Any:
    """The ``ShardedDatabase`` at ``path`` (``lookalike serve --create`` writes the manifest of a new one first):
    ``ray_address`` "local" or None starts or joins a local Ray."""
    if not (path / SHARDED_MANIFEST).is_file():
        if (path / "lookalike.json").is_file():
            raise InvalidParameterError(
                f"{path} is a single-node database: serve it without a Ray address, or ingest its points into a "
                "sharded one (lookalike shards ingest)")
        raise StorageFormatError(
            f"{path} is not a sharded lookalike database (no {SHARDED_MANIFEST}): create one first (lookalike "
            "shards create, or lookalike serve --create --shards N)")
    from ..distributed import ShardedDatabase  # ImportError with the pip command when Ray is not installed

    address = None if ray_address in (None, "local") else ray_address
    return ShardedDatabase(path, n_shards=n_shards, address=address, actor_options=actor_options)


def warm_collection(col: Collection) -> set[str]:
    """Run a one-row query on every index of ``col``; returns the names now in memory."""
    probe = np.ones(col.dim, dtype=np.float32)
    loaded = set()
    for name in col.indexes:
        try:
            col.query(probe, k=1, index=name, include_metadata=False)
            loaded.add(name)
        except LookalikeError as exc:  # an index type this build lacks, say: the others still serve
            log.warning("index %s of %s cannot be loaded: %s", name, col.name, exc)
    return loaded
