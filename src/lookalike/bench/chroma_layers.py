"""Chroma at the collection and HTTP layers, for ``lookalike bench --layers`` (run as a script by a Python that
has chromadb; it imports nothing of lookalike).

    python src/lookalike/bench/chroma_layers.py DATA.npz METRIC WORKDIR ROUNDS EF_SEARCH [WINDOW_S]

DATA.npz holds ``train``, ``test`` and ``truth`` (the exact 10 nearest rows).  Chroma's HNSW (hnswlib inside) is
built with M=16 (max_neighbors) and ef_construction=200 like lookalike's, ids and small metadata as in
bench_layers, and ef_search = EF_SEARCH: the value that brought hnswlib to recall@10 0.95 in the same run (Chroma
1.5 fixes ef_search when a collection is loaded: ``modify`` does not reach an open collection, so it cannot be
swept in place; the recall it reaches is measured and reported).  Prints one JSON line:
{"chroma": {"param", "recall", "collection single", "http-1", "http-4"}}.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

K = 10

CLIENT = """
import sys, time, json, numpy as np, chromadb
port, name, path = sys.argv[1:4]
queries = np.load(path)["test"]
col = chromadb.HttpClient(host="127.0.0.1", port=int(port)).get_collection(name)
for q in queries[:20]:
    col.query(query_embeddings=[q], n_results=10, include=["metadatas", "distances"])
print("ready", flush=True)
start, end = map(float, sys.stdin.readline().split())  # the same window for every client
time.sleep(max(0.0, start - time.time()))
done = 0
while True:
    col.query(query_embeddings=[queries[done % len(queries)]], n_results=10, include=["metadatas", "distances"])
    if time.time() > end:
        break
    done += 1
print(json.dumps({"n": done}))
"""
WINDOW_S = 3.0


def run_together(procs, seconds: float = WINDOW_S) -> float:
    """Clients that print "ready", wait for "START END", query through that window and print {"n"}: their
    queries per second together (as lookalike.bench.layers.run_together: this script imports nothing of
    lookalike)."""
    for proc in procs:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a Chroma client failed before it was ready")
    start = time.time() + 0.2
    for proc in procs:
        proc.stdin.write(f"{start} {start + seconds}\n")
        proc.stdin.flush()
    outs = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
    return sum(o["n"] for o in outs) / seconds


def recall(found, truth) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth.tolist())]))


def build(client, name: str, train: np.ndarray, space: str, ef: int):
    col = client.create_collection(name, embedding_function=None, configuration={
        "hnsw": {"space": space, "max_neighbors": 16, "ef_construction": 200, "ef_search": ef}})
    batch = 5000
    for start in range(0, len(train), batch):
        stop = min(len(train), start + batch)
        col.add(ids=[str(i) for i in range(start, stop)], embeddings=train[start:stop],
                metadatas=[{"row": i, "group": i % 10} for i in range(start, stop)])
    return col


def answers(col, test: np.ndarray) -> list[list[int]]:
    out = []
    for start in range(0, len(test), 100):
        result = col.query(query_embeddings=test[start:start + 100], n_results=K, include=["distances"])
        out.extend([[int(i) for i in row] for row in result["ids"]])
    return out


def main() -> None:
    import chromadb

    data_path, metric, workdir, rounds, ef = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    window = float(sys.argv[6]) if len(sys.argv) > 6 else WINDOW_S
    data = np.load(data_path)
    train, test, truth = data["train"], data["test"], data["truth"]
    space = {"l2": "l2", "cosine": "cosine", "dot": "ip"}[metric]
    client = chromadb.PersistentClient(path=workdir)
    col = build(client, "bench", train, space, ef)
    row = {"param": f"ef={ef}", "recall": recall(answers(col, test), truth)}
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for q in test:
            col.query(query_embeddings=[q], n_results=K, include=["metadatas", "distances"])
        best = min(best, time.perf_counter() - start)
    row["collection single"] = len(test) / best
    del client
    port = 8732
    chroma = str(Path(sys.executable).with_name("chroma"))  # the venv's own console script
    server = subprocess.Popen([chroma, "run", "--path", workdir, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
                break
            except Exception:
                time.sleep(0.5)
        for _ in range(max(1, rounds - 1)):  # rounds interleave one client and four, each keeps its best
            for clients in (1, 4):
                procs = [subprocess.Popen([sys.executable, "-c", CLIENT, str(port), "bench", data_path],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                         for _ in range(clients)]
                qps = run_together(procs, window)
                row[f"http-{clients}"] = max(row.get(f"http-{clients}", 0.0), qps)
    finally:
        server.terminate()
        server.wait()
    print(json.dumps({"chroma": row}))


if __name__ == "__main__":
    main()
