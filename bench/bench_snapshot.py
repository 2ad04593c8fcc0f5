"""What an online snapshot costs: its time and size, and the longest pause it causes to a writer and a searcher.

    python bench/bench_snapshot.py --db fashion-db                 # an existing database (the demo's)
    python bench/bench_snapshot.py --synthetic 1000000 --dim 128    # a fresh one: 1M x 128, flat store only

One thread writes batches of 1,000 new points (durable), another searches one vector at a time, each through a
Database of its own (as two processes would; one Collection object serves one thread at a time), beside the
snapshot; the figures are their latencies before and during the snapshot (p50, p99, max) and the snapshot's time.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import lookalike


def latencies(run, stop: threading.Event) -> list[float]:
    times = []
    while not stop.is_set():
        t0 = time.perf_counter()
        run()
        times.append(1000 * (time.perf_counter() - t0))
    return times


def summary(times: list[float]) -> str:
    if not times:
        return "none"
    a = np.asarray(times)
    return f"n={len(a)} p50={np.percentile(a, 50):.2f} ms p99={np.percentile(a, 99):.2f} ms max={a.max():.1f} ms"


def measure(path: Path, out: Path, seconds_before: float = 3.0) -> None:
    db = lookalike.Database(path)
    name = db.list_collections()[0]
    col = db.get_collection(name)
    writer_col = lookalike.Database(path).get_collection(name)
    dim = col.dim
    rng = np.random.default_rng(0)
    query = rng.standard_normal(dim).astype(np.float32)
    counter = [0]
    lock = threading.Lock()

    def write():
        batch = rng.standard_normal((1000, dim)).astype(np.float32)
        with lock:
            counter[0] += 1
            ids = [f"snap-bench-{counter[0]}-{i}" for i in range(1000)]
        writer_col.add(ids, batch)

    def search():  # exact: what a search pays for the snapshot, not for catching an ANN index up with the writes
        col.query(query, k=10, index="flat")

    write()  # warm: the first write and search load what they need (mappings, kernels), in neither phase
    search()
    for phase in ("during the snapshot", "alone"):  # the snapshot first: of the database as it came
        stop = threading.Event()
        results: dict[str, list[float]] = {}
        threads = [threading.Thread(target=lambda k=k, f=f: results.__setitem__(k, latencies(f, stop)))
                   for k, f in (("writes", write), ("searches", search))]
        for thread in threads:
            thread.start()
        if phase == "alone":
            time.sleep(seconds_before)
            report = None
        else:
            time.sleep(0.5)  # both threads running
            report = lookalike.Database(path).snapshot(out)
        stop.set()
        for thread in threads:
            thread.join()
        print(f"{phase}: writes {summary(results['writes'])}; searches {summary(results['searches'])}")
        if report:
            print(f"snapshot of {path} ({len(col)} points in {name!r}): {report['seconds']:.2f} s, "
                  f"{report['size'] / 1e6:.1f} MB")
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="an existing database (its first collection is written to)")
    parser.add_argument("--synthetic", type=int, help="make a fresh database of this many random points")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--no-load", action="store_true",
                        help="only the snapshot's time and size, without the writer and the searcher")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-snapshot-"))
    try:
        if args.synthetic:
            path = work / "db"
            rng = np.random.default_rng(1)
            with lookalike.Database(path) as db:
                col = db.create_collection("points", dim=args.dim, metric="cosine")
                t0 = time.perf_counter()
                for start in range(0, args.synthetic, 50_000):
                    n = min(50_000, args.synthetic - start)
                    col.add(list(range(start, start + n)), rng.standard_normal((n, args.dim)).astype(np.float32))
                print(f"made {args.synthetic} x {args.dim} in {time.perf_counter() - t0:.1f} s")
        else:
            path = work / "db"
            shutil.copytree(args.db, path)  # the bench writes: leave the original alone
        if args.no_load:
            report = lookalike.Database(path).snapshot(work / "snapshot.tar")
            print(f"snapshot of {path}: {report['seconds']:.2f} s, {report['size'] / 1e6:.1f} MB")
        else:
            measure(path, work / "snapshot.tar")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
