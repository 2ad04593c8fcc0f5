"""Text queries vs photo queries on the approximate indexes of a catalog: recall@10 against QPS, per modality.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_modality.py --db DEMO_DB
    python bench/bench_modality.py --db DEMO_DB --embedders minilm-fmnist,minilm-fmnist+use-m --plot docs/modality

The catalog is the demo's collection (``lookalike demo --no-serve --db DEMO_DB``).  Two query sets, kept apart:
- photo queries: the stored vectors of 200 test-split products (seeded sample);
- text queries: 200 shopping queries generated, seeded, from WordNet's garment vocabulary (every word whose
  hypernyms reach a catalog class, see lookalike.embed.garments) in shopper templates with adjectives
  ("a black cardigan", "looking for espadrilles"), then embedded by each text route given.  No fixed list.
Each index's query parameter is swept (HNSW ef, IVF nprobe); each point is mean recall@10 against exact search
and single-query QPS through ``Collection.query``.  ``--plot BASE`` writes BASE.png and BASE.svg with one curve per
(index, modality).
"""

from __future__ import annotations

import argparse
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
        recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found.tolist(), exact.tolist())]))
        for q in queries[:20]:
            col.query(q, k=k, index=index, **kwargs)
        start = time.perf_counter()
        for q in queries:
            col.query(q, k=k, index=index, **kwargs)
        qps = len(queries) / (time.perf_counter() - start)
        points.append({param: value, "recall": recall, "qps": qps,
                       "min_recall": float(np.min([len(set(a) & set(b)) / k
                                                   for a, b in zip(found.tolist(), exact.tolist())]))})
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--collection", default="fashion-mnist")
    parser.add_argument("--embedders", default="minilm-fmnist+use-m", help="text routes, comma-separated")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--plot", default=None, help="write the curves to BASE.png and BASE.svg")
    args = parser.parse_args()

    import lookalike
    from lookalike.embed import get_embedder

    db = lookalike.Database(args.db)
    col = db.get_collection(args.collection)
    sets = {"photo": photo_queries(col, args.queries)}
    from lookalike.embed.garments import generated_text_queries

    texts, _ = generated_text_queries(args.queries)
    for name in args.embedders.split(","):
        sets[f"text ({name})"] = get_embedder(name).embed_texts(texts)
    print(f"{col.name}: {len(col)} products; {args.queries} queries per set; e.g. {texts[:4]}")
    curves = {}
    for index in [i for i in ("hnsw", "ivf") if i in col.indexes]:
        for set_name, queries in sets.items():
            curves[(index, set_name)] = points = sweep(col, index, queries)
            param = SWEEPS[index][0]
            print(f"\n{index} / {set_name}")
            for p in points:
                print(f"  {param}={p[param]:<4d} recall@10 {p['recall']:.3f} (min {p['min_recall']:.2f})  "
                      f"{p['qps']:8,.0f} q/s")
    if args.plot:
        plot(curves, args.plot, col.name)
    db.close()


def plot(curves: dict, base: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for (index, set_name), points in curves.items():
        style = "-" if set_name == "photo" else "--"
        ax.plot([p["recall"] for p in points], [p["qps"] for p in points], style, marker="o", markersize=3,
                label=f"{index}, {set_name}")
    ax.set_xlabel("recall@10 (vs exact search)")
    ax.set_ylabel("queries per second (single query, Collection.query)")
    ax.set_yscale("log")
    ax.set_title(f"{title}: photo vs text queries")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(f"{base}.{ext}", dpi=110)
    print(f"\nwrote {base}.png and {base}.svg")


if __name__ == "__main__":
    main()
