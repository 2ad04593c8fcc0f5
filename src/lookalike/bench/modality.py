"""Text queries vs photo queries on the approximate indexes of a collection: recall@10 against QPS, per modality
(``lookalike bench --modalities`` and ``bench/bench_modality.py``).

Two query sets, kept apart:
- photo queries: the stored vectors of a seeded sample of the collection's test-split products (any products
  when there is no test split);
- text queries: shopping queries generated, seeded, from WordNet's garment vocabulary in shopper templates
  (``lookalike.embed.garments.generated_text_queries``), embedded by each text route given.  No fixed list.
Each index's query parameter is swept (HNSW ef, IVF nprobe); each point is the mean recall@10 against exact search
(with the worst query's) and single-query QPS through ``Collection.query``.
"""

from __future__ import annotations

import time

import numpy as np

SWEEPS = {"hnsw": ("ef", [10, 16, 24, 32, 48, 64, 96, 128, 192, 256]),
          "ivf": ("nprobe", [1, 2, 4, 8, 12, 16, 24, 32, 48, 64])}


def photo_queries(col, n: int, seed: int = 0) -> np.ndarray:
    ids = [i for i in col.ids() if isinstance(i, str) and i.startswith("test-")] or col.ids()
    rng = np.random.default_rng(seed)
    chosen = [ids[i] for i in rng.choice(len(ids), size=min(n, len(ids)), replace=False)]
    return col.get_vectors(chosen)


def sweep(col, index: str, queries: np.ndarray, k: int = 10) -> list[dict]:
    param, grid = SWEEPS[index]
    exact = col.query(queries, k=k, index="flat", include_metadata=False).ids
    points = []
    for value in grid:
        kwargs = {param: value}
        found = col.query(queries, k=k, index=index, include_metadata=False, **kwargs).ids
        recalls = [len(set(a) & set(b)) / k for a, b in zip(found.tolist(), exact.tolist())]
        for q in queries[:20]:
            col.query(q, k=k, index=index, **kwargs)
        start = time.perf_counter()
        for q in queries:
            col.query(q, k=k, index=index, **kwargs)
        qps = len(queries) / (time.perf_counter() - start)
        points.append({param: value, "recall": float(np.mean(recalls)), "qps": qps, "min_recall": min(recalls)})
    return points


def measure_modalities(col, embedders: list[str], n_queries: int = 200, seed: int = 0) -> dict:
    """{(index, query set): [points]} for the photo set and one text set per embedder name."""
    from ..embed import get_embedder
    from ..embed.garments import generated_text_queries

    sets = {"photo": photo_queries(col, n_queries, seed)}
    texts, _ = generated_text_queries(n_queries, seed)
    for name in embedders:
        sets[f"text ({name})"] = get_embedder(name).embed_texts(texts)
    return {(index, set_name): sweep(col, index, queries)
            for index in ("hnsw", "ivf") if index in col.indexes for set_name, queries in sets.items()}


def report(curves: dict) -> str:
    lines = []
    for (index, set_name), points in curves.items():
        param = SWEEPS[index][0]
        lines.append(f"\n{index} / {set_name}")
        lines += [f"  {param}={p[param]:<4d} recall@10 {p['recall']:.3f} (min {p['min_recall']:.2f})  "
                  f"{p['qps']:8,.0f} q/s" for p in points]
    return "\n".join(lines)


def plot(curves: dict, base: str, title: str) -> None:
    """The recall-QPS plot of every (index, query set), photo queries solid, text queries dashed."""
    from .plots import Curve, draw_recall_qps

    lines = [Curve(f"{index}, {set_name}", [p["recall"] for p in points], [p["qps"] for p in points],
                   solid=set_name == "photo") for (index, set_name), points in curves.items()]
    written = draw_recall_qps(lines, base, f"{title}: photo vs text queries", "recall@10 (vs exact search)",
                              "queries per second (single query, Collection.query), log scale")
    print("\nwrote " + " and ".join(str(path) for path in written))
