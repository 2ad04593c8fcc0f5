"""What an online snapshot costs: ``lookalike bench --snapshot SOURCE``: its time and size, and the longest pause it
causes to a writer and a searcher.

    lookalike bench --snapshot fashion-db                  # an existing database (copied first: the bench writes)
    lookalike bench --snapshot synthetic:1m:128            # a fresh one: 1M x 128 random points, flat store only
    lookalike bench --snapshot fashion-db --snapshot-no-load   # only the snapshot's time and size

One thread writes batches of 1,000 new points (durable), another searches one vector at a time (exact: what a
search pays for the snapshot, not for catching an ANN index up with the writes), each through a Database of its
own (as two processes would), beside the snapshot; the figures are their latencies during the snapshot and then
alone (p50, p99, max), and the snapshot's seconds and bytes.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import lookalike


def _latencies(run, stop: threading.Event) -> list[float]:
    times = []
    while not stop.is_set():
        t0 = time.perf_counter()
        run()
        times.append(1000 * (time.perf_counter() - t0))
    return times


def _summary(times: list[float]) -> dict[str, float]:
    if not times:
        return {"n": 0}
    a = np.asarray(times)
    return {"n": len(a), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "max_ms": float(a.max())}


def _under_load(path: Path, out: Path, seconds_alone: float) -> dict[str, Any]:
    db = lookalike.Database(path)
    name = db.list_collections()[0]
    col = db.get_collection(name)
    writer_db = lookalike.Database(path)
    writer_col = writer_db.get_collection(name)
    rng = np.random.default_rng(0)
    query = rng.standard_normal(col.dim).astype(np.float32)
    counter = [0]

    def write():
        counter[0] += 1  # one writer thread
        writer_col.add([f"snap-bench-{counter[0]}-{i}" for i in range(1000)],
                       rng.standard_normal((1000, col.dim)).astype(np.float32))

    def search():
        col.query(query, k=10, index="flat")

    write()  # warm: the first write and search load what they need (mappings, kernels), in neither phase
    search()
    figures: dict[str, Any] = {"collection": name, "points": len(col)}
    for phase in ("during", "alone"):  # the snapshot first: of the database as it came
        stop = threading.Event()
        results: dict[str, list[float]] = {}
        threads = [threading.Thread(target=lambda k=k, f=f: results.__setitem__(k, _latencies(f, stop)))
                   for k, f in (("writes", write), ("searches", search))]
        for thread in threads:
            thread.start()
        if phase == "alone":
            time.sleep(seconds_alone)
        else:
            time.sleep(0.5)  # both threads running
            report = lookalike.Database(path).snapshot(out)
            figures["snapshot"] = {"seconds": report["seconds"], "bytes": report["size"]}
        stop.set()
        for thread in threads:
            thread.join()
        figures[phase] = {"writes": _summary(results["writes"]), "searches": _summary(results["searches"])}
    writer_db.close()
    db.close()
    return figures


def measure_snapshot(source: str, *, load: bool = True, seconds_alone: float = 3.0,
                     progress=print) -> dict[str, Any]:
    """``source``: a database directory (copied first) or ``synthetic:N[:D]`` (N random cosine points, default
    D 128)."""
    from .datasets import _parse_count

    work = Path(tempfile.mkdtemp(prefix="lookalike-bench-snapshot-"))
    path = work / "db"
    try:
        if source.startswith("synthetic:"):
            parts = source.split(":")[1:]
            n, dim = _parse_count(parts[0], source), _parse_count(parts[1], source) if len(parts) > 1 else 128
            rng = np.random.default_rng(1)
            with lookalike.Database(path) as db:
                col = db.create_collection("points", dim=dim, metric="cosine")
                for start in range(0, n, 50_000):
                    m = min(50_000, n - start)
                    col.add(list(range(start, start + m)), rng.standard_normal((m, dim)).astype(np.float32))
            progress(f"made {n:,} x {dim}")
        else:
            shutil.copytree(source, path)  # the bench writes: leave the original alone
        if not load:
            report = lookalike.Database(path).snapshot(work / "snapshot.tar")
            return {"source": source, "snapshot": {"seconds": report["seconds"], "bytes": report["size"]}}
        return {"source": source, **_under_load(path, work / "snapshot.tar", seconds_alone)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(figures: dict[str, Any]) -> str:
    snap = figures["snapshot"]
    lines = [f"snapshot of {figures['source']}: {snap['seconds']:.2f} s, {snap['bytes'] / 1e6:.1f} MB"]
    for phase in ("during", "alone"):
        if phase in figures:
            cells = []
            for side in ("writes", "searches"):
                s = figures[phase][side]
                cells.append(f"{side} n={s['n']}" + ("" if not s["n"] else
                             f" p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms, max {s['max_ms']:.1f} ms"))
            lines.append(f"{phase} the snapshot: " + "; ".join(cells))
    return "\n".join(lines)
