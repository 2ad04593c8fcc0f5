"""lookalike on Ray: collections sharded over Ray actors, parallel index builds, Ray Data ingest.

    from lookalike.distributed import ShardedDatabase
    sdb = ShardedDatabase("path/", n_shards=4, address=None)   # None: start or join a local Ray; "auto" /
                                                                 # "ray://host:10001": join a cluster
    col = sdb.create_collection("products", dim=512, metric="cosine")

Ray is imported on first use of a name below, so ``lookalike.distributed.cli`` (argument parsing) stays cheap and
works without Ray installed.  See docs/scaling.md.
"""

from __future__ import annotations

_EXPORTS = {
    "ShardedDatabase": "sharded",
    "ShardedCollection": "sharded",
    "open_database": "sharded",
    "connect_ray": "sharded",
    "reshard": "resharding",
    "ReshardReport": "resharding",
    "ingest_vectors": "ingest",
    "ingest_images": "ingest",
    "IngestReport": "ingest",
    "ShardUnavailableError": "errors",
    "ShardLayoutError": "errors",
    "shard_of": "routing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lookalike.distributed' has no attribute {name!r}")
    import importlib

    try:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "ray":
            raise ImportError(
                "lookalike.distributed needs Ray: pip install 'ray[data]==2.60.0' (or 'lookalike[distributed]')"
            ) from exc
        raise
    return getattr(module, name)
