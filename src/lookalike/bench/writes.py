"""Searches while another client writes: ``lookalike bench --writes``.

The test the write path is judged by (issue "Searches never wait for writes"), for lookalike's server and, with
``--chroma-python``, Chroma's server in the same run:

1. a collection of N clustered cosine vectors (default 100,000 x 128) with an HNSW index (M=16, ef_construction=200),
   searched at ef=32, served on 127.0.0.1 (``lookalike serve``; ``chroma run``);
2. one client process searches one vector at a time through the system's own client library: first alone, then
   while a second client process adds 20,000 new points in batches of 1,000 (ids and small metadata) and, after
   each batch returns, searches for 10 of the points it just wrote (read-your-writes: are they found first?);
3. reported: the searching client's p50 / p99 / max latency and searches per second alone and during the writes,
   the writer's vectors per second (time inside the add calls), and the read-your-writes share.

Each client runs in a process of its own (no GIL shared with the one measured), Chroma's in Chroma's own
interpreter (chromadb pins its own dependencies).  Wall-clock timestamps split the searches into the two phases.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .serving import free_port, start_lookalike, user_env, wait_until

READER = r"""
import json, os, sys, time, numpy as np
system, target, name, data, stop_file, out = sys.argv[1:7]
queries = np.load(data)["queries"]
if system == "lookalike":
    import lookalike
    col = lookalike.Client(target).get_collection(name)
    search = lambda q: col.query(q, k=10, ef=32)
else:
    import chromadb
    col = chromadb.HttpClient(host="127.0.0.1", port=int(target)).get_collection(name)
    search = lambda q: col.query(query_embeddings=[q], n_results=10, include=["metadatas", "distances"])
for q in queries[:50]:
    search(q)
print("ready", flush=True)
rows, i = [], 0
while not os.path.exists(stop_file):
    q = queries[i % len(queries)]
    i += 1
    wall, t0 = time.time(), time.perf_counter()
    search(q)
    rows.append((wall, time.perf_counter() - t0))
np.save(out, np.array(rows))
"""

WRITER = r"""
import json, sys, time, numpy as np
system, target, name, data, batch, out = sys.argv[1:7]
batch = int(batch)
new = np.load(data)["new"]
ids = [f"new-{i}" for i in range(len(new))]
if system == "lookalike":
    import lookalike
    col = lookalike.Client(target).get_collection(name)
    add = lambda i, x, m: col.add(i, x, m)
    first = lambda x: col.query(x, k=1, ef=32).ids[0, 0]
else:
    import chromadb
    col = chromadb.HttpClient(host="127.0.0.1", port=int(target)).get_collection(name)
    add = lambda i, x, m: col.add(ids=i, embeddings=x, metadatas=m)
    first = lambda x: col.query(query_embeddings=[x], n_results=1, include=[])["ids"][0][0]
start, in_add, found, checked = time.time(), 0.0, 0, 0
for b in range(0, len(new), batch):
    x, i = new[b:b + batch], ids[b:b + batch]
    t0 = time.perf_counter()
    add(i, x, [{"row": b + j, "group": (b + j) % 10} for j in range(len(i))])
    in_add += time.perf_counter() - t0
    for j in range(0, len(x), max(1, len(x) // 10)):
        found += first(x[j]) == i[j]
        checked += 1
json.dump({"start": start, "end": time.time(), "in_add": in_add, "vectors": len(new), "ryw": found / checked,
           "checked": checked}, open(out, "w"))
"""

CHROMA_BUILD = r"""
import sys, numpy as np, chromadb
path, data, name = sys.argv[1:4]
base = np.load(data)["base"]
client = chromadb.PersistentClient(path=path)
col = client.create_collection(name, embedding_function=None, configuration={
    "hnsw": {"space": "cosine", "max_neighbors": 16, "ef_construction": 200, "ef_search": 32}})
for s in range(0, len(base), 5000):
    e = min(len(base), s + 5000)
    col.add(ids=[f"p{i}" for i in range(s, e)], embeddings=base[s:e],
            metadatas=[{"row": i, "group": i % 10} for i in range(s, e)])
print(col.count())
"""


def measure_writes(work: Path, *, n: int = 100_000, dim: int = 128, new: int = 20_000, batch: int = 1000,
                   alone_s: float = 5.0, seed: int = 0, chroma_python: str | None = None,
                   progress=print) -> dict[str, Any]:
    """The figures of both systems (lookalike always, Chroma when ``chroma_python`` is given)."""
    from .datasets import synthetic

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    dataset = synthetic(n + new, dim, n_queries=1000, seed=seed)
    data = work / "writes.npz"
    np.savez(data, base=dataset.train[:n], new=dataset.train[n:], queries=dataset.test)
    results = {"setup": {"points": n, "dim": dim, "new_points": new, "batch": batch, "index": "hnsw M=16 "
                         "ef_construction=200, ef=32", "alone_s": alone_s}}
    progress(f"lookalike: building {n:,} x {dim} with HNSW")
    results["lookalike"] = _lookalike(work, data, dataset.train[:n], batch, alone_s)
    progress(f"lookalike: {_line(results['lookalike'])}")
    if chroma_python:
        progress("chroma: building the same collection")
        results["chroma"] = _chroma(chroma_python, work, data, batch, alone_s)
        progress(f"chroma: {_line(results['chroma'])}")
    return results


def _lookalike(work: Path, data: Path, base: np.ndarray, batch: int, alone_s: float) -> dict[str, Any]:
    from ..database import Database

    db_path = work / "lookalike-db"
    with Database(db_path) as db:
        col = db.create_collection("bench", base.shape[1], "cosine")
        for s in range(0, len(base), 10_000):
            rows = range(s, min(len(base), s + 10_000))
            col.add([f"p{i}" for i in rows], base[s:s + 10_000], [{"row": i, "group": i % 10} for i in rows])
        col.create_index("hnsw", M=16, ef_construction=200)
    port = free_port()
    server = start_lookalike(db_path, port, workers=1)  # one process, as its recorded figures were measured
    try:
        return _phases(sys.executable, "lookalike", f"http://127.0.0.1:{port}", work, data, batch, alone_s)
    finally:
        server.terminate()
        server.wait(60)


def _chroma(python: str, work: Path, data: Path, batch: int, alone_s: float) -> dict[str, Any]:
    import httpx

    path = work / "chroma-db"
    env = user_env()
    subprocess.run([python, "-c", CHROMA_BUILD, str(path), str(data), "bench"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    port = free_port()
    chroma = str(Path(python).with_name("chroma"))
    server = subprocess.Popen([chroma, "run", "--path", str(path), "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200,
                   server, "chroma run")
        return _phases(python, "chroma", str(port), work, data, batch, alone_s)
    finally:
        server.terminate()
        server.wait(60)


def _phases(python: str, system: str, target: str, work: Path, data: Path, batch: int,
            alone_s: float) -> dict[str, Any]:
    """The searching client alone for ``alone_s``, then while the writer runs; their figures."""
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        stop, reads, writes = Path(tmp) / "stop", Path(tmp) / "reads.npy", Path(tmp) / "writes.json"
        env = user_env()
        reader = subprocess.Popen([python, "-c", READER, system, target, "bench", str(data), str(stop), str(reads)],
                                  env=env, stdout=subprocess.PIPE, text=True)
        if reader.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {system} search client did not start")
        time.sleep(alone_s)
        subprocess.run([python, "-c", WRITER, system, target, "bench", str(data), str(batch), str(writes)],
                       env=env, check=True)
        stop.touch()
        reader.wait(120)
        rows = np.load(reads)
        written = json.loads(writes.read_text())
    wall, seconds = rows[:, 0], rows[:, 1]
    alone = seconds[wall < written["start"]]
    during = seconds[(wall >= written["start"]) & (wall <= written["end"])]
    return {"alone": _latency(alone, alone_s), "during_writes": _latency(during, written["end"] - written["start"]),
            "writer_vectors_per_s": written["vectors"] / written["in_add"], "read_your_writes": written["ryw"],
            "read_your_writes_checked": written["checked"]}


def _latency(seconds: np.ndarray, span: float) -> dict[str, float]:
    if len(seconds) == 0:
        return {"searches": 0}
    ms = 1000 * seconds
    return {"searches": int(len(ms)), "per_s": round(len(ms) / span, 1), "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3), "max_ms": round(float(ms.max()), 3)}


def _line(r: dict[str, Any]) -> str:
    a, d = r["alone"], r["during_writes"]
    return (f"search p50/p99/max alone {a['p50_ms']}/{a['p99_ms']}/{a['max_ms']} ms ({a['per_s']}/s), during writes "
            f"{d.get('p50_ms')}/{d.get('p99_ms')}/{d.get('max_ms')} ms ({d.get('per_s')}/s); writer "
            f"{r['writer_vectors_per_s']:,.0f} vectors/s; read-your-writes {r['read_your_writes']:.3f}")


def report(results: dict[str, Any]) -> str:
    lines = [f"{name}: {_line(r)}" for name, r in results.items() if name != "setup"]
    if "chroma" in results:
        lk, ch = results["lookalike"], results["chroma"]
        lines.append(f"ratios: p99 during writes chroma/lookalike "
                     f"{ch['during_writes']['p99_ms'] / lk['during_writes']['p99_ms']:.1f}x, writer lookalike/chroma "
                     f"{lk['writer_vectors_per_s'] / ch['writer_vectors_per_s']:.1f}x")
    return "\n".join(lines)
