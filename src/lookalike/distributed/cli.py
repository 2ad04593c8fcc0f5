"""Command-line parts of lookalike.distributed, wired into ``lookalike`` by lookalike/cli.py.

    lookalike reshard --db DIR --shards 8 [--ray-address auto]
    lookalike shards create NAME --dim 512 [--metric cosine] [--shards 4] [--db DIR] [--ray-address A]
    lookalike shards info [NAME] [--json]
    lookalike shards ingest NAME SOURCE [--embedder NAME]    SOURCE: .npy / Parquet of vectors, or a folder of images
    lookalike shards index NAME --type ivf --param nlist=1024

``add_shard_arguments(parser)`` adds ``--ray-address`` / ``--shards`` to another command (``lookalike serve``),
whose handler then opens its database with ``open_database(args.db, args.ray_address, args.shards)``.
Nothing here imports Ray until a command runs.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def _default_db() -> str:
    return os.environ.get("LOOKALIKE_DB", "lookalike-db")


def add_shard_arguments(parser: argparse.ArgumentParser) -> None:
    """``--ray-address`` and ``--shards``: how to reach Ray and how many shards a new sharded database gets."""
    parser.add_argument("--ray-address", default=None, metavar="ADDRESS",
                        help="serve a sharded database on Ray: 'auto' (this node's cluster), 'ray://host:10001', "
                             "or 'local' to start Ray here (default: a plain single-node database)")
    parser.add_argument("--shards", type=int, default=None, metavar="N",
                        help="shard count of a new sharded database (default 4; an existing one keeps its own)")


def ray_address(args: argparse.Namespace) -> str | None:
    """The address to give Ray: 'local' means start or join a local Ray (None for ray.init)."""
    address = getattr(args, "ray_address", None)
    return None if address in (None, "local") else address


def open_from_args(args: argparse.Namespace):
    """``open_database`` for a command parsed with ``add_shard_arguments`` (and ``--db``)."""
    from .sharded import open_database

    address = getattr(args, "ray_address", None)
    if address is None:
        return open_database(args.db, None, getattr(args, "shards", None))
    from .sharded import ShardedDatabase

    return ShardedDatabase(args.db, n_shards=getattr(args, "shards", None), address=ray_address(args))


# ---------------------------------------------------------------------- lookalike reshard
def add_reshard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=_default_db(), help="the sharded database directory")
    parser.add_argument("--shards", type=int, required=True, metavar="N", help="the new shard count")
    parser.add_argument("--ray-address", default=None, metavar="ADDRESS", help="Ray to use (default: local)")
    parser.add_argument("--batch-size", type=int, default=5_000, help="points copied per call (default 5000)")


def run_reshard(args: argparse.Namespace) -> int:
    from .resharding import reshard

    print(f"resharding {args.db} to {args.shards} shards ...", flush=True)
    report = reshard(args.db, args.shards, address=ray_address(args), batch_size=args.batch_size)
    print(report.summary())
    for name, moved in report.moved.items():
        rebuilt = ", ".join(report.rebuilt.get(name, [])) or "none"
        print(f"  {name}: {moved} points; indexes rebuilt: {rebuilt}")
    return 0


# ---------------------------------------------------------------------- lookalike shards ...
def add_shards_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=_default_db(), help="the sharded database directory")
    add_shard_arguments(common)
    sub = parser.add_subparsers(title="actions", metavar="ACTION", dest="shards_action")

    p = sub.add_parser("create", help="create a sharded collection", parents=[common])
    p.add_argument("name")
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--metric", default="cosine")

    p = sub.add_parser("info", help="shards, their nodes and the collections' counts", parents=[common])
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("ingest", help="ingest .npy / Parquet vectors, or a folder of images, with Ray Data",
                       parents=[common])
    p.add_argument("name")
    p.add_argument("source", type=Path, help=".npy file, Parquet file or directory, or a folder of images")
    p.add_argument("--embedder", help="embed images with this embedder (then SOURCE is a folder of images)")
    p.add_argument("--csv", type=Path, help="metadata CSV for a folder of images (a 'file' column)")
    p.add_argument("--start-id", type=int, default=0, help="first integer id of .npy rows (default 0)")
    p.add_argument("--upsert", action="store_true", help="replace stored ids instead of skipping them")
    p.add_argument("--batch-size", type=int, default=None)

    p = sub.add_parser("index", help="build an index on every shard in parallel", parents=[common])
    p.add_argument("name")
    p.add_argument("--type", required=True)
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="build parameter")


def run_shards(args: argparse.Namespace) -> int:
    action = getattr(args, "shards_action", None)
    if action is None:
        print("usage: lookalike shards {create,info,ingest,index} ... (see --help)")
        return 2
    from .sharded import ShardedDatabase

    with ShardedDatabase(args.db, n_shards=args.shards, address=ray_address(args)) as sdb:
        return {"create": _create, "info": _info, "ingest": _ingest, "index": _index}[action](sdb, args)


def _create(sdb, args) -> int:
    col = sdb.create_collection(args.name, dim=args.dim, metric=args.metric)
    print(f"created {col.name}: dim={col.dim} metric={col.metric} over {sdb.n_shards} shards in {sdb.path}")
    return 0


def _info(sdb, args) -> int:
    names = [args.name] if args.name else sdb.list_collections()
    infos = [sdb.get_collection(name).info() for name in names]
    shards = sdb.shard_info()
    if args.json:
        print(json.dumps({"shards": shards, "collections": infos}, indent=1))
        return 0
    print(f"sharded database {sdb.path}: {sdb.n_shards} shards")
    for shard in shards:
        print(f"  shard {shard['shard']}: pid {shard['pid']} on node {shard['node'][:12]}  {shard['directory']}")
    for info in infos:
        print(f"{info['name']}: {info['count']} points {info['shard_counts']}, dim={info['dim']}, "
              f"metric={info['metric']}, indexes: {', '.join(info['indexes'])} (default {info['default_index']})")
    return 0


def _ingest(sdb, args) -> int:
    from .ingest import ingest_images, ingest_vectors

    size = {"batch_size": args.batch_size} if args.batch_size else {}
    if args.embedder:
        report = ingest_images(sdb, args.name, args.source, args.embedder, csv_path=args.csv, **size)
    else:
        report = ingest_vectors(sdb, args.name, args.source, start_id=args.start_id, upsert=args.upsert, **size)
    print(report.summary())
    return 0


def _index(sdb, args) -> int:
    from ..cli_params import parse_params

    report = sdb.get_collection(args.name).create_index(args.type, **parse_params(args.param))
    print(f"built {args.type} on {sdb.n_shards} shards in {report['build_s']:.2f}s "
          f"(slowest shard {max(report['shard_build_s']):.2f}s), {report['count']} points")
    return 0


__all__ = ["add_reshard_arguments", "add_shard_arguments", "add_shards_arguments", "open_from_args",
           "ray_address", "run_reshard", "run_shards"]
