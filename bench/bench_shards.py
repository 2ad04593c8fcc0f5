"""Sharded lookalike on a local Ray: ingest throughput and query QPS for 1, 2 and 4 shards, next to one local
Database without Ray.  Prints a Markdown table (the figures in docs/scaling.md come from it).

    python bench/bench_shards.py                       # 100k x 128, cosine, shards 1,2,4
    python bench/bench_shards.py --n 20000 --shards 1,2 --out results.json

Measured per shard count:
  ingest      vectors/s of ``ingest_vectors`` (Ray Data, .npy) and of ``col.add`` batches from the driver
  flat        batch QPS (all queries in one call) and single-query QPS / p50 latency (one call per query)
  ivf         the same with nlist ~ 4 sqrt(points per shard), nprobe fixed, plus recall@10 against exact search
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(8, n // 500), dim)).astype(np.float32)
    x = centers[rng.integers(0, len(centers), size=n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    return x.astype(np.float32)


def measure_queries(col, queries: np.ndarray, k: int, singles: int, **params) -> dict:
    col.query(queries[:4], k, **params)  # warm-up: JIT caches, index load
    t0 = time.perf_counter()
    col.query(queries, k, **params)
    batch_s = time.perf_counter() - t0
    latencies = []
    for q in queries[:singles]:
        t1 = time.perf_counter()
        col.query(q, k, **params)
        latencies.append(time.perf_counter() - t1)
    lat = np.array(latencies)
    out = {"batch_qps": len(queries) / batch_s, "single_qps": len(lat) / lat.sum(),
           "p50_ms": 1000 * float(np.median(lat)), "p99_ms": 1000 * float(np.quantile(lat, 0.99))}
    if "nprobe" in params:  # measured apart: the exact search it needs is not part of the timings
        out["recall"] = float(col.query(queries, k, with_recall=True, **params).recall.mean())
    return out


def run_local(x: np.ndarray, queries: np.ndarray, args, workdir: Path, blas_threads: int | None) -> dict:
    """One Database in this process.  ``blas_threads=1`` matches a shard actor, which Ray runs with
    OMP_NUM_THREADS=1 (it reserves no CPU)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(blas_threads):
        return _run_local(x, queries, args, workdir / f"local-{blas_threads}", blas_threads)


def _run_local(x: np.ndarray, queries: np.ndarray, args, path: Path, blas_threads: int | None) -> dict:
    from lookalike import Database

    db = Database(path)
    col = db.create_collection("bench", x.shape[1], "cosine")
    t0 = time.perf_counter()
    for start in range(0, len(x), args.batch):
        col.add(list(range(start, min(start + args.batch, len(x)))), x[start : start + args.batch])
    threads = "all" if blas_threads is None else blas_threads
    row = {"setup": f"local, no Ray (BLAS threads: {threads})", "add_per_s": len(x) / (time.perf_counter() - t0)}
    row["flat"] = measure_queries(col, queries, args.k, args.singles, index="flat")
    nlist = round(4 * math.sqrt(len(x)))
    col.create_index("ivf", nlist=nlist)
    row["ivf"] = measure_queries(col, queries, args.k, args.singles, index="ivf", nprobe=args.nprobe)
    row["nlist"] = nlist
    db.close()
    return row


def run_sharded(n_shards: int, x: np.ndarray, queries: np.ndarray, npy: Path, args, workdir: Path) -> dict:
    from lookalike.distributed import ShardedDatabase, ingest_vectors

    sdb = ShardedDatabase(workdir / f"sharded-{n_shards}", n_shards=n_shards)
    col = sdb.create_collection("bench", x.shape[1], "cosine")
    report = ingest_vectors(sdb, "bench", npy, batch_size=args.batch, progress=False)
    row = {"setup": f"{n_shards} shard(s)", "ingest_per_s": report.added / report.seconds}
    second = sdb.create_collection("bench_add", x.shape[1], "cosine")
    t0 = time.perf_counter()
    for start in range(0, len(x), args.batch):
        second.add(list(range(start, min(start + args.batch, len(x)))), x[start : start + args.batch])
    row["add_per_s"] = len(x) / (time.perf_counter() - t0)
    sdb.drop_collection("bench_add")
    row["flat"] = measure_queries(col, queries, args.k, args.singles, index="flat")
    nlist = round(4 * math.sqrt(len(x) / n_shards))
    t0 = time.perf_counter()
    col.create_index("ivf", nlist=nlist)
    row["ivf_build_s"] = time.perf_counter() - t0
    row["ivf"] = measure_queries(col, queries, args.k, args.singles, index="ivf", nprobe=args.nprobe)
    row["nlist"] = nlist
    sdb.close()
    return row


def warm_up_ray_data(workdir: Path, dim: int) -> None:
    """Ray Data's first dataset of a session pays for starting its workers: not part of any measurement."""
    from lookalike.distributed import ShardedDatabase, ingest_vectors

    np.save(workdir / "warm.npy", clustered(2_000, dim, seed=1))
    with ShardedDatabase(workdir / "warm-up", n_shards=1) as sdb:
        sdb.create_collection("warm", dim, "cosine")
        ingest_vectors(sdb, "warm", workdir / "warm.npy", progress=False)


def table(rows: list[dict]) -> str:
    lines = ["| setup | ingest (Ray Data) vec/s | add vec/s | flat batch QPS | flat single QPS (p50 ms) "
             "| IVF nlist | IVF batch QPS | IVF single QPS (p50 ms) | IVF recall@10 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ingest = f"{r['ingest_per_s']:,.0f}" if "ingest_per_s" in r else "—"
        f, i = r["flat"], r["ivf"]
        lines.append(f"| {r['setup']} | {ingest} | {r['add_per_s']:,.0f} | {f['batch_qps']:,.0f} | "
                     f"{f['single_qps']:,.0f} ({f['p50_ms']:.1f}) | {r['nlist']} | {i['batch_qps']:,.0f} | "
                     f"{i['single_qps']:,.0f} ({i['p50_ms']:.1f}) | {i.get('recall', float('nan')):.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--singles", type=int, default=200, help="queries sent one call at a time")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--nprobe", type=int, default=8)
    parser.add_argument("--batch", type=int, default=5_000, help="vectors per add / ingest batch")
    parser.add_argument("--shards", default="1,2,4")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)

    import logging

    import ray

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    try:
        x = clustered(args.n + args.queries, args.dim, seed=0)
        x, queries = x[: args.n], x[args.n :]
        npy = workdir / "vectors.npy"
        np.save(npy, x)
        warm_up_ray_data(workdir, args.dim)
        rows = [run_local(x, queries, args, workdir, threads) for threads in (None, 1)]
        print(f"local: {json.dumps(rows)}", file=sys.stderr, flush=True)
        for n_shards in [int(s) for s in args.shards.split(",")]:
            rows.append(run_sharded(n_shards, x, queries, npy, args, workdir))
            print(f"{n_shards} shards: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        ray.shutdown()
    print(f"\n{args.n:,} x {args.dim} cosine, {args.queries} queries, k={args.k}, nprobe={args.nprobe}, "
          f"local Ray with {args.num_cpus} CPUs\n")
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
