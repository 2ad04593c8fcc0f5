"""The ``lookalike`` command.  Subcommands import what they need when they run, so ``--help`` is instant.

Errors print one line (``error: ...``) and exit with status 2 (1 for an unexpected crash)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .cli_params import parse_params

DEFAULT_DB = os.environ.get("LOOKALIKE_DB", "lookalike-db")
# build parameters that have their own flag on `lookalike index build` (any other: --param name=value)
BUILD_FLAGS = {"nlist": int, "M": int, "ef_construction": int, "n_trees": int, "leaf_size": int,
               "n_tables": int, "n_bits": int, "m": int, "seed": int}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from .errors import LookalikeError

    try:
        return int(args.handler(args) or 0)
    except LookalikeError as exc:
        print(f"error: {exc} [{type(exc).__name__}]", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lookalike",
        description="lookalike: a vector database (exact, IVF, HNSW, ...) with a fashion search engine on top.",
    )
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", default=DEFAULT_DB, help=f"database directory (default: $LOOKALIKE_DB or {DEFAULT_DB})")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("demo", help="the main job: Fashion-MNIST catalog, text and photo search, served on 127.0.0.1",
                       description="Ingest the 70,000 Fashion-MNIST products with the offline default embedder, build "
                       "the indexes, run example text and photo queries, and serve the search page. A rerun reuses "
                       "what is stored. --synthetic runs the engine-only demo on generated vectors instead.")
    p.add_argument("--db", default=None, help="database directory (default: fashion-db; --synthetic: a temporary one)")
    p.add_argument("--no-serve", action="store_true", help="build and query, then exit (serve later: lookalike serve)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--limit", type=int, help="ingest only the first N items of each split (a quick look)")
    p.add_argument("--synthetic", action="store_true", help="the engine-only demo on generated vectors")
    p.add_argument("--n", type=int, default=20_000, help="--synthetic: points to generate (default 20000)")
    p.add_argument("--dim", type=int, default=128, help="--synthetic: dimensions (default 128)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("ingest", help="embed a product catalog (Fashion-MNIST, H&M layout, folder) into a collection",
                       parents=[db])
    p.add_argument("name", help="collection (created with the embedder's dim if absent)")
    p.add_argument("--source", required=True,
                   help="fashion-mnist | hm:DIR (images/0xx/*.jpg + articles.csv) | folder:DIR")
    p.add_argument("--csv", help="folder: a CSV keyed by file name whose columns become metadata")
    p.add_argument("--embedder", default="minilm-fmnist+use-m",
                   help="embedder name (default minilm-fmnist+use-m; minilm-fmnist; clip:PATH)")
    p.add_argument("--allow-download", action="store_true", help="let a CLIP embedder download its weights")
    p.add_argument("--limit", type=int, help="ingest only the first N items")
    p.add_argument("--batch-size", type=int, default=256)
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("create", help="create a collection", parents=[db])
    p.add_argument("name")
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--metric", default="cosine", help="cosine (default), dot or l2")
    p.set_defaults(handler=cmd_create)

    p = sub.add_parser("add", help="add vectors from .npy / .csv / .jsonl / ann-benchmarks .hdf5", parents=[db])
    p.add_argument("name")
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=["npy", "csv", "jsonl", "hdf5"], help="default: from the file extension")
    p.add_argument("--dataset", default="train", help="HDF5 dataset to read (default train)")
    p.add_argument("--start-id", type=int, default=0, help="first integer id for .npy/.hdf5 rows (default 0)")
    p.add_argument("--batch-size", type=int, default=10_000)
    p.add_argument("--upsert", action="store_true", help="replace points whose id is already stored")
    p.add_argument("--create", metavar="METRIC", help="create the collection first with this metric")
    p.set_defaults(handler=cmd_add)

    p = sub.add_parser("query", help="nearest neighbours of a text, a photo, a vector or rows of a file", parents=[db])
    p.add_argument("name")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="a text query, embedded by the collection's embedder (as the server does)")
    src.add_argument("--image", type=Path, help="a photo file, embedded by the collection's embedder")
    src.add_argument("--vector", help="a JSON list of numbers")
    src.add_argument("--file", type=Path, help=".npy (or ann-benchmarks .hdf5: its 'test' set) of query rows")
    src.add_argument("--id", dest="like_id", help="use the stored vector of this id as the query")
    p.add_argument("--rows", default="0", help="rows of --file to use: 5, 0:10 (default 0)")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--index", help="index to use (default: the collection's default)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="query parameter, e.g. nprobe=8")
    p.add_argument("--where", help='metadata filter as JSON, e.g. \'{"class": "Dress"}\'')
    p.add_argument("--with-recall", action="store_true", help="also run exact search: true-KNN flags and recall@k")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_query)

    p = sub.add_parser("snapshot", help="write the whole database to one file while it serves", parents=[db])
    p.add_argument("file", type=Path, help="the snapshot file to write (a tar)")
    p.set_defaults(handler=cmd_snapshot)

    p = sub.add_parser("restore", help="a new database from a snapshot file", parents=[db])
    p.add_argument("file", type=Path, help="the snapshot file (lookalike snapshot)")
    p.set_defaults(handler=cmd_restore)

    p = sub.add_parser("check", help="verify every collection's vector log against its checksums, and its SQLite "
                       "file", parents=[db])
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser("migrate", help="move a database written by an older release to this release's layout "
                       "(opening it does the same)", parents=[db])
    p.set_defaults(handler=cmd_migrate)

    p = sub.add_parser("optimize", help="fold every point written since the indexes last caught up into them",
                       parents=[db])
    p.add_argument("name", help="collection")
    p.set_defaults(handler=cmd_optimize)

    p = sub.add_parser("info", help="describe the database or one collection", parents=[db])
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_info)

    p = sub.add_parser("delete", help="delete points by id (digits are read as int ids unless --str-ids)", parents=[db])
    p.add_argument("name")
    p.add_argument("ids", nargs="*")
    p.add_argument("--where", help="delete every point matching this JSON filter instead")
    p.add_argument("--str-ids", action="store_true", help="treat every id as a string")
    p.set_defaults(handler=cmd_delete)

    p = sub.add_parser("drop", help="drop a whole collection", parents=[db])
    p.add_argument("name")
    p.set_defaults(handler=cmd_drop)

    p = sub.add_parser("index", help="build or drop indexes")
    isub = p.add_subparsers(title="index commands", metavar="ACTION")
    b = isub.add_parser("build", help="build an index over a collection", parents=[db])
    b.add_argument("name")
    b.add_argument("--type", required=True, help="flat, ivf, hnsw, lsh, rp_forest, sq8, ivfpq")
    for flag, kind in BUILD_FLAGS.items():
        b.add_argument(f"--{flag.replace('_', '-')}", dest=f"build_{flag}", type=kind, help=argparse.SUPPRESS)
    b.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="build parameter (also as flags: --nlist, --M, --ef-construction, --n-trees, ...)")
    b.add_argument("--no-default", action="store_true", help="do not make it the collection's default index")
    b.set_defaults(handler=cmd_index_build)
    d = isub.add_parser("drop", help="drop an index", parents=[db])
    d.add_argument("name")
    d.add_argument("--type", required=True)
    d.set_defaults(handler=cmd_index_drop)
    a = isub.add_parser("adapt", help="teach a graph index the queries it will get (text queries on photos)",
                        parents=[db])
    a.add_argument("name")
    a.add_argument("--type", default="hnsw", help="the graph index to adapt (default hnsw)")
    source = a.add_mutually_exclusive_group(required=True)
    source.add_argument("--queries", help="a .npy of sample query vectors")
    source.add_argument("--from-log", action="store_true", help="the text queries of the server's query log")
    source.add_argument("--generated", type=int, metavar="N",
                        help="N shopping queries generated from WordNet's garment words (a catalog of garments)")
    a.add_argument("--neighbors", type=int, default=10, help="nearest points each sample query links (default 10)")
    a.set_defaults(handler=cmd_index_adapt)

    p = sub.add_parser("train-image-tower", help="train the default embedder's image tower on Fashion-MNIST (seeded)")
    p.add_argument("--out", help="weights file to write, its described centres beside it (default: the package's "
                                 "models/fmnist_described_tower.safetensors)")
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, help="train on the first N images only (a quick check)")
    p.set_defaults(handler=cmd_train_image_tower)

    p = sub.add_parser("tune", help="pick the cheapest query parameter reaching a recall target", parents=[db])
    p.add_argument("name")
    p.add_argument("--index", help="index to tune (default: the collection's default)")
    p.add_argument("--target", type=float, default=0.95, help="recall@k target (default 0.95)")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--sample", type=int, default=200, help="held-out queries drawn from the collection (default 200)")
    p.add_argument("--no-apply", action="store_true", help="report only; do not make it the index's default")
    p.add_argument("--modality", choices=["text", "image"],
                   help="tune for this kind of query only (the server uses it for text / photo searches)")
    p.add_argument("--queries", help="a .npy of query vectors to tune on (their exact neighbours are the truth)")
    p.add_argument("--from-log", action="store_true",
                   help="tune on the text queries of the server's query log, re-embedded (implies --modality text)")
    p.set_defaults(handler=cmd_tune)

    _add_optional(sub, "serve", "lookalike.server.cli", "add_serve_arguments", "run_serve",
                  "serve the search page and the HTTP API (127.0.0.1 by default)")
    _add_optional(sub, "shards", "lookalike.distributed.cli", "add_shards_arguments", "run_shards",
                  "sharded collections on Ray: create, info, ingest, index")
    _add_optional(sub, "reshard", "lookalike.distributed.cli", "add_reshard_arguments", "run_reshard",
                  "move a sharded database onto another shard count (loses no point)")
    _add_optional(sub, "bench", "lookalike.bench.cli", "add_bench_arguments", "run_bench",
                  "recall vs queries/s of every index and of the installed peers")
    return parser


def _add_optional(sub, name: str, module: str, add_args: str, run: str, help_text: str) -> None:
    """Subcommands that live in optional modules (present when their part of lookalike is)."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError:
        return
    p = sub.add_parser(name, help=help_text, description=help_text)
    getattr(mod, add_args)(p)
    p.set_defaults(handler=getattr(mod, run))


# ---------------------------------------------------------------------- commands
def _open(args, name: str | None = None):
    from .database import Database

    return Database(args.db)


def cmd_create(args) -> int:
    with _open(args) as db:
        col = db.create_collection(args.name, dim=args.dim, metric=args.metric)
        print(f"created {col.name}: dim={col.dim} metric={col.metric} in {db.path}")
    return 0


def cmd_add(args) -> int:
    from tqdm import tqdm

    from .io import count_rows, detect_format, read_batches

    fmt = detect_format(args.file, args.format)
    with _open(args) as db:
        if args.create:
            first = next(read_batches(args.file, fmt, 1, dataset=args.dataset))
            db.get_or_create_collection(args.name, dim=first[1].shape[1], metric=args.create)
        col = db.get_collection(args.name)
        total = count_rows(args.file, fmt, args.dataset)
        write = col.upsert if args.upsert else col.add
        t0 = time.perf_counter()
        n = 0
        with tqdm(total=total, unit="vec", desc=f"add {args.file.name}", disable=None) as bar:
            for ids, vectors, metas in read_batches(args.file, fmt, args.batch_size, start_id=args.start_id,
                                                     dataset=args.dataset):
                write(ids, vectors, metas)
                n += len(ids)
                bar.update(len(ids))
        print(f"added {n} points to {col.name} in {time.perf_counter() - t0:.1f}s (now {len(col)})")
    return 0


def cmd_query(args) -> int:
    import numpy as np

    with _open(args) as db:
        col = db.get_collection(args.name)
        where = _json_arg(args.where, "--where")
        params = parse_params(args.param)
        t0 = time.perf_counter()
        if args.text is not None or args.image is not None:  # embedded as Collection.search and the server do
            result = col.search(text=args.text, image=args.image, k=args.k, where=where, index=args.index,
                                with_recall=args.with_recall, **params)
            if args.text is not None and not args.json:
                _print_reading(col, args.text)
        else:
            result = col.query(_query_vectors(args, col), k=args.k, where=where, index=args.index,
                               with_recall=args.with_recall, **params)
        elapsed = time.perf_counter() - t0
        if args.json:
            out = [{"hits": result.hits(i), **({"recall": float(result.recall[i])} if result.recall is not None else {})}
                   for i in range(len(result))]
            print(json.dumps(out, indent=1, default=str))
            return 0
        for i in range(len(result)):
            print(f"query {i}: index={result.stats['index']} {elapsed * 1000 / len(result):.2f} ms/query"
                  + (f"  recall@{args.k}={result.recall[i]:.2f}" if result.recall is not None else ""))
            for rank, hit in enumerate(result.hits(i), 1):
                mark = "" if result.true_knn is None else ("  true-knn" if hit["true_knn"] else "  (not a true knn)")
                meta = f"  {json.dumps(hit['metadata'])}" if hit.get("metadata") else ""
                print(f"  {rank:3d}. {hit['id']!s:24} distance={hit['distance']:.4f}{mark}{meta}")
        del np
    return 0


def _print_reading(col, text: str) -> None:
    """How the collection's text route read the query (its class, its description, what it cannot see)."""
    from .embed.queries import query_embedder

    embedder = query_embedder(col.embedder)
    if hasattr(embedder, "explain"):
        reading = embedder.explain(text)
        description = reading.get("description") or {}
        said = ", ".join(f"{k} {v['value']}" for k, v in description.items() if k != "notes")
        print(f"read as: {reading.get('class') or 'no class'}" + (f"; {said}" if said else ""))
        for note in description.get("notes", []):
            print(f"note: {note}")


def _query_vectors(args, col):
    import numpy as np

    from .errors import InvalidInputError

    if args.vector:
        return np.asarray(_json_arg(args.vector, "--vector"), dtype=np.float32)
    if args.like_id is not None:
        return col.get([_typed_id(args.like_id, False)]).vectors
    rows = _rows(args.rows)
    if args.file.suffix.lower() in (".hdf5", ".h5"):
        import h5py

        with h5py.File(args.file, "r") as f:
            return np.asarray(f["test"][rows])
    try:
        data = np.load(args.file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {args.file}: {exc}") from None
    return np.asarray(data[rows])


def _rows(text: str):
    from .errors import InvalidInputError

    try:
        if ":" in text:
            start, stop = text.split(":")
            return slice(int(start or 0), int(stop) if stop else None)
        return [int(text)]
    except ValueError:
        raise InvalidInputError(f"--rows takes N or START:STOP, got {text!r}") from None


def cmd_info(args) -> int:
    with _open(args) as db:
        if args.name:
            info = db.get_collection(args.name).info()
            print(json.dumps(info, indent=1) if args.json else _format_info(info))
        else:
            infos = [db.get_collection(n).info() for n in db.list_collections()]
            if args.json:
                print(json.dumps(infos, indent=1))
            else:
                print(f"database {db.path}: {len(infos)} collection(s)")
                for info in infos:
                    print("  " + _format_info(info).replace("\n", "\n  "))
    return 0


def _format_info(info: dict[str, Any]) -> str:
    indexes = ", ".join(info["indexes"])
    return (f"{info['name']}: {info['count']} points, dim={info['dim']}, metric={info['metric']}, "
            f"embedder={info['embedder']}\n  indexes: {indexes} (default: {info['default_index']})")


def cmd_delete(args) -> int:
    from .errors import InvalidInputError

    with _open(args) as db:
        col = db.get_collection(args.name)
        if args.where:
            n = col.delete(where=_json_arg(args.where, "--where"))
        elif args.ids:
            n = col.delete([_typed_id(i, args.str_ids) for i in args.ids])
        else:
            raise InvalidInputError("give ids to delete, or --where")
        print(f"deleted {n} point(s) from {col.name} (now {len(col)})")
    return 0


def cmd_drop(args) -> int:
    with _open(args) as db:
        db.drop_collection(args.name)
        print(f"dropped {args.name}")
    return 0


def cmd_index_build(args) -> int:
    params = {flag: getattr(args, f"build_{flag}") for flag in BUILD_FLAGS if getattr(args, f"build_{flag}") is not None}
    params.update(parse_params(args.param))
    with _open(args) as db:
        col = db.get_collection(args.name)
        print(f"building {args.type} over {len(col)} points of {col.name} ...", flush=True)
        report = col.create_index(args.type, default=not args.no_default, **params)
        shown = {k: v for k, v in report.items() if k not in ("dim", "metric", "type", "build_s", "count")}
        print(f"built {args.type} {shown} in {report['build_s']:.2f}s")
    return 0


def cmd_index_adapt(args) -> int:
    import numpy as np

    with _open(args) as db:
        col = db.get_collection(args.name)
        if args.queries:
            queries = np.load(args.queries, allow_pickle=False)
        elif args.from_log:
            from .tune import logged_text_queries

            queries = logged_text_queries(db.path, col)
        else:
            from .embed.base import get_embedder, query_route
            from .embed.garments import generated_text_queries
            from .errors import InvalidInputError

            if not col.embedder:
                raise InvalidInputError(f"collection {col.name!r} records no embedder to embed generated queries")
            texts, _ = generated_text_queries(args.generated, seed=2)
            queries = get_embedder(query_route(col.embedder)).embed_texts(texts)
        report = col.adapt_index(args.type, queries, args.neighbors)
        print(f"{args.type} of {col.name}: {report['links_added']} links from {report['queries']} sample queries")
    return 0


def cmd_index_drop(args) -> int:
    with _open(args) as db:
        db.get_collection(args.name).drop_index(args.type)
        print(f"dropped index {args.type} of {args.name}")
    return 0


def cmd_snapshot(args) -> int:
    with _open(args) as db:
        report = db.snapshot(args.file)
    print(f"snapshot {args.file}: {report['size']:,} bytes in {report['seconds']:.2f}s")
    return 0


def cmd_restore(args) -> int:
    from .database import Database

    db = Database.restore(args.file, args.db)
    print(f"restored {args.file} into {db.path}: collections {db.list_collections()}")
    db.close()
    return 0


def cmd_check(args) -> int:
    from .database import check

    for name, report in check(args.db).items():
        print(f"{name}: {report['rows']:,} rows in {report['batches']} batches, checksums and SQLite ok")
    return 0


def cmd_migrate(args) -> int:
    from .database import Database, migrate

    moved = migrate(args.db)
    Database(args.db, create=False).close()  # the marker is checked as every later open will
    print(f"{args.db}: " + (f"migrated {', '.join(moved)}" if moved else "already in this release's format"))
    return 0


def cmd_optimize(args) -> int:
    with _open(args) as db:
        done = db.get_collection(args.name).optimize()
    print(", ".join(f"{index}: {rows:,} rows indexed" for index, rows in done.items()) or "no index to catch up")
    return 0


def cmd_train_image_tower(args) -> int:
    from .embed.image_tower import train_image_tower

    result = train_image_tower(args.out, epochs=args.epochs, seed=args.seed, threads=args.threads, limit=args.limit)
    print(result)
    return 0


def cmd_tune(args) -> int:
    import numpy as np

    from .errors import InvalidInputError

    modality, queries = args.modality, None
    if args.queries and args.from_log:
        raise InvalidInputError("--queries and --from-log are two sources of queries: give one")
    with _open(args) as db:
        col = db.get_collection(args.name)
        if args.queries:
            queries = np.load(args.queries, allow_pickle=False)
        elif args.from_log:
            from .tune import logged_text_queries

            modality = "text"
            queries = logged_text_queries(db.path, col)
            print(f"tuning on {len(queries)} distinct text queries of the query log, re-embedded")
        report = col.tune(args.index, args.target, args.k, sample=args.sample, apply=not args.no_apply,
                          queries=queries, modality=modality)
        for row in report.tried:
            print("  " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        print(report.summary())
    return 0


def cmd_demo(args) -> int:
    if args.synthetic:
        from .demo import run_synthetic_demo

        return run_synthetic_demo(db_path=args.db, n=args.n, dim=args.dim, seed=args.seed)
    from .fashion_demo import run_fashion_demo

    return run_fashion_demo(args.db or "fashion-db", serve=not args.no_serve, host=args.host, port=args.port,
                            limit=args.limit)


def cmd_ingest(args) -> int:
    from .catalog.ingest import catalog_collection, ingest
    from .catalog.sources import FashionMNISTSource, FolderSource, HMSource
    from .embed import get_embedder
    from .errors import InvalidInputError

    kind, _, path = args.source.partition(":")
    if kind == "fashion-mnist":
        source = FashionMNISTSource(limit=args.limit)
    elif kind == "hm" and path:
        source = HMSource(path, limit=args.limit)
    elif kind == "folder" and path:
        source = FolderSource(path, csv_path=args.csv, limit=args.limit)
    else:
        raise InvalidInputError(f"--source must be fashion-mnist, hm:DIR or folder:DIR, got {args.source!r}")
    kwargs = {"allow_download": True} if args.allow_download and args.embedder.startswith("clip") else {}
    embedder = get_embedder(args.embedder, **kwargs)
    with _open(args) as db:
        col = catalog_collection(db, args.name, embedder)
        report = ingest(col, source, embedder, batch_size=args.batch_size)
        print(f"{col.name}: {report.summary()}; now {len(col)} items")
        if getattr(source, "missing", 0):
            print(f"{source.missing} catalog rows had no image file and were skipped")
    return 0


# ---------------------------------------------------------------------- parsing helpers
def _json_arg(text: str | None, flag: str):
    from .errors import InvalidInputError

    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(f"{flag} is not valid JSON: {exc}") from None


def _typed_id(text: str, as_str: bool) -> Any:
    return int(text) if not as_str and text.lstrip("-").isdigit() else text


if __name__ == "__main__":
    sys.exit(main())
