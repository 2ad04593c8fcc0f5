"""Filtered search, the query a shop runs most: ``lookalike bench --filters``.

1. N clustered cosine vectors (default 100,000 x 128) with metadata: ``half`` (two strings: an equality passes
   50%), ``tenth`` (ten strings: 10%), ``hundredth`` (a hundred strings: 1%) and ``price`` (uniform 0-100: a
   range [20, 25) passes 5%); a metadata index on every key; an HNSW index (M=16, ef_construction=200).
2. One query per call through ``Collection.query(where=...)`` at ef (default 32), k=10: unfiltered, then each
   filter (each query its own filter value, so every query asks a different filter of the same kind, as shoppers do).
   Reported: microseconds per query (the best of three passes), the ratio to the unfiltered query, and recall@10
   against the exact filtered answer.
3. With ``--peer-python``, Chroma's PersistentClient (same data, same HNSW parameters, ``ef_search`` the same ef)
   in the same run, the first PEER_QUERIES of the same queries and filters (one pass: it takes milliseconds).
4. With ``--filters-page DB[:COLLECTION]``, the page's class filter over HTTP (``measure_page_filter``).

Each system runs in a process of its own, with the environment users run with.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .serving import user_env

RUN = r"""
import json, sys, time, numpy as np
system, data, work, kinds = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
sys.path.insert(0, sys.argv[5])
ef, n_queries, n_passes = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
from filters_spec import FILTERS, metadata_of
d = np.load(data)
x, queries = d["x"], d["queries"][:n_queries]
n = len(x)
if system == "lookalike":
    import lookalike
    col = lookalike.Database(work + "/lookalike").create_collection("bench", x.shape[1], "cosine")
    for s in range(0, n, 10_000):
        col.add(list(range(s, min(n, s + 10_000))), x[s:s + 10_000], [metadata_of(i) for i in range(s, min(n, s + 10_000))])
    for key in ("half", "tenth", "hundredth", "price"):
        col.create_metadata_index(key)
    col.create_index("hnsw", M=16, ef_construction=200)
    def search(q, where):
        return [int(i) for i in col.query(q, k=10, where=where, ef=ef, include_metadata=False).ids[0]]
    def exact(q, where):
        return [int(i) for i in col.query(q, k=10, where=where, index="flat", include_metadata=False).ids[0]]
    version = lookalike.__version__
else:
    import chromadb
    client = chromadb.PersistentClient(path=work + "/chroma")
    col = client.create_collection("bench", embedding_function=None, configuration={"hnsw": {
        "space": "cosine", "max_neighbors": 16, "ef_construction": 200, "ef_search": ef}})
    for s in range(0, n, 5000):
        rows = range(s, min(n, s + 5000))
        col.add(ids=[str(i) for i in rows], embeddings=x[s:s + 5000], metadatas=[metadata_of(i) for i in rows])
    def search(q, where):
        return [int(i) for i in col.query(query_embeddings=[q], n_results=10, where=where, include=["distances"])["ids"][0]]
    exact = None
    version = chromadb.__version__
out = {"version": version, "kinds": {}}
for name in kinds:
    make = FILTERS[name]
    wheres = [None if make is None else make(i) for i in range(len(queries))]
    for q, w in zip(queries[:50], wheres):  # warm up: compile, load, fill caches
        search(q, w)
    if system == "lookalike":
        for q, w in zip(queries[50:100], wheres[50:100]):  # every filter value asked twice: graphs are made
            search(q, w)
        col.optimize()  # ... and finished, as a shop's frequent filters have theirs
    passes = []
    for _ in range(n_passes):
        t0 = time.perf_counter()
        answers = [search(q, w) for q, w in zip(queries, wheres)]
        passes.append((time.perf_counter() - t0) / len(queries))
    row = {"us_per_query": 1e6 * min(passes), "answers": answers}
    if exact is not None:
        row["exact"] = [exact(q, w) for q, w in zip(queries, wheres)]
    out["kinds"][name] = row
print(json.dumps(out))
"""

PEER_QUERIES = 200
#: the filters (name -> the filter of query i), and each point's metadata; run by both systems' processes
SPEC = r'''
FILTERS = {
    "none": None,
    "equal 50%": lambda i: {"half": "ab"[i % 2]},
    "equal 10%": lambda i: {"tenth": f"t{i % 10}"},
    "equal 1%": lambda i: {"hundredth": f"h{i % 100}"},
    "range 5%": lambda i: {"$and": [{"price": {"$gte": 5.0 * (i % 20)}}, {"price": {"$lt": 5.0 * (i % 20) + 5}}]},
}

def metadata_of(i):
    """Independent of the vectors: a point's filter values are drawn from its number."""
    return {"half": "ab"[i % 2], "tenth": f"t{(i // 2) % 10}", "hundredth": f"h{(i * 37) % 100}",
            "price": float((i * 7919) % 10_000) / 100}
'''


def measure_filters(work: Path, *, n: int = 100_000, dim: int = 128, n_queries: int = 1000, seed: int = 0,
                    peer_python: str | None = None, ef: int = 32, progress=print) -> dict[str, Any]:
    from .datasets import synthetic

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    data = synthetic(n, dim, n_queries=n_queries, seed=seed)
    np.savez(work / "data.npz", x=data.train, queries=data.test)
    (work / "filters_spec.py").write_text(SPEC)
    spec: dict[str, Any] = {}
    exec(SPEC, spec)
    kinds = list(spec["FILTERS"])
    results: dict[str, Any] = {"setup": {"points": n, "dim": dim, "queries": n_queries, "hnsw": "M 16, "
                                         f"ef_construction 200, ef {ef}", "k": 10}}
    progress(f"lookalike: {n:,} x {dim}, HNSW, {len(kinds)} kinds of query")
    ours = _run(sys.executable, "lookalike", work, kinds, ef, n_queries, 3)
    truth = {name: row.pop("exact") for name, row in ours["kinds"].items()}
    results["lookalike " + ours["version"]] = _summary(ours, truth)
    progress(report_of("lookalike " + ours["version"], results["lookalike " + ours["version"]]))
    if peer_python:
        progress("chroma: the same data and queries through PersistentClient")
        # tens of milliseconds a filtered query: fewer queries, one pass (the noise is small beside that)
        theirs = _run(peer_python, "chroma", work, kinds, ef, PEER_QUERIES, 1)
        results["chroma " + theirs["version"]] = _summary(theirs, truth)
        progress(report_of("chroma " + theirs["version"], results["chroma " + theirs["version"]]))
    return results


def _run(python: str, system: str, work: Path, kinds: list[str], ef: int, n_queries: int,
         passes: int) -> dict[str, Any]:
    out = subprocess.run([python, "-c", RUN, system, str(work / "data.npz"), str(work), json.dumps(kinds), str(work),
                          str(ef), str(n_queries), str(passes)],
                         env=user_env(), check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _summary(run: dict[str, Any], truth: dict[str, list]) -> dict[str, Any]:
    base = run["kinds"]["none"]["us_per_query"]
    rows = {}
    for name, row in run["kinds"].items():
        hits = [len(set(a) & set(t)) / max(1, len(t)) for a, t in zip(row["answers"], truth[name])]
        rows[name] = {"us_per_query": row["us_per_query"], "x_unfiltered": row["us_per_query"] / base,
                      "recall": float(np.mean(hits))}
    return rows


def report_of(system: str, rows: dict[str, Any]) -> str:
    cells = [f"{name} {r['us_per_query']:.0f} us ({r['x_unfiltered']:.2f}x, recall {r['recall']:.3f})"
             for name, r in rows.items()]
    return f"{system}: " + "; ".join(cells)


def report(results: dict[str, Any]) -> str:
    lines = [report_of(name, rows) for name, rows in results.items() if name not in ("setup", "page")]
    if "page" in results:
        lines.append(page_line(results["page"]))
    return "\n".join(lines)


def measure_page_filter(db: Path, name: str, *, n_queries: int = 200, seed: int = 0,
                        progress=print) -> dict[str, Any]:
    """The page's class filter: text searches through ``POST /api/collections/NAME/search`` on ``lookalike
    serve`` over a catalog (the demo's), each sent with no filter and with a class filter (``{"class": C}``, C
    drawn per query), as the page sends them.  Reported: the median and p99 milliseconds of each, and their
    ratio."""
    import time

    import httpx

    from .measures import latency_percentiles
    from .serving import free_port, start_lookalike

    port = free_port()
    server = start_lookalike(db, port, workers=1)  # one process, as its recorded figures were measured
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api", timeout=60) as http:
            facets = http.get(f"/collections/{name}/facets").json()["facets"]
            classes = sorted(str(f["value"]) for f in facets.get("class", []))
            if not classes:
                raise RuntimeError(f"collection {name!r} has no 'class' facet to filter on")
            rng = np.random.default_rng(seed)
            words = ["black", "white", "striped", "long", "short", "summer", "warm", "casual", "plain", "red"]
            texts = [f"{rng.choice(words)} {rng.choice(classes).lower()}" for _ in range(n_queries)]
            filters = [{"class": str(rng.choice(classes))} for _ in range(n_queries)]

            def timed(body: dict[str, Any]) -> float:
                t0 = time.perf_counter()
                http.post(f"/collections/{name}/search", json=body).raise_for_status()
                return time.perf_counter() - t0

            for text in texts[:20]:  # warm up: the embedder, the index, the filter columns
                timed({"text": text, "k": 12})
            plain, filtered = [], []
            for text, where in zip(texts, filters):  # interleaved: both see the same machine
                plain.append(timed({"text": text, "k": 12}))
                filtered.append(timed({"text": text, "k": 12, "where": where}))
    finally:
        server.terminate()
        server.wait(timeout=30)
    row = {"queries": n_queries, "no_filter_ms": latency_percentiles(plain),
           "class_filter_ms": latency_percentiles(filtered)}
    row["ratio_p50"] = row["class_filter_ms"]["p50"] / row["no_filter_ms"]["p50"]
    progress(page_line(row))
    return row


def page_line(row: dict[str, Any]) -> str:
    a, b = row["no_filter_ms"], row["class_filter_ms"]
    return (f"page text search over HTTP: no filter p50 {a['p50']:.2f} ms (p99 {a['p99']:.2f}); class filter p50 "
            f"{b['p50']:.2f} ms (p99 {b['p99']:.2f}); {row['ratio_p50']:.2f}x")
