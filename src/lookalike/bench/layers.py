"""The same index at every layer a user meets, beside the peers, in one run: is the kernels' speed reaching users?

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE lookalike bench --layers                     # both data sets
    lookalike bench --layers fashion-mnist-784-euclidean --queries 500
    lookalike bench --layers --chroma-python /path/to/venv-with-chromadb/bin/python         # + Chroma
    python bench/bench_layers.py ...                                # the same, with this module's own options

For each data set (fashion-mnist-784-euclidean: 60k base, the first 1,000 test images as queries, L2; and
clustered 100k x 128 cosine), HNSW (M=16, ef_construction=200) and IVF (nlist 1024 / 256, own k-means) are built
once inside a lookalike Collection (ids + small metadata), and the query parameter is set, per system, to the
smallest value whose recall@10 reaches 0.95.  Then single-query and batch QPS (best of ``--rounds`` rounds, at least
7 for the layers measured in this process) at:

  index       HNSWIndex.search / IVFIndex.search (one query per call; a batch of all queries)
  collection  Collection.query, ids + metadata returned (made when first read: "+meta" reads them all)
  http-1      lookalike.Client -> lookalike serve on loopback as a user starts it (its default --workers: one
              process per core), one client, keep-alive, queries sent one at a time through a window of 3 s
  http-4      four client processes through one shared 3 s window, each sending queries one at a time
              ("http-1 1w" and "http-4 1w": the same against lookalike serve --workers 1, one process)
  zero-work   the same clients against a server that answers every query with one fixed answer
              (``zero_work_server``): the most one and four clients can get here, whatever a server does
  peers       hnswlib, faiss IndexHNSWFlat, faiss IndexIVFFlat (bare); Chroma PersistentClient (collection layer)
              and Chroma's server through its HttpClient (http-1 / http-4), when --chroma-python is given

The ratios printed are lookalike / peer in this run.  Timings on a shared machine are noisy: rounds interleave
the systems, the best round counts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

from ..server.protocol import encode_array
from .measures import best_of
from .serving import free_port, start_lookalike, start_zero_work
from .zero_work_server import capture

TARGET_RECALL = 0.95
K = 10
# The in-process layers take at least this many rounds: a pass of 1,000 single queries lasts 20-150 ms, shorter than
# the bursts of a shared machine's noise, and with three rounds one burst could decide a cell (measured: the same
# Collection-to-index ratio 1.20x calm, 1.04-1.42x over runs of three rounds).  The HTTP windows keep --rounds.
IN_PROCESS_ROUNDS = 7
# A batch runs on both cores, so it meets the machine's other work on either; each round times it three times (a
# batch lasts 20-70 ms), the bare index's, the Collection's and the Collection's with metadata read alternating:
# with one call a round, one lucky call of the bare index set a cell (fashion-mnist, HNSW: the bare batch 33,092
# then 46,583 queries a second in two runs, the Collection's 33,544 and 31,686).
BATCH_CALLS_PER_ROUND = 3
SINGLE = {"index": "index single", "collection": "collection single", "coll": "coll single+meta"}  # result keys
BATCH = {"index": "index batch", "collection": "collection batch", "coll": "coll batch+meta"}
EF_GRID = [10, 12, 14, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256]
NPROBE_GRID = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128]
HERE = Path(__file__).resolve().parent


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist())]))


def smallest_reaching(grid, run, truth) -> tuple[int, float]:
    """The first grid value whose answers (``run(value)`` -> (q, k) row ids) reach TARGET_RECALL."""
    best = None
    for value in grid:
        r = recall(run(value), truth)
        best = (value, r)
        if r >= TARGET_RECALL:
            break
    return best


def qps_single(search, queries: np.ndarray, rounds: int) -> float:
    """Queries per second, one query per call (the best of ``rounds`` passes)."""
    return len(queries) / best_of(lambda: [search(q) for q in queries], rounds)[1]


def qps_batch(search, queries: np.ndarray, rounds: int) -> float:
    """Queries per second, all queries in one call (the best of ``rounds`` calls)."""
    return len(queries) / best_of(lambda: search(queries), rounds)[1]


# --- data -----------------------------------------------------------------------------------------------------------


def load(name: str, n_queries: int):
    from lookalike.bench.datasets import load_dataset, synthetic
    from lookalike.bench.groundtruth import ground_truth

    if name == "clustered-100k-128-cosine":
        dataset = synthetic(100_000, 128, 100, n_queries, seed=0, metric="cosine")
    else:
        dataset = load_dataset(name, Path(tempfile.gettempdir()) / "lookalike-bench-data", n_queries=n_queries)
    truth = ground_truth(dataset, K).neighbors
    return dataset, truth


def build_collection(db_path: Path, dataset, nlist: int):
    import lookalike

    db = lookalike.Database(db_path)
    col = db.create_collection("bench", dim=dataset.dim, metric=dataset.metric)
    n = len(dataset.train)
    for start in range(0, n, 20_000):
        stop = min(n, start + 20_000)
        col.add(list(range(start, stop)), dataset.train[start:stop],
                [{"row": i, "group": i % 10} for i in range(start, stop)])
    timings = {}
    for kind, params in (("hnsw", {"M": 16, "ef_construction": 200}), ("ivf", {"nlist": nlist})):
        start = time.perf_counter()
        col.create_index(kind, **params)
        timings[kind] = time.perf_counter() - start
    col.flush()
    return db, col, timings


# --- peers ----------------------------------------------------------------------------------------------------------


def hnswlib_index(dataset):
    import hnswlib

    space = "l2" if dataset.metric == "l2" else "cosine"
    index = hnswlib.Index(space=space, dim=dataset.dim)
    index.init_index(max_elements=len(dataset.train), M=16, ef_construction=200, random_seed=0)
    index.add_items(dataset.train, np.arange(len(dataset.train)), num_threads=2)
    index.set_num_threads(1)
    return index


def faiss_indexes(dataset, nlist: int):
    import faiss

    train = dataset.train
    if dataset.metric == "cosine":
        train = train / np.linalg.norm(train, axis=1, keepdims=True)
    metric = faiss.METRIC_L2 if dataset.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    hnsw = faiss.IndexHNSWFlat(dataset.dim, 16, metric)
    hnsw.hnsw.efConstruction = 200
    hnsw.add(train)
    quantizer = faiss.IndexFlat(dataset.dim, metric)
    ivf = faiss.IndexIVFFlat(quantizer, dataset.dim, nlist, metric)
    ivf.train(train)
    ivf.add(train)
    return hnsw, ivf


def prepared_queries(dataset) -> np.ndarray:
    q = dataset.test
    if dataset.metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return np.ascontiguousarray(q, dtype=np.float32)


# --- HTTP -----------------------------------------------------------------------------------------------------------


CLIENT_SCRIPT = """
import sys, time, json, numpy as np, lookalike
url, index, param, value, path = sys.argv[1:6]
queries = np.load(path)
col = lookalike.Client(url).get_collection("bench")
for q in queries[:20]:
    col.query(q, k=10, index=index, **{param: int(value)})
print("ready", flush=True)
start, end = map(float, sys.stdin.readline().split())  # the same window for every client
time.sleep(max(0.0, start - time.time()))
done = 0
while True:
    col.query(queries[done % len(queries)], k=10, index=index, **{param: int(value)})
    if time.time() > end:
        break
    done += 1
print(json.dumps({"n": done}))
"""

WINDOW_S = 3.0  # how long every client of a round queries


def http_qps(url: str, index: str, param: str, value: int, queries_file: Path, clients: int,
             seconds: float = WINDOW_S) -> float:
    """Queries per second over ``clients`` processes, each sending the queries one at a time, over and over,
    through one window of time shared by all of them (as wrk and oha measure a server)."""
    procs = [subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, url, index, param, str(value), str(queries_file)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(clients)]
    return run_together(procs, seconds)


def run_together(procs: list[subprocess.Popen], seconds: float = WINDOW_S) -> float:
    """Start client processes that each print "ready", wait for a line "START END" (epoch seconds), query from
    START to END and print {"n": queries answered by END}: the queries per second of all of them together.

    Every client runs through the whole window, so the figure is the rate at that many clients.  (Giving each
    client a fixed number of queries instead ends the run with a tail in which the first clients are done and
    fewer run: measured, the last one ended 85-245 ms after the first in runs of 0.9 s.)"""
    for proc in procs:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a benchmark client failed before it was ready")
    start = time.time() + 0.2  # time for every client to read its line
    for proc in procs:
        proc.stdin.write(f"{start} {start + seconds}\n")
        proc.stdin.flush()
    outputs = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
    return sum(o["n"] for o in outputs) / seconds


# --- one data set ---------------------------------------------------------------------------------------------------


def run_dataset(name: str, args) -> dict:
    dataset, truth = load(name, args.queries)
    queries = np.ascontiguousarray(dataset.test, dtype=np.float32)
    nlist = 1024 if len(dataset.train) >= 100_000 else 256
    work = Path(tempfile.mkdtemp(prefix="lookalike-layers-"))
    db, col, build_s = build_collection(work / "db", dataset, nlist)
    rows = {}  # system -> {"param", "recall", layer: qps}
    hnsw = col._synced_index("hnsw").index
    ivf = col._synced_index("ivf").index

    def labels_of(result):
        return np.asarray(result.ids, dtype=np.int64)

    ef, r = smallest_reaching(EF_GRID, lambda e: labels_of(hnsw.search(queries, K, ef=e)), truth)
    rows["lookalike hnsw"] = {"param": f"ef={ef}", "recall": r}
    nprobe, r = smallest_reaching(NPROBE_GRID, lambda p: labels_of(ivf.search(queries, K, nprobe=p)), truth)
    rows["lookalike ivf"] = {"param": f"nprobe={nprobe}", "recall": r}

    peers = {}
    try:
        peer_hnsw = hnswlib_index(dataset)

        def hnswlib_run(e):
            peer_hnsw.set_ef(e)
            return peer_hnsw.knn_query(queries, k=K)[0]
        hef, r = smallest_reaching(EF_GRID, hnswlib_run, truth)
        peer_hnsw.set_ef(hef)
        peers["hnswlib"] = (lambda q: peer_hnsw.knn_query(q, k=K, num_threads=1),
                            lambda q: peer_hnsw.knn_query(q, k=K, num_threads=2), f"ef={hef}", r)
    except ImportError:
        pass
    try:
        import faiss

        faiss.omp_set_num_threads(2)
        f_hnsw, f_ivf = faiss_indexes(dataset, nlist)
        fq = prepared_queries(dataset)

        def faiss_hnsw_run(e):
            f_hnsw.hnsw.efSearch = e
            return f_hnsw.search(fq, K)[1]
        fef, r = smallest_reaching(EF_GRID, faiss_hnsw_run, truth)
        f_hnsw.hnsw.efSearch = fef
        peers["faiss hnsw"] = (*_faiss_calls(f_hnsw, dataset), f"ef={fef}", r)

        def faiss_ivf_run(p):
            f_ivf.nprobe = p
            return f_ivf.search(fq, K)[1]
        fp, r = smallest_reaching(NPROBE_GRID, faiss_ivf_run, truth)
        f_ivf.nprobe = fp
        peers["faiss ivfflat"] = (*_faiss_calls(f_ivf, dataset), f"nprobe={fp}", r)
    except ImportError:
        pass

    one_by_one = [q.reshape(1, -1) for q in queries]
    for _ in range(max(args.rounds, IN_PROCESS_ROUNDS)):  # interleaved rounds; each measure keeps its best
        for system, index, param, value in (("lookalike hnsw", hnsw, "ef", ef),
                                            ("lookalike ivf", ivf, "nprobe", nprobe)):
            row = rows[system]
            kwargs = {param: value}
            name = system.split()[1]  # the index's name in the collection (named once: not timed with the calls)
            search = partial(index.search, k=K, **kwargs)
            query = partial(col.query, k=K, index=name, **kwargs)
            read = partial(query_and_read, col, index=name, **kwargs)
            calls = (("index", search), ("collection", query), ("coll", read))  # "coll": every field read too
            for layer, call in calls:
                _best(row, SINGLE[layer], qps_single(call, one_by_one, 1))
            for _ in range(BATCH_CALLS_PER_ROUND):  # the batches alternate, each meeting the same moment's load
                for layer, call in calls:
                    _best(row, BATCH[layer], qps_batch(call, queries, 1))
        for system, (single, batch, param, r) in peers.items():
            row = rows.setdefault(system, {"param": param, "recall": r})
            _best(row, "index single", qps_single(single, one_by_one, 1))
            _best(row, "index batch", qps_batch(batch, queries, BATCH_CALLS_PER_ROUND))
    for kind in ("hnsw", "ivf"):
        rows[f"lookalike {kind}"]["build_s"] = build_s[kind]
    db.close()

    if not args.no_http:
        queries_file = work / "queries.npy"
        np.save(queries_file, queries)
        answers_file = work / "answers.json"
        for workers, layers in ((None, ((1, "http-1"), (4, "http-4"))), (1, ((1, "http-1 1w"), (4, "http-4 1w")))):
            port = args.port + (workers or 0) if args.port else free_port()
            server = start_lookalike(str(work / "db"), port, workers=workers)
            try:
                url = f"http://127.0.0.1:{port}"
                if not answers_file.exists():  # what the zero-work server will answer
                    capture(url, "bench", {"vectors": encode_array(queries[:1]), "k": K, "index": "hnsw",
                                           "params": {"ef": ef}}, answers_file)
                for _ in range(args.rounds):  # rounds interleave one client and four: each meets the same load
                    for system, param, value in (("lookalike hnsw", "ef", ef), ("lookalike ivf", "nprobe", nprobe)):
                        index = system.split()[1]
                        for clients, layer in layers:
                            qps = http_qps(url, index, param, value, queries_file, clients, args.window)
                            _best(rows[system], layer, qps)
            finally:
                server.terminate()
                server.wait()
        rows[ZERO_WORK] = measure_zero_work(answers_file, queries_file, ef, args)
    if args.chroma_python:
        hnswlib_ef = int(rows["hnswlib"]["param"].split("=")[1]) if "hnswlib" in rows else ef
        rows.update(run_chroma(args.chroma_python, dataset, truth, work, args, hnswlib_ef))
    return {"dataset": dataset.name, "n": len(dataset.train), "queries": len(queries), "rows": rows}


ZERO_WORK = "zero-work server"


def measure_zero_work(answers_file: Path, queries_file: Path, ef: int, args) -> dict:
    """The same clients against a server that answers every query with one fixed answer (``zero_work_server``):
    the most one and four clients can get on this machine, whatever a server does."""
    port = free_port()
    server = start_zero_work(answers_file, port)
    row = {"param": "-", "recall": None}
    try:
        for _ in range(args.rounds):
            for clients, layer in ((1, "http-1"), (4, "http-4")):
                qps = http_qps(f"http://127.0.0.1:{port}", "hnsw", "ef", ef, queries_file, clients, args.window)
                _best(row, layer, qps)
    finally:
        server.terminate()
        server.wait()
    return row


def query_and_read(col, q: np.ndarray, index: str, **params) -> None:
    """A query whose every field is read (similarities and metadata are made when first read)."""
    result = col.query(q, k=K, index=index, **params)
    result.similarities, result.metadatas  # noqa: B018


def _faiss_calls(index, dataset):
    """faiss single queries on one OpenMP thread (as the others), batches on two (as lookalike's)."""
    import faiss

    def single(q):
        faiss.omp_set_num_threads(1)
        return index.search(_prep(q, dataset), K)

    def batch(q):
        faiss.omp_set_num_threads(2)
        return index.search(_prep(q, dataset), K)
    return single, batch


def _prep(q: np.ndarray, dataset) -> np.ndarray:
    if dataset.metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return q


def _best(row: dict, key: str, value: float) -> None:
    row[key] = max(row.get(key, 0.0), value)


def run_chroma(python: str, dataset, truth, work: Path, args, ef: int) -> dict:
    """Chroma measured by bench/chroma_layers.py in its own interpreter (chromadb pins its own dependencies)."""
    data = work / "chroma-data.npz"
    np.savez(data, train=dataset.train, test=dataset.test, truth=truth)
    out = subprocess.run([python, str(HERE / "chroma_layers.py"), str(data), dataset.metric, str(work / "chroma"),
                          str(args.rounds), str(ef), str(args.window)], capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
        return {}
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- report ---------------------------------------------------------------------------------------------------------


LAYERS = ["index single", "index batch", "collection single", "collection batch", "coll single+meta",
          "coll batch+meta", "http-1", "http-4", "http-1 1w", "http-4 1w"]


def report(result: dict) -> str:
    rows = result["rows"]
    lines = [f"\n{result['dataset']}: {result['n']} points, {result['queries']} queries, k={K}, "
             f"each system at its smallest parameter reaching recall@10 {TARGET_RECALL}",
             f"{'system':18s}{'param':>11s}{'recall':>8s}" + "".join(f"{layer:>19s}" for layer in LAYERS)]
    for system, row in rows.items():
        cells = "".join(f"{row[layer]:>19,.0f}" if layer in row else f"{'-':>19s}" for layer in LAYERS)
        recall = f"{row['recall']:>8.3f}" if row["recall"] is not None else f"{'-':>8s}"
        lines.append(f"{system:18s}{row['param']:>11s}{recall}{cells}")
    ratios = []
    for ours, peer, layer_ours, layer_peer in (
            ("lookalike hnsw", "hnswlib", "index single", "index single"),
            ("lookalike hnsw", "hnswlib", "index batch", "index batch"),
            ("lookalike hnsw", "faiss hnsw", "index single", "index single"),
            ("lookalike ivf", "faiss ivfflat", "index single", "index single"),
            ("lookalike ivf", "faiss ivfflat", "index batch", "index batch"),
            ("lookalike ivf", "faiss ivfflat", "collection batch", "index batch"),
            ("lookalike hnsw", "chroma", "coll single+meta", "collection single"),
            ("lookalike hnsw", "chroma", "http-1", "http-1"),
            ("lookalike hnsw", "chroma", "http-4", "http-4"),
            ("lookalike hnsw", "chroma", "http-4 1w", "http-4")):
        if ours in rows and peer in rows and layer_ours in rows[ours] and layer_peer in rows[peer]:
            ratios.append(f"{ours} {layer_ours} / {peer} {layer_peer}: "
                          f"{rows[ours][layer_ours] / rows[peer][layer_peer]:.2f}x")
    for system in ("lookalike hnsw", "lookalike ivf"):
        row = rows.get(system, {})
        if "index single" in row and "collection single" in row:
            ratios.append(f"{system}: collection costs {row['index single'] / row['collection single']:.2f}x the bare "
                          f"index per single query, {row['index batch'] / row['collection batch']:.2f}x per batch; "
                          f"reading every hit's metadata too, {row['index single'] / row['coll single+meta']:.2f}x "
                          f"and {row['index batch'] / row['coll batch+meta']:.2f}x")
        if "http-1" in row and "collection single" in row:
            added = 1000 / row["http-1"] - 1000 / row["collection single"]
            ratios.append(f"{system}: the server adds {added:.2f} ms per query (one client); four clients get "
                          f"{row.get('http-4', 0) / row['http-1']:.2f}x the QPS of one "
                          f"(one process, --workers 1: {row.get('http-4 1w', 0) / row.get('http-1 1w', 1):.2f}x)")
    reference = rows.get(ZERO_WORK, {})
    if "http-1" in reference:
        ratios.append(f"{ZERO_WORK} (a fixed answer, no work: the clients' and the machine's limit): four clients get "
                      f"{reference.get('http-4', 0) / reference['http-1']:.2f}x the QPS of one")
    return "\n".join(lines + ["  " + r for r in ratios])


DEFAULT_DATASETS = "fashion-mnist-784-euclidean,clustered-100k-128-cosine"


def measure_layers(datasets: str = DEFAULT_DATASETS, *, queries: int = 1000, rounds: int = 3, port: int = 0,
                   http: bool = True, chroma_python: str | None = None, window: float = WINDOW_S,
                   progress=print) -> list[dict]:
    """Every layer of every data set (comma-separated: the two defaults, or any ``lookalike bench`` data set
    spec), the HTTP clients querying through windows of ``window`` seconds; ``progress`` gets each data set's
    report as it is done."""
    import numba

    numba.set_num_threads(2)
    args = argparse.Namespace(queries=queries, rounds=rounds, port=port, no_http=not http, window=window,
                              chroma_python=chroma_python)
    results = []
    for name in datasets.split(","):
        result = run_dataset(name, args)
        results.append(result)
        progress(report(result))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=DEFAULT_DATASETS)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--window", type=float, default=WINDOW_S, help="seconds the HTTP clients query per round")
    parser.add_argument("--chroma-python", default=None, help="a Python with chromadb installed, to measure Chroma")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    results = measure_layers(args.datasets, queries=args.queries, rounds=args.rounds, port=args.port,
                             http=not args.no_http, chroma_python=args.chroma_python, window=args.window,
                             progress=lambda text: print(text, flush=True))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
