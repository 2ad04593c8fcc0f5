"""The main job: Fashion-MNIST -> a searchable catalog, queried by text and by photo, then served.

``lookalike demo`` ingests the 70,000 Fashion-MNIST products into the collection ``fashion-mnist`` with the
offline default embedder, builds the indexes, runs example queries (text and photo, exact vs approximate,
recall and timings), and serves the search page on 127.0.0.1.  A rerun reuses what is stored.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .embed.base import DEFAULT_EMBEDDER, space_of

COLLECTION = "fashion-mnist"
EXAMPLE_TEXTS = ["white sneakers", "a long summer dress", "a black striped t-shirt", "a navy dress", "leather ankle boots",
                 "a handbag", "warm winter coat", "slingbacks", "a rucksack", "des baskets blanches", "ein Wintermantel"]


def run_fashion_demo(db_path: str, *, serve: bool = True, host: str = "127.0.0.1", port: int = 8000,
                     limit: int | None = None, embedder_name: str = DEFAULT_EMBEDDER) -> int:
    from .catalog.ingest import catalog_collection, ingest
    from .catalog.sources import FashionMNISTSource
    from .database import Database
    from .embed import get_embedder

    t_start = time.perf_counter()
    db = Database(db_path)
    embedder = get_embedder(embedder_name)
    move_to_embedder(db, COLLECTION, embedder)
    col = catalog_collection(db, COLLECTION, embedder)
    source = FashionMNISTSource(limit=limit)
    print(f"lookalike demo: {len(source)} Fashion-MNIST products -> collection {COLLECTION!r} in {db.path} "
          f"(embedder {embedder.name}, {embedder.dim} dims)")
    report = ingest(col, source, embedder, batch_size=512)
    print(f"ingest: {report.summary()}")
    build_indexes(col)
    tune_for_text(col, embedder)
    print(f"set-up took {time.perf_counter() - t_start:.1f}s\n")
    example_queries(col, embedder)
    db.close()
    if serve:
        from .server.cli import serve
        from .server.security import resolve_api_key
        from .server.state import ServerConfig

        serve(ServerConfig(db_path=db.path, api_key=resolve_api_key(None)), host, port)
    return 0


def move_to_embedder(db, name: str, embedder) -> None:
    """A demo collection made by an earlier embedder (another vector space, e.g. the first image tower) is made
    again with ``embedder``: its pictures all come from the Fashion-MNIST package, so nothing is lost by
    re-embedding them (about a minute); an interrupted move resumes on the next run."""
    if name not in db:
        return
    old = db.get_collection(name).embedder
    if space_of(old or "") == embedder.space:
        return
    print(f"collection {name!r} was embedded by {old!r}; moving it to {embedder.name!r} (re-embedding its pictures)")
    db.drop_collection(name)


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


TEXT_TUNING_QUERIES = 300
TEXT_ADAPTING_QUERIES = 3000  # sample text queries whose neighbourhoods the HNSW graph learns (seed 2)
TEXT_TARGET_RECALL = 0.99  # on average: high enough that every single text query gets >= 0.8 (measured)


def tune_for_text(col, embedder) -> None:
    """Text queries sit apart from the photos the indexes were built on (the modality gap): the HNSW graph
    learns links from generated shopping queries (seed 2; see HNSWIndex.add_query_edges), then each index's
    query parameter is tuned for them on other generated queries (seed 1; the benchmark draws seed 0), kept for
    the text modality only, so the page's text searches reach the recall photos get."""
    if "text" not in getattr(embedder, "modalities", ()) or not hasattr(embedder, "route"):
        return
    pending = [name for name in col.indexes if name != "flat" and not col.tuned_params(name, "text", inherit=False)]
    if not pending:
        print("text tuning: already done")
        return
    from .embed.garments import generated_text_queries

    if "hnsw" in pending:
        sample, _ = generated_text_queries(TEXT_ADAPTING_QUERIES, seed=2)
        report = col.adapt_index("hnsw", embedder.embed_texts(sample))
        print(f"hnsw adapted to text queries: {report['links_added']} links from {report['queries']} sample queries")
    texts, _ = generated_text_queries(TEXT_TUNING_QUERIES, seed=1)
    queries = embedder.embed_texts(texts)
    for name in pending:
        report = col.tune(name, TEXT_TARGET_RECALL, 10, queries=queries, modality="text")
        print(f"text tuning {name}: {report.param}={report.value} -> recall@10 {report.recall:.3f} on "
              f"{len(texts)} generated text queries ({report.ms_per_query:.3f} ms/query)")


def example_queries(col, embedder) -> None:
    for text in EXAMPLE_TEXTS:
        t0 = time.perf_counter()
        q = embedder.embed_texts([text])
        embed_ms = 1000 * (time.perf_counter() - t0)
        _show(col, q, f"text {text!r}", embed_ms, "text")
    from .catalog.sources import FashionMNISTSource

    photos = list(FashionMNISTSource(splits=("test",), limit=3))
    for item in photos:
        t0 = time.perf_counter()
        q = embedder.embed_images([item.load_image()])
        embed_ms = 1000 * (time.perf_counter() - t0)
        _show(col, q, f"photo of test item {item.id} ({item.metadata['class']})", embed_ms, "image")


def _show(col, q: np.ndarray, label: str, embed_ms: float, modality: str) -> None:
    """One query on each index and setting; a setting of None is the one tuned for the query's modality."""
    print(f"{label}: embed {embed_ms:.1f} ms")
    for index, params in _compare(col):
        if params is None:
            tuned = col.tuned_params(index, modality)
            if not tuned:
                continue
            params, shown = {}, " ".join(f"{k}={v}" for k, v in tuned.items()) + f" ({modality})"
        else:
            shown = " ".join(f"{k}={v}" for k, v in params.items())
        result = col.query(q, k=10, index=index, with_recall=True, modality=modality, **params)
        classes = [h["metadata"]["class"] for h in result.hits(0)]
        top = ", ".join(f"{c}" for c in classes[:5])
        print(f"  {index:5} {shown:9} recall@10={result.recall[0]:.2f} search {result.stats['search_ms']:.2f} ms "
              f"(exact {result.stats['exact_ms']:.2f} ms)  top 5: {top}")


def _compare(col) -> list[tuple[str, dict[str, Any] | None]]:
    indexes = col.info()["indexes"]
    rows: list[tuple[str, dict[str, Any] | None]] = [("flat", {})]
    if "ivf" in indexes:
        rows += [("ivf", {"nprobe": 1}), ("ivf", {"nprobe": 8}), ("ivf", None)]
    if "hnsw" in indexes:
        rows += [("hnsw", {"ef": 16}), ("hnsw", {"ef": 64}), ("hnsw", None)]
    return rows
