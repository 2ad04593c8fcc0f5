"""One shard: a Ray actor that owns an ordinary local lookalike Database in its own directory.

The actor holds the database open, so its indexes stay in memory between calls, and it answers one call at a
time (Ray's default for an actor), which is what ``Collection`` expects.  When the actor's process dies, Ray
starts a new one with the same constructor arguments (``max_restarts``): it reopens the same directory, and
SQLite — the source of truth, every write committed before it returned — gives back every point; index files
are reloaded, or rebuilt when they are stale.

Reads and idempotent writes (upsert, index builds, collection creation) are declared retryable
(``max_task_retries=-1``): a call that was in flight or queued when the process died runs again on the restarted
actor.  ``add`` and ``delete`` are not: run twice they would fail (the id now exists / is gone), so the caller
gets a clear ShardUnavailableError instead and may repeat the write as an upsert.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any, Callable

import numpy as np
import ray

from ..errors import CollectionNotFoundError
from .routing import group_by_shard, id_keys

#: reads and idempotent writes are retried on a restarted actor until it answers (the caller has a timeout)
retried = ray.method(max_task_retries=-1)


class Shard:
    """Methods take the collection name first; arrays cross the process boundary through Ray's object store."""

    def __init__(self, directory: str, index: int):
        from ..database import Database

        self.index = index
        self.directory = directory
        self.db = Database(directory)
        self.opened_at = time.time()

    def _col(self, name: str):
        return self.db.get_collection(name)

    # ------------------------------------------------------------------ life
    @retried
    def ping(self) -> dict[str, Any]:
        return {"shard": self.index, "pid": os.getpid(), "directory": self.directory, "opened_at": self.opened_at,
                "node": ray.get_runtime_context().get_node_id()}

    @retried
    def reopen(self) -> None:
        """Reopen the database, to load index files another process just built (see ``create_index(online=True)``).
        The old objects are dropped without a flush, which could write this process's older index over the new
        files; what they held in memory was a cache of SQLite, caught up from the change log on open."""
        from ..database import Database

        self.db = Database(self.directory)

    @retried
    def flush(self) -> None:
        for name in self.db.list_collections():
            self._col(name).flush()

    # ------------------------------------------------------------------ collections
    @retried
    def ensure_collections(self, configs: dict[str, dict[str, Any]]) -> None:
        """Create every collection of the manifest that this shard lacks (same dim and metric, else an error)."""
        for name, config in configs.items():
            self.db.create_collection(name, config["dim"], config["metric"], embedder=config.get("embedder"),
                                      exist_ok=True)

    @retried
    def drop_collection(self, name: str) -> None:
        try:
            self.db.drop_collection(name)
        except CollectionNotFoundError:  # a retried drop, or a shard a failed create never reached
            pass

    @retried
    def info(self, name: str) -> dict[str, Any]:
        return self._col(name).info()

    @retried
    def count(self, name: str) -> int:
        return len(self._col(name))

    # ------------------------------------------------------------------ writes
    def add(self, name: str, ids: list, vectors: np.ndarray, metadata: list | None) -> int:
        self._col(name).add(ids, vectors, metadata)
        return len(ids)

    @retried
    def upsert(self, name: str, ids: list, vectors: np.ndarray, metadata: list | None) -> int:
        self._col(name).upsert(ids, vectors, metadata)
        return len(ids)

    def delete(self, name: str, ids: list | None, where: dict | None) -> int:
        return self._col(name).delete(ids, where=where)

    @retried
    def create_index(self, name: str, type: str, default: bool, params: dict[str, Any]) -> dict[str, Any]:
        return self._col(name).create_index(type, default=default, **params)

    @retried
    def create_metadata_index(self, name: str, key: str) -> None:
        self._col(name).create_metadata_index(key)

    def drop_index(self, name: str, type: str) -> None:
        self._col(name).drop_index(type)

    # ------------------------------------------------------------------ reads
    @retried
    def has(self, name: str, ids: list) -> list[bool]:
        return self._col(name).has(ids)

    @retried
    def get(self, name: str, ids: list) -> tuple[np.ndarray, list]:
        points = self._col(name).get(ids)
        return points.vectors, points.metadatas

    @retried
    def ids(self, name: str) -> list:
        return self._col(name).ids()

    @retried
    def query(self, name: str, queries: np.ndarray, k: int, where: dict | None, index: str | None,
              with_exact: bool, include_metadata: bool, params: dict[str, Any]) -> dict[str, Any]:
        """This shard's top-k, with each hit's routing key (the tie-break of the merge) and, for ``with_exact``,
        its exact top-k too (the merged exact search is what recall is measured against)."""
        col = self._col(name)
        result = col.query(queries, k, where=where, index=index, include_metadata=include_metadata, **params)
        answer = {"shard": self.index, "ids": result.ids, "keys": _keys_of(result.ids),
                  "distances": result.distances, "metadatas": result.metadatas if include_metadata else None,
                  "stats": result.stats}
        if with_exact:
            t0 = time.perf_counter()
            exact = col.query(queries, k, where=where, index="flat", include_metadata=False)
            answer["stats"]["exact_ms"] = 1000 * (time.perf_counter() - t0)
            answer["exact"] = {"keys": _keys_of(exact.ids), "distances": exact.distances}
        return answer

    # ------------------------------------------------------------------ resharding
    @retried
    def wipe(self) -> None:
        """Drop every collection: a new layout's shard starts empty even over the leftovers of an interrupted
        reshard (done by a call, not in the constructor, which Ray reruns on every restart)."""
        for name in self.db.list_collections():
            self.db.drop_collection(name)

    @retried
    def remove_directory(self) -> None:
        """Delete this shard's directory (an old layout's shard after the manifest swap), on the node that has it."""
        self.db.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def move_to(self, name: str, targets: list, batch_size: int) -> int:
        """Copy every point of ``name`` (vector as stored, metadata) to its owner among ``targets`` (the shard
        actors of the new layout), page by page.  ``add`` there refuses an id twice, so a point can never land on
        two new shards.  Returns how many points were copied."""
        col = self._col(name)
        every_id = col.ids()
        moved = 0
        for start in range(0, len(every_id), batch_size):
            points = col.get(every_id[start : start + batch_size])
            writes = []
            for owner, positions in group_by_shard(points.ids, len(targets)).items():
                ids = [points.ids[i] for i in positions]
                metas = [points.metadatas[i] for i in positions]
                writes.append(targets[owner].add.remote(name, ids, points.vectors[positions], metas))
            ray.get(writes)
            moved += len(points)
        return moved


def _keys_of(ids: np.ndarray) -> np.ndarray:
    """Routing keys of a (q, k) object array of ids; padding (None) gets 0."""
    keys = np.zeros(ids.shape, dtype=np.uint64)
    found = ids != None  # noqa: E711  (element-wise on an object array)
    if found.any():
        keys[found] = id_keys(ids[found].tolist())
    return keys


ShardActor = ray.remote(Shard)


def start_shard(directory: str, index: int, *, max_restarts: int = -1,
                options: dict[str, Any] | Callable[[int], dict[str, Any]] | None = None):
    """Start the actor of shard ``index`` over ``directory``.  By default it reserves no CPU (it mostly waits;
    its searches use the BLAS / Numba threads of its node) and Ray spreads shards over the nodes.  ``options``
    (a dict, or a function of the shard number) override any of that, e.g. ``{"num_cpus": 8}`` or a custom
    resource that pins shard i to the node holding its directory."""
    if callable(options):
        options = options(index)
    settings = {"max_restarts": max_restarts, "max_task_retries": 0, "num_cpus": 0, "scheduling_strategy": "SPREAD",
                **(options or {})}
    return ShardActor.options(**settings).remote(str(directory), index)


__all__ = ["Shard", "ShardActor", "start_shard"]
