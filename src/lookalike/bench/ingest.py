"""Durable ingest, bytes on disk, cold start and memory: ``lookalike bench --ingest N:D``.

1. A fresh process adds N x D float32 vectors (ids and small metadata; default 1M x 128) in durable batches of
   50,000 and reports vectors per second (each batch is acknowledged only once fsynced and committed).
2. The collection's directory is measured with only the exact store (disk blocks, not apparent sizes), against
   the raw float32 bytes N x D x 4.
3. A fresh process opens the database and answers its first exact query: the time from ``Database(...)`` to the
   answer (the interpreter's start and ``import lookalike`` are reported apart).
4. With IVF and IVF-PQ indexes built, a fresh process runs exact, IVF and IVF-PQ queries: how much its resident
   memory grew from just after ``import lookalike``, against the raw bytes.

Each step runs in a process of its own, with the environment users run with (these machines' BLAS slow-downs
unset).  LanceDB and Chroma's PersistentClient are measured the same way (steps 1 and 2) with ``--peer-python``:
a Python where they are installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .serving import user_env

INGEST = r"""
import json, sys, time, numpy as np
import lookalike
data, db, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
x = np.load(data, mmap_mode="r")
col = lookalike.Database(db).create_collection("bench", x.shape[1], "cosine")
t0 = time.perf_counter()
for s in range(0, len(x), batch):
    rows = range(s, min(len(x), s + batch))
    col.add(list(rows), x[s:s + batch], [{"row": i, "group": i % 10} for i in rows])
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds}))
"""

COLD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, lookalike
t1 = time.perf_counter()
db = lookalike.Database(sys.argv[1])
col = db.get_collection("bench")
result = col.query(np.ones(col.dim, dtype=np.float32), k=10, index="flat")
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "open_and_first_query_s": t2 - t1}))
"""

BUILD = r"""
import sys, lookalike
col = lookalike.Database(sys.argv[1]).get_collection("bench")
col.create_index("ivf", nlist=1024, default=False)
col.create_index("ivfpq", nlist=1024, m=32, default=False)
"""

MEMORY = r"""
import json, sys, numpy as np
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
import lookalike
base = rss()
col = lookalike.Database(sys.argv[1]).get_collection("bench")
q = np.random.default_rng(0).normal(size=(200, col.dim)).astype(np.float32)
grown = {}
for index, params in (("flat", {}), ("ivf", {"nprobe": 16}), ("ivfpq", {"nprobe": 16, "rerank": 100})):
    col.query(q, k=10, index=index, **params)
    grown[index] = rss() - base
print(json.dumps({"rss_grown": grown}))
"""

PEERS = r"""
import json, shutil, sys, time, numpy as np
data, work, batch, which = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
x = np.load(data, mmap_mode="r")
out = {}
if which in ("lancedb", "all"):
    try:
        import lancedb, pyarrow as pa
        db = lancedb.connect(work + "/lancedb")
        t0 = time.perf_counter()
        table = None
        for s in range(0, len(x), batch):
            rows = np.arange(s, min(len(x), s + batch))
            arrow = pa.table({"id": rows, "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(np.ascontiguousarray(x[s:s + batch]).ravel()), x.shape[1]),
                "row": rows, "group": rows % 10})
            if table is None:
                table = db.create_table("bench", arrow)
            else:
                table.add(arrow)
        out["lancedb " + lancedb.__version__] = {"seconds": time.perf_counter() - t0, "dir": work + "/lancedb"}
    except ImportError:
        pass
if which in ("chroma", "all"):
    try:
        import chromadb
        client = chromadb.PersistentClient(path=work + "/chroma")
        col = client.create_collection("bench", embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
        t0 = time.perf_counter()
        step = min(batch, 5000)  # Chroma refuses batches over its max_batch_size
        for s in range(0, len(x), step):
            rows = range(s, min(len(x), s + step))
            col.add(ids=[str(i) for i in rows], embeddings=np.ascontiguousarray(x[s:s + step]),
                    metadatas=[{"row": i, "group": i % 10} for i in rows])
        out["chroma " + chromadb.__version__] = {"seconds": time.perf_counter() - t0, "dir": work + "/chroma"}
    except ImportError:
        pass
print(json.dumps(out))
"""


def measure_ingest(work: Path, *, n: int = 1_000_000, dim: int = 128, batch: int = 50_000, seed: int = 0,
                   peer_python: str | None = None, peer_n: int | None = None, progress=print) -> dict[str, Any]:
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "vectors.npy"
    rng = np.random.default_rng(seed)
    np.save(data, rng.standard_normal((n, dim), dtype=np.float32))
    raw = n * dim * 4
    db = work / "lookalike-db"
    results: dict[str, Any] = {"setup": {"points": n, "dim": dim, "batch": batch, "raw_bytes": raw}}
    progress(f"lookalike: ingesting {n:,} x {dim} in durable batches of {batch:,}")
    ingest = _run(sys.executable, INGEST, str(data), str(db), str(batch))
    disk = directory_bytes(db / "collections" / "bench")
    cold = _run(sys.executable, COLD, str(db))
    progress("lookalike: building IVF and IVF-PQ for the memory step")
    _run(sys.executable, BUILD, str(db), parse=False)
    memory = _run(sys.executable, MEMORY, str(db))
    results["lookalike"] = {
        "vectors_per_s": n / ingest["seconds"], "ingest_s": ingest["seconds"],
        "disk_bytes": disk["blocks"], "disk_ratio": disk["blocks"] / raw, "apparent_ratio": disk["apparent"] / raw,
        **cold, "rss_grown_ratio": {k: v / raw for k, v in memory["rss_grown"].items()}}
    progress(f"lookalike: {line(results['lookalike'])}")
    if peer_python:
        m = peer_n or n
        peer_data = data
        if m != n:
            peer_data = work / "peer-vectors.npy"
            np.save(peer_data, np.load(data, mmap_mode="r")[:m])
        peers = _run(peer_python, PEERS, str(peer_data), str(work), str(batch), "all")
        for name, row in peers.items():
            size = directory_bytes(Path(row.pop("dir")))
            results[name] = {"points": m, "vectors_per_s": m / row["seconds"], "ingest_s": row["seconds"],
                             "disk_ratio": size["blocks"] / (m * dim * 4)}
            progress(f"{name}: {m:,} points at {results[name]['vectors_per_s']:,.0f} vectors/s, "
                     f"disk {results[name]['disk_ratio']:.2f}x raw")
    return results


def directory_bytes(path: Path) -> dict[str, int]:
    blocks = apparent = 0
    for root, _, files in os.walk(path):
        for name in files:
            st = os.stat(os.path.join(root, name))
            blocks += st.st_blocks * 512
            apparent += st.st_size
    return {"blocks": blocks, "apparent": apparent}


def line(r: dict[str, Any]) -> str:
    rss = ", ".join(f"{k} {v:.2f}x" for k, v in r["rss_grown_ratio"].items())
    return (f"{r['vectors_per_s']:,.0f} vectors/s; directory {r['disk_ratio']:.2f}x raw on disk "
            f"({r['apparent_ratio']:.2f}x apparent); fresh process: import {r['import_s']:.2f} s, open + first exact "
            f"query {r['open_and_first_query_s']:.2f} s; RSS grown after queries: {rss}")


def _run(python: str, script: str, *args: str, parse: bool = True) -> Any:
    env = user_env()
    out = subprocess.run([python, "-c", script, *args], env=env, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1]) if parse else None


def report(results: dict[str, Any]) -> str:
    lines = []
    for name, r in results.items():
        if name == "setup":
            continue
        if name == "lookalike":
            lines.append(f"lookalike: {line(r)}")
        else:
            lines.append(f"{name}: {r['points']:,} points at {r['vectors_per_s']:,.0f} vectors/s, "
                         f"disk {r['disk_ratio']:.2f}x raw")
    return "\n".join(lines)
