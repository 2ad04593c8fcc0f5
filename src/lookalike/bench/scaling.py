"""A million vectors on one machine, end to end, beside faiss and hnswlib, in one run (results: docs/scaling.md):
``lookalike bench --scaling [N:D]`` (formerly bench/bench_scaling.py, now its thin caller).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE lookalike bench --scaling                    # 1M x 128
    lookalike bench --scaling 200k:128 --scaling-skip-hnsw --scaling-nlist 2048                # smaller

Steps, each timed in this process (2 cores here; the peers get the same threads):
  ingest     1M x 128 clustered cosine vectors (seeded, 100 clusters), string ids and small metadata, added to a Collection
             in batches, each batch one durable SQLite transaction: vectors/s
  build      IVF (nlist), IVF-PQ (nlist, m, nbits=8) and HNSW (M, ef_construction) through
             Collection.create_index, beside faiss IndexIVFFlat, IndexIVFPQ + IndexRefineFlat and hnswlib
  query      per system, the smallest query parameter whose recall@10 (against exact search) reaches 0.95, and
             the batch QPS there (lookalike through Collection.query, ids + metadata returned; peers bare)
  memory     a fresh process opens the collection and answers exact, IVF and IVF-PQ queries: its RSS growth
             against the raw float32 bytes; a second fresh process answers IVF-PQ queries only (the floats are
             read only for re-ranking: what must be resident when they do not fit in RAM)
  disk       bytes per index on disk (lookalike's derived files; faiss's and hnswlib's saved indexes)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .measures import best_of

TARGET = 0.95
K = 10
NPROBE_GRID = [1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128]
EF_GRID = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384]
RERANK_GRID = [2, 4, 8, 16, 32]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found.tolist(), truth.tolist())]))


def at_target(grid: list[dict], run, truth: np.ndarray, n_queries: int, to_rows=lambda ids: ids) -> dict:
    """Walk ``grid`` (parameter dicts, cheapest first) until recall reaches TARGET; report that point.
    ``run(params)`` answers the queries (timed); ``to_rows`` turns its answer into row numbers (not timed)."""
    point = None
    for params in grid:
        run(params)  # warm
        ids, seconds = best_of(lambda: run(params), 2)
        point = {"params": params, "recall": recall(to_rows(ids), truth), "qps": n_queries / seconds}
        if point["recall"] >= TARGET:
            break
    return point


def disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ---------------------------------------------------------------------------------------------- lookalike
def ingest(db_dir: Path, x: np.ndarray, batch: int) -> tuple[object, dict]:
    from lookalike import Database

    db = Database(db_dir)
    col = db.create_collection("products", dim=x.shape[1], metric="cosine")
    ids = [f"item-{i}" for i in range(len(x))]
    metadata = [{"category": i % 50, "price": i % 997} for i in range(len(x))]
    t0 = time.perf_counter()
    for start in range(0, len(x), batch):
        stop = start + batch
        col.add(ids[start:stop], x[start:stop], metadata[start:stop])
    seconds = time.perf_counter() - t0
    return (db, col), {"seconds": seconds, "vectors_per_s": len(x) / seconds, "batch": batch}


def lookalike_query_grid(kind: str) -> list[dict]:
    if kind == "ivf":
        return [{"nprobe": p} for p in NPROBE_GRID]
    if kind == "ivfpq":
        return [{"nprobe": p, "rerank": r} for p in NPROBE_GRID for r in RERANK_GRID]
    return [{"ef": e} for e in EF_GRID]


def cheapest_at_target(grid, run, truth, n_queries, to_rows=lambda ids: ids) -> dict:
    """IVF-PQ has two parameters: the fastest of the points reaching the target (each nprobe's smallest rerank)."""
    best = None
    by_nprobe: dict[int, list[dict]] = {}
    for params in grid:
        by_nprobe.setdefault(params["nprobe"], []).append(params)
    for nprobe, options in by_nprobe.items():
        point = at_target(options, run, truth, n_queries, to_rows)
        if point["recall"] >= TARGET and (best is None or point["qps"] > best["qps"]):
            best = point
        if best is not None and point["recall"] >= TARGET and point["params"]["rerank"] == options[0]["rerank"]:
            break  # more lists only cost more once the smallest re-rank already reaches the target
    return best or point


# ---------------------------------------------------------------------------------------------- peers
def faiss_runs(x, q, truth, nlist, m, threads, workdir) -> dict:
    import faiss

    faiss.omp_set_num_threads(threads)
    out = {}
    quantizer = faiss.IndexFlatIP(x.shape[1])
    ivf = faiss.IndexIVFFlat(quantizer, x.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    ivf.train(x)
    ivf.add(x)
    build = time.perf_counter() - t0

    def run_ivf(params):
        ivf.nprobe = params["nprobe"]
        return ivf.search(q, K)[1]

    faiss.write_index(ivf, str(workdir / "ivf.faiss"))
    out["ivf"] = {"build_s": build, **at_target([{"nprobe": p} for p in NPROBE_GRID], run_ivf, truth, len(q)),
                  "disk_bytes": disk_bytes(workdir / "ivf.faiss")}
    ivf = None  # freed before the next index is built (a million vectors: half a gigabyte)

    quantizer2 = faiss.IndexFlatIP(x.shape[1])
    pq = faiss.IndexIVFPQ(quantizer2, x.shape[1], nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
    refine = faiss.IndexRefineFlat(pq)
    t0 = time.perf_counter()
    refine.train(x)
    refine.add(x)
    build = time.perf_counter() - t0

    def run_pq(params):
        pq.nprobe, refine.k_factor = params["nprobe"], float(params["rerank"])
        return refine.search(q, K)[1]

    faiss.write_index(pq, str(workdir / "ivfpq.faiss"))  # the codes alone; the refine index keeps the floats
    out["ivfpq"] = {"build_s": build, **cheapest_at_target(lookalike_query_grid("ivfpq"), run_pq, truth, len(q)),
                    "disk_bytes": disk_bytes(workdir / "ivfpq.faiss")}
    return out


def hnswlib_run(x, q, truth, M, ef_construction, threads, workdir) -> dict:
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=x.shape[1])
    index.init_index(max_elements=len(x), M=M, ef_construction=ef_construction, random_seed=0)
    index.set_num_threads(threads)
    t0 = time.perf_counter()
    index.add_items(x, np.arange(len(x)))
    build = time.perf_counter() - t0

    def run(params):
        index.set_ef(params["ef"])
        return index.knn_query(q, K)[0]

    index.save_index(str(workdir / "hnswlib.bin"))
    return {"build_s": build, **at_target([{"ef": e} for e in EF_GRID], run, truth, len(q)),
            "disk_bytes": disk_bytes(workdir / "hnswlib.bin")}


# ---------------------------------------------------------------------------------------------- memory
MEMORY_PROBE = r"""
import json, sys, numpy as np
from lookalike import Database

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

db_dir, warm_dir, queries, plan = sys.argv[1], sys.argv[2], np.load(sys.argv[3]), json.loads(sys.argv[4])
warm = Database(warm_dir).get_collection("warm")  # compile/load every kernel on a tiny twin first
for name, params in plan:
    warm.query(queries[:50, : warm.dim], 10, index=name, **params)
base = rss()
col = Database(db_dir).get_collection("products")
steps = []
for name, params in plan:
    col.query(queries, 10, index=name, **params)
    steps.append([name, rss() - base])
print(json.dumps({"base": base, "steps": steps}))
"""


def make_warm_twin(warm_dir: Path, dim: int, plan) -> None:
    from lookalike import Database

    rng = np.random.default_rng(0)
    col = Database(warm_dir).create_collection("warm", dim=dim, metric="cosine")
    col.add(list(range(3000)), rng.standard_normal((3000, dim)).astype(np.float32))
    for name, params in plan:
        if name == "ivf":
            col.create_index("ivf", nlist=16)
        elif name == "ivfpq":
            col.create_index("ivfpq", nlist=16, m=params.get("m", 8))


def drop_page_cache() -> bool:
    """Start the probe as on a machine that has not read the files yet (root only; else the figures include
    file pages mapped from a warm page cache)."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        return True
    except OSError:
        return False


def memory_probe(db_dir: Path, warm_dir: Path, q: np.ndarray, plan) -> dict:
    cold = drop_page_cache()
    qfile = warm_dir.parent / "queries.npy"
    np.save(qfile, q)
    query_plan = [[name, {k: v for k, v in params.items() if k != "m"}] for name, params in plan]
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(db_dir), str(warm_dir), str(qfile),
                           json.dumps(query_plan)], capture_output=True, text=True, env=env, check=True)
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "cold_page_cache": cold}


# ---------------------------------------------------------------------------------------------- main
def measure_scaling(n: int = 1_000_000, dim: int = 128, *, queries: int = 1000, batch: int = 50_000,
                    nlist: int = 1024, m: int = 32, M: int = 16, ef_construction: int = 100,
                    threads: int | None = None, skip_hnsw: bool = False, workdir: Path | None = None,
                    progress=print) -> dict:
    """Every step of the module docstring; the figures as a dict (``report`` prints them)."""
    threads = threads or os.cpu_count() or 1
    keep = workdir is not None
    workdir = Path(workdir) if keep else Path(tempfile.mkdtemp(prefix="lookalike-scaling-"))
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(workdir / "db", ignore_errors=True)
    try:
        return _measure(n, dim, queries, batch, nlist, m, M, ef_construction, threads, skip_hnsw, workdir, progress)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _measure(n, dim, queries, batch, nlist, m, M, ef_construction, threads, skip_hnsw, workdir, progress) -> dict:
    from ..index.flat import FlatIndex
    from .datasets import synthetic

    data = synthetic(n, dim, clusters=100, n_queries=queries)  # as the layers suite
    x, q = data.train, data.test
    raw = x.nbytes
    report: dict = {"n": n, "dim": dim, "raw_bytes": raw, "threads": threads, "nlist": nlist, "m": m, "M": M,
                    "ef_construction": ef_construction}
    progress(f"{n:,} x {dim} cosine, raw float32 {raw / 2**20:.0f} MiB; {threads} threads")

    exact = FlatIndex(dim, "cosine")
    exact.add(x)
    truth = exact.search(q, K).ids
    del exact

    (db, col), report["ingest"] = ingest(workdir / "db", x, batch)
    progress(f"ingest: {report['ingest']['vectors_per_s']:,.0f} vectors/s (durable batches of {batch:,})")

    def to_rows(ids: np.ndarray) -> np.ndarray:  # "item-17" -> 17
        return np.array([[int(e[5:]) if e else -1 for e in row] for row in ids.tolist()], dtype=np.int64)

    def run_collection(name):
        def run(params):  # ids + metadata, as users get them
            result = col.query(q, K, index=name, **params)
            result.metadatas  # noqa: B018 (made on first read: read, as a user would)
            return result.ids
        return run

    kinds = [("ivf", {"nlist": nlist}), ("ivfpq", {"nlist": nlist, "m": m, "nbits": 8})]
    if not skip_hnsw:
        kinds.append(("hnsw", {"M": M, "ef_construction": ef_construction}))
    ours: dict = {}
    for name, params in kinds:
        built = col.create_index(name, **params)
        grid = lookalike_query_grid(name)
        pick = cheapest_at_target if name == "ivfpq" else at_target
        ours[name] = {"build_s": built["build_s"], **pick(grid, run_collection(name), truth, len(q), to_rows),
                      "disk_bytes": disk_bytes(col.directory / "derived" / name)}
        progress(f"lookalike {name}: {ours[name]}")
    exact_run = run_collection("flat")
    _, seconds = best_of(lambda: exact_run({}), 2)
    ours["flat"] = {"qps": len(q) / seconds, "disk_bytes": disk_bytes(col.directory / "derived" / "flat")}
    report["sqlite_bytes"] = sum(disk_bytes(f) for f in col.directory.glob("*.sqlite*"))
    report["lookalike"] = ours
    db.close()

    peers = faiss_runs(x, q, truth, nlist, m, threads, workdir)
    progress(f"faiss: {peers}")
    if not skip_hnsw:
        peers["hnsw"] = hnswlib_run(x, q, truth, M, ef_construction, threads, workdir)
        progress(f"hnswlib: {peers['hnsw']}")
    report["peers"] = peers

    warm = workdir / "warm"
    shutil.rmtree(warm, ignore_errors=True)
    plan = [["flat", {}], ["ivf", ours["ivf"]["params"]], ["ivfpq", {**ours["ivfpq"]["params"], "m": 8}]]
    make_warm_twin(warm, dim, plan)
    report["memory_all"] = memory_probe(workdir / "db", warm, q, plan)
    report["memory_pq_only"] = memory_probe(workdir / "db", warm, q, [plan[2]])
    return report


NODE_RAM = 24 * 2**30  # this machine; a shard node keeps its working set under 70% of it
RAM_HEADROOM = 0.7


def capacity_plan(report: dict, sizes=(10_000_000, 100_000_000)) -> list[dict]:
    """Shards and times for larger catalogs on Ray shards, from this run's per-point costs (linear in n: each
    shard is this node's collection at its own size).  Memory per point: what the fresh process grew by per
    point with the floats resident (exact + IVF + IVF-PQ); IVF-PQ-only serving needs only the codes resident."""
    n = report["n"]
    all_rss = report["memory_all"]["steps"][-1][1] / n
    pq_rss = report["memory_pq_only"]["steps"][-1][1] / n
    disk = (report["sqlite_bytes"] + sum(v["disk_bytes"] for v in report["lookalike"].values())) / n
    ingest = report["ingest"]["vectors_per_s"]
    build = sum(report["lookalike"][name]["build_s"] for name in ("ivf", "ivfpq") if name in report["lookalike"]) / n
    plan = []
    for size in sizes:
        resident = -(-int(size * all_rss) // int(RAM_HEADROOM * NODE_RAM))
        codes_only = -(-int(size * pq_rss) // int(RAM_HEADROOM * NODE_RAM))
        shards = max(resident, 1)
        plan.append({"points": size, "shards_floats_resident": resident, "shards_pq_only": max(codes_only, 1),
                     "disk_gib_total": size * disk / 2**30,
                     "ingest_hours": size / (ingest * shards) / 3600,
                     "ivf_ivfpq_build_minutes": size / shards * build / 60})
    return plan


def report(figures: dict) -> str:
    """The figures of ``measure_scaling``, as printed."""
    lines: list[str] = []
    raw = figures["raw_bytes"]
    ours, peers = figures["lookalike"], figures["peers"]
    lines.append(f"ingest {figures['ingest']['vectors_per_s']:,.0f} vectors/s")
    lines.append(f"{'index':8} {'build s':>8} {'peer s':>8} {'ratio':>6} {'params':>28} {'recall':>6} {'QPS':>8} "
          f"{'peer QPS':>9} {'QPS x':>6} {'disk/raw':>8}")
    for name in ("ivf", "ivfpq", "hnsw"):
        if name not in ours:
            continue
        a, b = ours[name], peers[name]
        lines.append(f"{name:8} {a['build_s']:8.1f} {b['build_s']:8.1f} {a['build_s'] / b['build_s']:6.2f} "
              f"{json.dumps(a['params']):>28} {a['recall']:6.3f} {a['qps']:8.0f} {b['qps']:9.0f} "
              f"{a['qps'] / b['qps']:6.2f} {a['disk_bytes'] / raw:8.3f}")
        lines.append(f"{'  peer':8} {'':8} {'':8} {'':6} {json.dumps(b['params']):>28} {b['recall']:6.3f}")
    for key in ("memory_all", "memory_pq_only"):
        steps = ", ".join(f"{name} {grow / raw:.2f}x" for name, grow in figures[key]["steps"])
        lines.append(f"RSS growth of a fresh process / raw float32 bytes ({key}): {steps}")
    lines.append("\ncapacity plan (24 GiB nodes, 70% for the collection; ingest in parallel on every shard):")
    for row in capacity_plan(figures):
        lines.append(f"  {row['points']:>12,} points: {row['shards_floats_resident']} shards with the floats resident "
              f"({row['shards_pq_only']} serving IVF-PQ with the floats on disk), "
              f"{row['disk_gib_total']:.0f} GiB of disk, ingest {row['ingest_hours']:.1f} h, "
              f"IVF + IVF-PQ builds {row['ivf_ivfpq_build_minutes']:.0f} min per shard")
    return "\n".join(lines)
