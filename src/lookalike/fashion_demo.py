"""The main job: Fashion-MNIST -> a searchable catalog, queried by text and by photo, then served.

``lookalike demo`` ingests the 70,000 Fashion-MNIST products into the collection ``fashion-mnist`` with the
offline default embedder, builds the indexes, runs example queries (text and photo, exact vs approximate,
recall and timings), and serves the search page on 127.0.0.1.  A rerun reuses what is stored.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .embed.base import SHOPPER_TEXT_ROUTE

COLLECTION = "fashion-mnist"
DEFAULT_EMBEDDER = SHOPPER_TEXT_ROUTE
EXAMPLE_TEXTS = ["white sneakers", "a long summer dress", "leather ankle boots", "a handbag", "warm winter coat",
                 "slingbacks", "a rucksack", "des baskets blanches", "ein Wintermantel"]


def run_fashion_demo(db_path: str, *, serve: bool = True, host: str = "127.0.0.1", port: int = 8000,
                     limit: int | None = None, embedder_name: str = DEFAULT_EMBEDDER) -> int:
    from .catalog.ingest import catalog_collection, ingest
    from .catalog.sources import FashionMNISTSource
    from .database import Database
    from .embed import get_embedder

    t_start = time.perf_counter()
    db = Database(db_path)
    embedder = get_embedder(embedder_name)
    col = catalog_collection(db, COLLECTION, embedder)
    source = FashionMNISTSource(limit=limit)
    print(f"lookalike demo: {len(source)} Fashion-MNIST products -> collection {COLLECTION!r} in {db.path} "
          f"(embedder {embedder.name}, {embedder.dim} dims)")
    report = ingest(col, source, embedder, batch_size=512)
    print(f"ingest: {report.summary()}")
    build_indexes(col)
    print(f"set-up took {time.perf_counter() - t_start:.1f}s\n")
    example_queries(col, embedder)
    db.close()
    if serve:
        from .server.cli import serve
        from .server.security import resolve_api_key
        from .server.state import ServerConfig

        serve(ServerConfig(db_path=db.path, api_key=resolve_api_key(None)), host, port)
    return 0


def build_indexes(col) -> None:
    from .index.registry import available

    n = len(col)
    wanted = [("ivf", {"nlist": max(8, int(4 * np.sqrt(n)))})]
    if "hnsw" in available():
        wanted.append(("hnsw", {"M": 16, "ef_construction": 100}))
    built = col.info()["indexes"]
    for kind, params in wanted:
        if kind in built:
            print(f"index {kind}: already built")
            continue
        report = col.create_index(kind, **params)
        print(f"index {kind} {params}: built in {report['build_s']:.1f}s")


def example_queries(col, embedder) -> None:
    for text in EXAMPLE_TEXTS:
        t0 = time.perf_counter()
        q = embedder.embed_texts([text])
        embed_ms = 1000 * (time.perf_counter() - t0)
        _show(col, q, f"text {text!r}", embed_ms)
    from .catalog.sources import FashionMNISTSource

    photos = list(FashionMNISTSource(splits=("test",), limit=3))
    for item in photos:
        t0 = time.perf_counter()
        q = embedder.embed_images([item.load_image()])
        embed_ms = 1000 * (time.perf_counter() - t0)
        _show(col, q, f"photo of test item {item.id} ({item.metadata['class']})", embed_ms)


def _show(col, q: np.ndarray, label: str, embed_ms: float) -> None:
    print(f"{label}: embed {embed_ms:.1f} ms")
    for index, params in _compare(col):
        result = col.query(q, k=10, index=index, with_recall=True, **params)
        classes = [h["metadata"]["class"] for h in result.hits(0)]
        top = ", ".join(f"{c}" for c in classes[:5])
        shown = " ".join(f"{k}={v}" for k, v in params.items())
        print(f"  {index:5} {shown:9} recall@10={result.recall[0]:.2f} search {result.stats['search_ms']:.2f} ms "
              f"(exact {result.stats['exact_ms']:.2f} ms)  top 5: {top}")


def _compare(col) -> list[tuple[str, dict[str, Any]]]:
    indexes = col.info()["indexes"]
    rows: list[tuple[str, dict[str, Any]]] = [("flat", {})]
    if "ivf" in indexes:
        rows += [("ivf", {"nprobe": 1}), ("ivf", {"nprobe": 8})]
    if "hnsw" in indexes:
        rows += [("hnsw", {"ef": 16}), ("hnsw", {"ef": 64})]
    return rows
