"""Changing the shard count: an explicit, offline command that moves every point and loses none.

    reshard("path/", 8)          # or: lookalike reshard --db path/ --shards 8

1. Open the current layout (generation g) and start the shards of the new one in their own directories
   (``shard-g<g+1>-000`` ...), emptied first: what an earlier attempt that never reached step 4 left there.
2. Every old shard copies its points — vectors as stored, metadata — straight to their owners among the new shards
   (all old shards at once; ``add`` refuses an id twice, so no point can land on two shards).
3. Check that every collection holds as many points as before, and rebuild its indexes with the same parameters
   on the new shards (in parallel).
4. Swap the manifest (one atomic rename): from now on the new layout is the database.  Only then does each old
   shard delete its directory (on its own node).  A directory the manifest does not name is garbage.

A crash before step 4 leaves the old layout untouched and in use; after it, the new one is complete.  Nothing
else may write to the database while it is resharded (writes to the old layout during the copy would be lost).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import ray

from .._validation import check_positive_int
from ..errors import StorageFormatError
from .layout import Layout, shard_dir_names, write_layout
from .sharded import ShardedDatabase, ShardGroup
from .shard import start_shard

log = logging.getLogger(__name__)

DEFAULT_BATCH = 5_000


@dataclass
class ReshardReport:
    old_shards: int
    new_shards: int
    moved: dict[str, int] = field(default_factory=dict)  # points copied per collection
    rebuilt: dict[str, list[str]] = field(default_factory=dict)  # index types rebuilt per collection
    seconds: float = 0.0

    def summary(self) -> str:
        total = sum(self.moved.values())
        return (f"resharded {self.old_shards} -> {self.new_shards} shards: {total} points in "
                f"{len(self.moved)} collection(s) moved in {self.seconds:.1f}s")


def reshard(path: str | Path, new_n: int, *, address: str | None = None, batch_size: int = DEFAULT_BATCH,
            max_restarts: int = -1,
            actor_options: dict[str, Any] | Callable[[int], dict[str, Any]] | None = None) -> ReshardReport:
    """Move the points of the sharded database at ``path`` onto ``new_n`` shards (see the module docstring)."""
    new_n = check_positive_int(new_n, "new_n")
    batch_size = check_positive_int(batch_size, "batch_size")
    t0 = time.perf_counter()
    old = ShardedDatabase(path, address=address, max_restarts=max_restarts, actor_options=actor_options)
    report = ReshardReport(old.n_shards, new_n)
    if new_n == old.n_shards:
        old.close()
        return report
    root = old.path
    generation = old.layout.generation + 1
    names = shard_dir_names(new_n, generation)
    new_layout = Layout(n_shards=new_n, shards=names, generation=generation,
                        collections=dict(old.layout.collections))
    new_shards = [start_shard(str(root / name), i, max_restarts=max_restarts, options=actor_options)
                  for i, name in enumerate(names)]
    removed = False
    try:
        new_group = ShardGroup(root, new_layout, new_shards, None)
        new_group.fanout("wipe")  # not in the manifest: anything there is a leftover of an interrupted reshard
        new_group.fanout("ensure_collections", new_layout.collections)
        for name in sorted(new_layout.collections):
            report.moved[name] = _move_collection(old, new_group, name, batch_size)
            report.rebuilt[name] = _rebuild_indexes(old, new_group, name)
        new_group.fanout("flush")
        write_layout(root, new_layout)  # the swap: the new layout is the database from here on
        old.fanout("remove_directory")  # each old shard deletes its own directory, on its own node
        removed = True
    finally:
        for actor in new_shards:
            ray.kill(actor, no_restart=True)
        old.close(flush=not removed)
    report.seconds = time.perf_counter() - t0
    log.info(report.summary())
    return report


def _move_collection(old: ShardedDatabase, new: ShardGroup, name: str, batch_size: int) -> int:
    before = old.get_collection(name).shard_counts()
    moved = old.fanout("move_to", name, new.shards, batch_size)
    after = new.fanout("count", name)
    if sum(moved) != sum(before) or sum(after) != sum(before):
        raise StorageFormatError(
            f"reshard of collection {name!r}: {sum(before)} points before, {sum(moved)} copied, {sum(after)} in the "
            "new layout; the manifest was not changed and the old layout is still the database")
    return sum(after)


def _rebuild_indexes(old: ShardedDatabase, new: ShardGroup, name: str) -> list[str]:
    info = old.get_collection(name).info()
    rebuilt = []
    for index_type, config in info["indexes"].items():
        if index_type == "flat":
            continue
        params = {key: value for key, value in config.items() if key not in ("type", "dim", "metric")}
        new.fanout("create_index", name, index_type, info["default_index"] == index_type, params)
        rebuilt.append(index_type)
    if info["default_index"] == "flat":
        new.fanout("create_index", name, "flat", True, {})
    return rebuilt


__all__ = ["ReshardReport", "reshard"]
