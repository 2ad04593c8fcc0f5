"""Sharded lookalike on a local Ray: ``lookalike bench --shards N:D`` (the figures of docs/scaling.md).

    lookalike bench --shards 100k:128 --shards-counts 1,2,4 --shards-cpus 2
    lookalike bench --shards 20000:64 --shards-counts 1,2 --queries 200

Clustered cosine vectors (``datasets.synthetic``), then, for one local Database without Ray (with every BLAS
thread, and with one as a shard actor has) and for each shard count:
  ingest      vectors/s of ``ingest_vectors`` (Ray Data, .npy) and of ``col.add`` batches from the driver
  flat        batch QPS (all queries in one call) and single-query QPS / p50 latency (one call per query)
  ivf         the same with nlist ~ 4 sqrt(points per shard), nprobe fixed, plus recall@10 against exact search
(formerly bench/bench_shards.py, now its thin caller.)
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .datasets import synthetic
from .measures import latency_percentiles


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
    summary = latency_percentiles(latencies)
    out = {"batch_qps": len(queries) / batch_s, "single_qps": len(latencies) / sum(latencies),
           "p50_ms": summary["p50"], "p99_ms": summary["p99"]}
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

    np.save(workdir / "warm.npy", synthetic(2_000, dim, n_queries=1, seed=1).train)
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


def measure_shards(n: int = 100_000, dim: int = 128, *, queries: int = 1_000, singles: int = 200, k: int = 10,
                   nprobe: int = 8, batch: int = 5_000, shard_counts: tuple[int, ...] = (1, 2, 4), num_cpus: int = 2,
                   seed: int = 0, progress=print) -> dict:
    """The rows of the module docstring, one per setup."""
    import logging

    import ray

    args = SimpleNamespace(k=k, singles=singles, nprobe=nprobe, batch=batch)
    ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    try:
        data = synthetic(n, dim, n_queries=queries, seed=seed)
        x, q = data.train, data.test
        npy = workdir / "vectors.npy"
        np.save(npy, x)
        warm_up_ray_data(workdir, dim)
        rows = []
        for threads in (None, 1):
            rows.append(run_local(x, q, args, workdir, threads))
            progress(f"{rows[-1]['setup']}: done")
        for n_shards in shard_counts:
            rows.append(run_sharded(n_shards, x, q, npy, args, workdir))
            progress(f"{n_shards} shard(s): done")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        ray.shutdown()
    return {"n": n, "dim": dim, "queries": queries, "k": k, "nprobe": nprobe, "num_cpus": num_cpus, "rows": rows}


def report(figures: dict) -> str:
    return (f"{figures['n']:,} x {figures['dim']} cosine, {figures['queries']} queries, k={figures['k']}, "
            f"nprobe={figures['nprobe']}, local Ray with {figures['num_cpus']} CPUs\n\n" + table(figures["rows"]))
