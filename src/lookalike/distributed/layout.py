"""The manifest of a sharded database: how many shards, where they live, which collections exist.

    path/
      lookalike-sharded.json     {"format": "lookalike-sharded", "format_version": 1, "n_shards": 4,
                                  "routing": "jump-blake2b64-v1", "generation": 0,
                                  "shards": ["shard-000", ...],
                                  "collections": {"products": {"dim": 512, "metric": "cosine", "embedder": null}}}
      shard-000/ ... shard-003/  one ordinary lookalike Database each (SQLite + index files)

The manifest is the one place that says which directories are the live layout.  It is replaced atomically
(write a temp file, fsync, ``os.replace``), so a reshard writes the new shards aside (``shard-g1-000`` ...) and
then swaps the manifest: a crash at any point leaves either the old layout or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import StorageFormatError
from ..storage.formats import fsync_dir as _fsync_dir, read_format_json
from .errors import ShardLayoutError
from .routing import ROUTING_NAME

MANIFEST = "lookalike-sharded.json"
FORMAT = "lookalike-sharded"
FORMAT_VERSION = 1
DEFAULT_SHARDS = 4
SINGLE_NODE_MARKER = "lookalike.json"  # what lookalike.Database writes at its root


@dataclass
class Layout:
    n_shards: int
    shards: list[str]
    generation: int = 0
    routing: str = ROUTING_NAME
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)

    def shard_paths(self, root: Path) -> list[Path]:
        return [Path(root) / name for name in self.shards]


def shard_dir_names(n_shards: int, generation: int) -> list[str]:
    """Directory names of a layout: ``shard-000`` for the first generation, ``shard-g<gen>-000`` after reshards."""
    prefix = "shard-" if generation == 0 else f"shard-g{generation}-"
    return [f"{prefix}{i:03d}" for i in range(n_shards)]


def open_layout(root: Path, n_shards: int | None) -> Layout:
    """The layout at ``root``, created with ``n_shards`` (default 4) when ``root`` is new or empty.

    Reopening with another shard count raises ShardLayoutError: the owner of every point depends on the count."""
    root = Path(root)
    manifest = root / MANIFEST
    if n_shards is not None:
        from .._validation import check_positive_int

        n_shards = check_positive_int(n_shards, "n_shards")
    if manifest.exists():
        layout = read_layout(root)
        if n_shards is not None and n_shards != layout.n_shards:
            raise ShardLayoutError(
                f"{root} holds {layout.n_shards} shards, not {n_shards}: open it with n_shards={layout.n_shards} "
                f"(or None), or move the points with `lookalike reshard --db {root} --shards {n_shards}`"
            )
        return layout
    if (root / SINGLE_NODE_MARKER).exists():
        raise StorageFormatError(
            f"{root} is a single-node lookalike database: open it with lookalike.Database, or ingest its points "
            "into a new sharded database"
        )
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise StorageFormatError(f"{root} is not a sharded lookalike database (no {MANIFEST}) and is not empty")
    count = DEFAULT_SHARDS if n_shards is None else n_shards
    layout = Layout(n_shards=count, shards=shard_dir_names(count, 0))
    write_layout(root, layout)
    return layout


def read_layout(root: Path) -> Layout:
    manifest = Path(root) / MANIFEST
    data = read_format_json(manifest, FORMAT, FORMAT_VERSION, "a sharded lookalike database")
    if data.get("routing") != ROUTING_NAME:
        raise StorageFormatError(f"{manifest}: routing {data.get('routing')!r}, this lookalike routes {ROUTING_NAME}")
    shards = data.get("shards")
    if not isinstance(shards, list) or len(shards) != data.get("n_shards") or not shards:
        raise StorageFormatError(f"{manifest}: the shard list does not match n_shards={data.get('n_shards')}")
    return Layout(n_shards=int(data["n_shards"]), shards=[str(s) for s in shards],
                  generation=int(data.get("generation", 0)), routing=data["routing"],
                  collections=dict(data.get("collections", {})))


def write_layout(root: Path, layout: Layout) -> None:
    """Replace the manifest atomically (the new content is on disk before the name points to it)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{MANIFEST}.tmp"
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(layout)}
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / MANIFEST)
    _fsync_dir(root)


__all__ = ["DEFAULT_SHARDS", "MANIFEST", "Layout", "open_layout", "read_layout", "shard_dir_names", "write_layout"]
