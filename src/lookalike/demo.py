"""The end-to-end demo on generated data: create a collection, add vectors, build IVF, query, compare with exact.

It prints what a user of lookalike sees: hits, their "true KNN" flag, recall@k and timings per index."""

from __future__ import annotations

import shutil
import tempfile
import time

import numpy as np


def clustered_vectors(n: int, dim: int, n_clusters: int, seed: int) -> np.ndarray:
    """A seeded Gaussian mixture on the unit sphere: clustered like real embeddings are."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    points = centers[rng.integers(0, n_clusters, n)] + rng.normal(scale=0.5 / np.sqrt(dim), size=(n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def run_synthetic_demo(db_path: str | None = None, n: int = 20_000, dim: int = 128, seed: int = 0) -> int:
    from .database import Database

    tmp = None
    if db_path is None:
        tmp = tempfile.mkdtemp(prefix="lookalike-demo-")
        db_path = f"{tmp}/db"
    try:
        return _demo(Database(db_path), n, dim, seed)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _demo(db, n: int, dim: int, seed: int) -> int:
    colours = ["white", "black", "red", "blue", "green"]
    data = clustered_vectors(n + 100, dim, n_clusters=max(10, n // 200), seed=seed)
    base, queries = data[:n], data[n:]
    print(f"lookalike demo: {n} generated vectors of {dim} dims (a seeded Gaussian mixture), database {db.path}")
    name = "demo"
    if name in db:
        db.drop_collection(name)
    col = db.create_collection(name, dim=dim, metric="cosine")
    t0 = time.perf_counter()
    ids = [f"item-{i:06d}" for i in range(n)]
    metadata = [{"colour": colours[i % len(colours)], "price": float(i % 100)} for i in range(n)]
    for start in range(0, n, 5000):
        col.add(ids[start : start + 5000], base[start : start + 5000], metadata[start : start + 5000])
    print(f"added {len(col)} points in {time.perf_counter() - t0:.2f}s (SQLite, WAL, every batch committed)")

    nlist = max(16, int(np.sqrt(n)))
    report = col.create_index("ivf", nlist=nlist)
    print(f"built IVF (nlist={nlist}) in {report['build_s']:.2f}s")

    result = col.query(queries[0], k=5, index="ivf", nprobe=4, with_recall=True)
    print("\nquery 0, IVF nprobe=4, top 5:")
    for rank, hit in enumerate(result.hits(0), 1):
        flag = "true KNN" if hit["true_knn"] else "not a true KNN"
        print(f"  {rank}. {hit['id']}  similarity={hit['similarity']:.4f}  {flag}  {hit['metadata']}")
    print(f"  recall@5 = {result.recall[0]:.2f}")

    filtered = col.query(queries[0], k=5, where={"colour": "red", "price": {"$lt": 50}})
    print(f"\nfiltered (colour=red, price<50), exact: {[h['id'] for h in filtered.hits(0)]}")

    print(f"\n{len(queries)} queries, k=10: recall and time per query")
    print(f"  {'index':<18}{'recall@10':>10}{'ms/query':>10}")
    for label, index, params in [("flat (exact)", "flat", {})] + [
        (f"ivf nprobe={p}", "ivf", {"nprobe": p}) for p in (1, 4, 16)
    ]:
        t0 = time.perf_counter()
        res = col.query(queries, k=10, index=index, **params)
        ms = 1000 * (time.perf_counter() - t0) / len(queries)
        recall = col.query(queries, k=10, index=index, with_recall=True, **params).recall.mean()
        print(f"  {label:<18}{recall:>10.3f}{ms:>10.3f}")
        del res
    db.close()
    print("\ndone.")
    return 0
