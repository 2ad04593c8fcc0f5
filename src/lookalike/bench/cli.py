"""``lookalike bench``: the command line of the benchmark harness.

``add_bench_arguments(parser)`` declares the options on a parser (the ``bench`` subcommand's), ``run_bench(args)``
runs them and returns the exit status: 0 done, 1 nothing could be measured, 2 bad input (message on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

from ..errors import LookalikeError
from .datasets import DATASET_SPEC_HELP, DEFAULT_QUERIES, Dataset

DEFAULT_DATASET = "synthetic:10000:64"
DEFAULT_OUT = "bench-results"

EPILOG = f"""\
{DATASET_SPEC_HELP}

algorithms (--algorithms, comma list): exact names (lookalike-hnsw, faiss-hnsw, hnswlib, annoy, ...),
  shell patterns (lookalike-*), or a bare word picking every name containing it (hnsw); --list shows them.
  Each comes from a TOML file (build = {{name = [values]}}, query = {{name = [values]}}): the index is built once
  per build combination and every query combination is swept on it.  Lookalike index types come from
  lookalike.index.registry.available(); peers (faiss, hnswlib, annoy: pip install 'lookalike[bench]') are
  skipped with a message when not installed.

output: OUT/<data set>-k<k>-<mode>-<time>.json (schema in docs/bench.md), and .png / .svg recall-QPS plots;
  the Pareto table is printed.  Examples:
  lookalike bench                                    # ~1 minute: synthetic 10k x 64, every algorithm
  lookalike bench -d fashion-mnist-784-euclidean --queries 1000 -a flat,ivf,hnsw --sweep full
  lookalike bench -d glove-100-angular.hdf5 --batch --threads 2
  lookalike bench --show bench-results/x.json        # table and plots again from a result file"""


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare every ``lookalike bench`` option on ``parser``."""
    if parser.formatter_class is argparse.HelpFormatter:
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = parser.description or (
        "Benchmark lookalike's indexes against peers, ann-benchmarks style: recall@k vs queries per second."
    )
    parser.epilog = EPILOG
    data = parser.add_argument_group("data")
    data.add_argument("-d", "--dataset", default=DEFAULT_DATASET, metavar="SPEC",
                      help=f"data set to run on (see below; default {DEFAULT_DATASET})")
    data.add_argument("--queries", type=int, default=None, metavar="N",
                      help="number of queries: the first N of a file, N fresh ones for synthetic:/collection: "
                           f"(default: all of a file, {DEFAULT_QUERIES} otherwise)")
    data.add_argument("--metric", choices=("angular", "euclidean", "dot"), default=None,
                      help="metric of a synthetic set (default angular); a file's own metric is checked against it")
    data.add_argument("--seed", type=int, default=0, help="seed of synthetic data, held-out queries and builds")
    data.add_argument("--cache-dir", default=None, metavar="DIR",
                      help="where ground truth and built data sets are cached, and NAME.hdf5 files are looked up "
                           "(default $LOOKALIKE_BENCH_CACHE or ~/.cache/lookalike/bench)")

    algos = parser.add_argument_group("algorithms")
    algos.add_argument("-a", "--algorithms", default=None, metavar="LIST",
                       help="comma list of algorithm names / patterns (default: every available one)")
    algos.add_argument("--config-dir", default=None, metavar="DIR",
                       help="extra *.toml algorithm definitions; a table named like a built-in one replaces it")
    algos.add_argument("--sweep", choices=("quick", "full"), default="quick",
                       help="quick: the small parameter grids (default); full: the ann-benchmarks-sized ones")
    algos.add_argument("--list", action="store_true", help="list the algorithms, whether each can run, and exit")
    algos.add_argument("--preset", default=None, metavar="NAME",
                       help="a named comparison (core: exact search and IVF vs NumPy and faiss; hnsw: vs hnswlib and "
                            "faiss; trees: RPForest vs annoy, and LSH): its data set, algorithms, grids and modes "
                            "(src/lookalike/bench/presets/NAME.toml); -d, --queries, --metric, -a given here win")

    timing = parser.add_argument_group("measurement")
    timing.add_argument("-k", "--k", type=int, default=10, help="neighbours per query; recall@k (default 10)")
    timing.add_argument("--runs", type=int, default=3, help="timed passes per query setting, best kept (default 3)")
    timing.add_argument("--warmup", type=int, default=50, metavar="N",
                        help="queries answered untimed before timing each setting (default 50)")
    mode = timing.add_mutually_exclusive_group()
    mode.add_argument("--single", dest="mode", action="store_const", const="single",
                      help="one query per call, each timed: QPS and p50/p95/p99 latency (the default)")
    mode.add_argument("--batch", dest="mode", action="store_const", const="batch",
                      help="all queries in one call: throughput QPS, no latency percentiles")
    parser.set_defaults(mode="single")
    timing.add_argument("--threads", type=int, default=None, metavar="N",
                        help="threads for lookalike (Numba + BLAS) and the peers' own settings "
                             "(default 1 with --single, every core with --batch)")
    timing.add_argument("--epsilon", type=float, default=1e-3,
                        help="recall slack: a hit counts if its distance <= the k-th true distance + epsilon")
    timing.add_argument("--recall-target", type=float, default=0.9,
                        help="the summary lists the best QPS at recall >= this (default 0.9)")

    out = parser.add_argument_group("output")
    out.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                     help=f"directory for the JSON result and the plots (default ./{DEFAULT_OUT})")
    out.add_argument("--no-plot", action="store_true", help="do not draw the recall-QPS plot")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    modal = parser.add_argument_group("text vs photo queries")
    modal.add_argument("--modalities", default=None, metavar="DB[:COLLECTION]",
                       help="instead of the above: recall-QPS curves of photo queries and generated text queries on "
                            "a collection's indexes (default collection fashion-mnist), one plot")
    modal.add_argument("--text-embedders", default=None, metavar="LIST",
                       help="with --modalities: text routes to embed the text queries (default: the collection's)")
    described = parser.add_argument_group("text search by description")
    described.add_argument("--descriptions", default=None, metavar="DB[:COLLECTION]",
                           help="instead of the above: generated phrasings ('white X', 'a striped X', 'a long dress', "
                                "...) searched on a Fashion-MNIST catalog (default collection fashion-mnist); the "
                                "hits' within-class percentiles of lightness, texture and shape, and photo precision")
    writes = parser.add_argument_group("searches while another client writes")
    writes.add_argument("--writes", action="store_true",
                        help="instead of the above: one client searches a served collection (N x D from "
                             "--writes-size, HNSW) alone, then while a second adds --writes-new points in batches "
                             "of 1,000 over HTTP: its latency, the writer's vectors/s, read-your-writes")
    writes.add_argument("--writes-size", default="100k:128", metavar="N:D",
                        help="the served collection (default 100k:128)")
    writes.add_argument("--writes-new", default="20k", metavar="N", help="points the writer adds (default 20k)")
    writes.add_argument("--chroma-python", default=None, metavar="PYTHON",
                        help="a Python with chromadb installed: Chroma's server measured the same way, same run")
    ingest = parser.add_argument_group("durable ingest, disk, cold start, memory")
    ingest.add_argument("--ingest", default=None, metavar="N:D",
                        help="instead of the above: N x D vectors (e.g. 1m:128) added in durable batches of 50,000 "
                             "by a fresh process; the directory's bytes, a fresh process's open + first exact query, "
                             "its memory after exact, IVF and IVF-PQ queries")
    ingest.add_argument("--peer-python", default=None, metavar="PYTHON",
                        help="a Python with lancedb and/or chromadb: their ingest and bytes on disk, same run")
    ingest.add_argument("--peer-size", default=None, metavar="N", help="points the peers ingest (default: N)")
    snapshot = parser.add_argument_group("online snapshots")
    snapshot.add_argument("--snapshot", default=None, metavar="DB|synthetic:N[:D]",
                          help="instead of the above: a snapshot of a copy of DB (or of N random points) while one "
                               "thread writes batches of 1,000 and another searches: its time, size and the pauses")
    snapshot.add_argument("--snapshot-no-load", action="store_true",
                          help="with --snapshot: only the snapshot's time and size")
    layers = parser.add_argument_group("every layer a user meets")
    layers.add_argument("--layers", default=None, metavar="DATASETS", nargs="?",
                        const="fashion-mnist-784-euclidean,clustered-100k-128-cosine",
                        help="instead of the above: HNSW and IVF in a Collection, each at the smallest parameter "
                             "reaching recall@10 0.95, measured as the bare index, Collection.query, over HTTP with "
                             "one and four clients, beside hnswlib, faiss and (--chroma-python) Chroma; DATASETS: "
                             "comma-separated data set specs (default: fashion-mnist-784 and clustered 100k x 128)")
    layers.add_argument("--layers-window", type=float, default=3.0, metavar="SECONDS",
                        help="with --layers: how long the HTTP clients of each round query, all through one window")
    load = parser.add_argument_group("the server under load")
    load.add_argument("--load", default=None, metavar="DB[:COLLECTION]",
                      help="instead of the above: `lookalike serve` of DB on loopback, /search driven with text, "
                           "vector and photo queries at rising concurrency: QPS, p50/p95/p99, errors, server memory "
                           "(default collection fashion-mnist)")
    load.add_argument("--load-url", default=None, metavar="URL",
                      help="with --load: a running server on a loopback address instead of starting one")
    load.add_argument("--load-levels", default="1,4,16,32", metavar="LIST",
                      help="concurrency levels (default 1,4,16,32)")
    load.add_argument("--load-requests", type=int, default=2500, metavar="N", help="requests per level at most")
    load.add_argument("--load-seconds", type=float, default=45.0, metavar="S", help="seconds per level at most")
    load.add_argument("--load-modes", default="text,vector,photo", metavar="LIST",
                      help="query kinds, in turn (default text,vector,photo)")
    load.add_argument("--load-mixed", action="store_true", help="also run each level while indexes are rebuilt")
    scaling = parser.add_argument_group("a million vectors on one machine")
    scaling.add_argument("--scaling", default=None, metavar="N:D", nargs="?", const="1m:128",
                         help="instead of the above: N x D clustered cosine vectors (default 1m:128) end to end: "
                              "durable ingest, IVF / IVF-PQ / HNSW builds and batch QPS at recall 0.95 beside faiss "
                              "and hnswlib, a fresh process's memory, disk; a capacity plan (docs/scaling.md)")
    scaling.add_argument("--scaling-nlist", type=int, default=1024, metavar="N", help="IVF and IVF-PQ lists")
    scaling.add_argument("--scaling-m", type=int, default=32, metavar="M", help="IVF-PQ sub-quantizers")
    scaling.add_argument("--scaling-batch", type=int, default=50_000, metavar="N", help="points per durable add")
    scaling.add_argument("--scaling-skip-hnsw", action="store_true", help="without the HNSW builds")
    shards = parser.add_argument_group("sharded on Ray")
    shards.add_argument("--shards", default=None, metavar="N:D", nargs="?", const="100k:128",
                        help="instead of the above: N x D clustered cosine vectors (default 100k:128) on a local Ray: "
                             "ingest, flat and IVF query rates of one Database and of each shard count")
    shards.add_argument("--shards-counts", default="1,2,4", metavar="LIST", help="shard counts (default 1,2,4)")
    shards.add_argument("--shards-cpus", type=int, default=2, metavar="N", help="CPUs of the local Ray (default 2)")
    embed = parser.add_argument_group("embedders")
    embed.add_argument("--embedders", default=None, metavar="LIST", nargs="?",
                       const="minilm-fmnist+use-m,minilm-fmnist-described+use-m",
                       help="instead of the above: each embedder (comma list; default the shopper's and the described "
                            "text route) over the Fashion-MNIST catalog: catalog embedding rate, text/image alignment, "
                            "shoppers' words and languages (>= 6 of 10 nearest of the class), single-call latency "
                            "(--runs calls; --queries N: the first N images of each split)")
    filters = parser.add_argument_group("filtered search")
    filters.add_argument("--filters", default=None, metavar="N:D", nargs="?", const="100k:128",
                         help="instead of the above: N x D clustered vectors (default 100k:128) with metadata, HNSW "
                              "at ef 32, one query per call through Collection.query(where=...): unfiltered and "
                              "with filters passing 50%%, 10%%, 1%% and a 5%% price range; --peer-python adds "
                              "Chroma's PersistentClient")
    filters.add_argument("--filters-page", default=None, metavar="DB[:COLLECTION]",
                         help="with --filters: also text searches through `lookalike serve` over this catalog "
                              "(default collection fashion-mnist), without and with the page's class filter")
    filters.add_argument("--filters-ef", type=int, default=32, metavar="EF",
                         help="with --filters: the HNSW ef of every query (default 32)")
    out.add_argument("--show", default=None, metavar="RESULT.json",
                     help="print the table (and redraw the plots unless --no-plot) of a saved result, and exit")


def run_bench(args: argparse.Namespace) -> int:
    """Run ``lookalike bench`` with parsed ``args``; returns the exit status."""
    try:
        if args.list:
            return _list_algorithms(args)
        if args.show:
            return _show(args)
        if args.preset:
            return _preset(args)
        suites = {"modalities": _modalities, "descriptions": _descriptions, "writes": _writes, "ingest": _ingest,
                  "filters": _filters, "layers": _layers, "snapshot": _snapshot, "embedders": _embedders,
                  "load": _load, "shards": _shards, "scaling": _scaling}
        for option, suite in suites.items():  # a suite's option runs it instead of the recall/QPS sweep
            if getattr(args, option):
                return suite(args)
        return _run(args)
    except LookalikeError as exc:
        print(f"lookalike bench: {exc}", file=sys.stderr)
        return 2


def _modalities(args: argparse.Namespace) -> int:
    """``--modalities DB[:COLLECTION]``: lookalike.bench.modality, printed and plotted into --out."""
    from ..database import Database
    from ..embed.base import query_route
    from .modality import measure_modalities, plot, report

    db_path, _, name = args.modalities.partition(":")
    with Database(db_path) as db:
        col = db.get_collection(name or "fashion-mnist")
        if not col.embedder and not args.text_embedders:
            raise _bad(f"collection {col.name!r} records no embedder: pass --text-embedders")
        embedders = (args.text_embedders or query_route(col.embedder)).split(",")
        curves = measure_modalities(col, embedders, args.queries or 200, args.seed)
        print(f"{col.name}: {len(col)} points; photo queries vs text queries ({', '.join(embedders)})")
        print(report(curves))
        if not args.no_plot:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            plot(curves, str(out / f"modalities-{col.name}"), col.name)
    return 0


def _writes(args: argparse.Namespace) -> int:
    """``--writes``: lookalike.bench.writes, printed and written as JSON into --out."""
    import tempfile

    from .datasets import _parse_count
    from .writes import measure_writes, report

    size, _, dim = args.writes_size.partition(":")
    n, d = _parse_count(size, args.writes_size), _parse_count(dim or "128", args.writes_size)
    new = _parse_count(args.writes_new, args.writes_new)
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-writes-") as work:
        results = measure_writes(Path(work), n=n, dim=d, new=new, seed=args.seed, chroma_python=args.chroma_python)
    return _print_and_save(args, "writes", results, report(results))


def _ingest(args: argparse.Namespace) -> int:
    """``--ingest N:D``: lookalike.bench.ingest, printed and written as JSON into --out."""
    import tempfile

    from .datasets import _parse_count
    from .ingest import measure_ingest, report

    size, _, dim = args.ingest.partition(":")
    n, d = _parse_count(size, args.ingest), _parse_count(dim or "128", args.ingest)
    peer_n = _parse_count(args.peer_size, args.peer_size) if args.peer_size else None
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-ingest-", dir=args.cache_dir) as work:
        results = measure_ingest(Path(work), n=n, dim=d, seed=args.seed, peer_python=args.peer_python,
                                 peer_n=peer_n)
    return _print_and_save(args, "ingest", results, report(results))


def _snapshot(args: argparse.Namespace) -> int:
    """``--snapshot SOURCE``: lookalike.bench.snapshot, printed and written as JSON into --out."""
    from .snapshot import measure_snapshot, report

    figures = measure_snapshot(args.snapshot, load=not args.snapshot_no_load)
    return _print_and_save(args, "snapshot", figures, report(figures))


def _layers(args: argparse.Namespace) -> int:
    """``--layers [DATASETS]``: lookalike.bench.layers, printed and written as JSON into --out."""
    from .layers import measure_layers

    results = measure_layers(args.layers, queries=args.queries or 1000, rounds=args.runs,
                             chroma_python=args.chroma_python, window=args.layers_window)
    return _print_and_save(args, "layers", results, f"{len(results)} data set(s) measured")


def _load(args: argparse.Namespace) -> int:
    """``--load DB[:COLLECTION]``: lookalike.bench.load, printed and written as JSON into --out; status 1 when a
    valid request failed."""
    from .load import measure_load, report

    db, _, name = args.load.partition(":")
    summary = measure_load(None if args.load_url else db, name or "fashion-mnist", url=args.load_url,
                           levels=tuple(int(n) for n in args.load_levels.split(",")), requests=args.load_requests,
                           time_limit=args.load_seconds, modes=tuple(args.load_modes.split(",")),
                           mixed=args.load_mixed, k=args.k)
    status = _print_and_save(args, "load", summary, report(summary))
    return status if summary["total_errors"] == 0 else 1


def _scaling(args: argparse.Namespace) -> int:
    """``--scaling [N:D]``: lookalike.bench.scaling, printed and written as JSON into --out."""
    from .datasets import _parse_count
    from .scaling import measure_scaling, report

    size, _, dim = args.scaling.partition(":")
    figures = measure_scaling(_parse_count(size, args.scaling), _parse_count(dim or "128", args.scaling),
                              queries=args.queries or 1000, batch=args.scaling_batch, nlist=args.scaling_nlist,
                              m=args.scaling_m, threads=args.threads, skip_hnsw=args.scaling_skip_hnsw,
                              progress=_say)
    return _print_and_save(args, "scaling", figures, report(figures))


def _shards(args: argparse.Namespace) -> int:
    """``--shards [N:D]``: lookalike.bench.shards, printed and written as JSON into --out."""
    from .datasets import _parse_count
    from .shards import measure_shards, report

    size, _, dim = args.shards.partition(":")
    figures = measure_shards(_parse_count(size, args.shards), _parse_count(dim or "128", args.shards),
                             queries=args.queries or 1000, k=args.k, seed=args.seed,
                             shard_counts=tuple(int(c) for c in args.shards_counts.split(",")),
                             num_cpus=args.shards_cpus, progress=_say)
    return _print_and_save(args, "shards", figures, report(figures))


def _embedders(args: argparse.Namespace) -> int:
    """``--embedders [LIST]``: lookalike.bench.embedders, printed and written as JSON into --out."""
    from .embedders import measure_embedders, report

    figures = measure_embedders(args.embedders, limit=args.queries, repeats=max(args.runs, 10))
    return _print_and_save(args, "embedders", figures, report(figures))


def _filters(args: argparse.Namespace) -> int:
    """``--filters [N:D]``: lookalike.bench.filters, printed and written as JSON into --out."""
    import tempfile

    from .datasets import _parse_count
    from .filters import measure_filters, report

    size, _, dim = args.filters.partition(":")
    n, d = _parse_count(size, args.filters), _parse_count(dim or "128", args.filters)
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-filters-", dir=args.cache_dir) as work:
        results = measure_filters(Path(work), n=n, dim=d, n_queries=args.queries or 1000, seed=args.seed,
                                  peer_python=args.peer_python, ef=args.filters_ef)
    if args.filters_page:
        from .filters import measure_page_filter

        db, _, name = args.filters_page.partition(":")
        results["page"] = measure_page_filter(Path(db), name or "fashion-mnist", seed=args.seed)
    return _print_and_save(args, "filters", results, report(results))


def _print_and_save(args: argparse.Namespace, suite: str, results: dict, text: str) -> int:
    """Print a suite's report and write its figures as JSON into --out."""
    import json
    from datetime import datetime

    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{suite}-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"written {path}")
    return 0


def _descriptions(args: argparse.Namespace) -> int:
    """``--descriptions DB[:COLLECTION]``: lookalike.bench.descriptions, printed and written as JSON into --out."""
    import json

    from ..database import Database
    from .descriptions import measure_descriptions, report

    db_path, _, name = args.descriptions.partition(":")
    with Database(db_path, create=False) as db:
        col = db.get_collection(name or "fashion-mnist")
        figures = measure_descriptions(col, seed=args.seed, photo_queries=args.queries or 1000)
        print(report(figures))
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"descriptions-{col.name}-{datetime.now():%Y%m%d-%H%M%S}.json"
        path.write_text(json.dumps({"collection": col.name, "embedder": col.embedder, **figures}, indent=1))
        print(f"wrote {path}")
    return 0


def _list_algorithms(args: argparse.Namespace) -> int:
    from .algorithms import availability
    from .definitions import load_definitions, select

    definitions = select(load_definitions(args.config_dir, args.sweep), args.algorithms)
    width = max(len(d.name) for d in definitions)
    for d in definitions:
        why = availability(d)
        status = "ready" if why is None else f"skipped: {why}"
        grid = f"{len(d.build_grid())} build x {len(d.query_grid())} query"
        params = ", ".join(f"{k}={v}" for k, v in {**d.build, **d.query}.items()) or "no parameters"
        print(f"{d.name:<{width}}  {grid:<18}  {status}\n{'':<{width}}  {params}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from .results import BenchResult, format_table

    result = BenchResult.load(args.show)
    print(format_table(result, args.recall_target))
    if not args.no_plot:
        _plot(result, Path(args.show).with_suffix(""))
    return 0


def _preset(args: argparse.Namespace) -> int:
    """``--preset NAME``: each run of the preset, in each of its modes, through the harness (``_run``)."""
    from .presets import load_preset

    preset = load_preset(args.preset, args.sweep)
    _say(f"preset {preset.name}: {preset.description}")
    status = 0
    for run in preset.runs:
        for mode in run.modes:
            given = {"dataset": None if args.dataset == DEFAULT_DATASET else args.dataset, "queries": args.queries,
                     "metric": args.metric, "algorithms": args.algorithms}
            chosen = {"dataset": run.dataset, "queries": run.queries, "metric": run.metric,
                      "algorithms": run.algorithms}
            settings = {key: given[key] if given[key] is not None else chosen[key] for key in given}
            status = max(status, _run(argparse.Namespace(**{**vars(args), **settings, "mode": mode}),
                                      preset.definitions))
    return status


def _run(args: argparse.Namespace, extra_definitions=()) -> int:
    from .datasets import load_dataset
    from .definitions import load_definitions, select
    from .groundtruth import default_cache_dir, ground_truth
    from .results import format_table
    from .runner import RunSettings, run_benchmark

    _check_positive(args, "k", "runs", "queries", "threads")
    if args.warmup < 0:
        raise _bad(f"--warmup must be >= 0, got {args.warmup}")
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    definitions = select(load_definitions(args.config_dir, args.sweep, extra_definitions), args.algorithms)
    dataset = load_dataset(args.dataset, cache_dir, n_queries=args.queries, seed=args.seed, metric=args.metric)
    if args.k > len(dataset.train):
        raise _bad(f"--k {args.k} is larger than the {len(dataset.train)} points of {dataset.name}")
    truth = ground_truth(dataset, args.k, cache_dir)
    threads = args.threads or (1 if args.mode == "single" else (os.cpu_count() or 1))
    settings = RunSettings(k=args.k, runs=args.runs, mode=args.mode, threads=threads, warmup=args.warmup,
                           epsilon=args.epsilon, seed=args.seed, sweep=args.sweep)
    _say(f"{dataset.name}: {len(dataset.train)} x {dataset.dim} {dataset.distance}, {len(dataset.test)} queries, "
         f"ground truth from {truth.source}; {len(definitions)} algorithm(s), mode {args.mode}, {threads} thread(s)")
    result = run_benchmark(dataset, truth, definitions, settings, progress=not args.no_progress)
    base = Path(args.out) / _result_name(dataset, settings.k, settings.mode)
    json_path = result.save(base.with_name(base.name + ".json"))
    print(format_table(result, args.recall_target))
    print(f"\nresult: {json_path}")
    if result.runs and not args.no_plot:
        _plot(result, base)
    if not result.runs:
        print("lookalike bench: no algorithm could be measured (see the skipped lines)", file=sys.stderr)
        return 1
    return 0


def _plot(result, base: Path) -> None:
    try:
        from .plots import plot_recall_qps

        paths = plot_recall_qps(result, base)
    except ImportError:
        print("plot skipped: matplotlib is not installed (pip install 'lookalike[bench]')", file=sys.stderr)
        return
    print("plots: " + ", ".join(str(p) for p in paths))


def _result_name(dataset: Dataset, k: int, mode: str) -> str:
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in dataset.name)
    return f"{safe}-k{k}-{mode}-{stamp}"


def _check_positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise _bad(f"--{name} must be >= 1, got {value}")


def _bad(message: str) -> LookalikeError:
    from ..errors import InvalidParameterError

    return InvalidParameterError(message)


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """``python -m lookalike.bench`` runs the same command."""
    parser = argparse.ArgumentParser(prog="lookalike bench")
    add_bench_arguments(parser)
    return run_bench(parser.parse_args(argv))
