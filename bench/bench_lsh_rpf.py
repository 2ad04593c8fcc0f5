"""Tree and hash indexes: RPForestIndex against annoy, and LSHIndex's recall against the work it does.

    python bench/bench_lsh_rpf.py                         # 100k x 128 on the unit sphere, 1000 queries, k=10, 2 threads
    python bench/bench_lsh_rpf.py --n 20000 --trees 10 20 --leaf-size 32 64 --no-lsh

Prints tables and writes the figures as JSON to results/bench_lsh_rpf-<n>x<dim>.json.  The machine may be shared:
read the ratios (lookalike and annoy timed in turns, best of --repeats), not the absolute numbers.

Rows:
  * RPForest vs annoy, same n_trees, over a search_k sweep: recall@k and batch queries/s; at each recall target
    the first search_k of each library that reaches it, with batch and one-query-at-a-time queries/s; build time
    and index size (the bytes of the saved index, vectors included, which is what a load maps into memory).
    annoy has no batch call: its batch is ``--threads`` Python threads each looping over a share of the
    queries (annoy releases the GIL while it searches), as ann-benchmarks does.
  * LSH: for a few (n_tables, n_bits) and a sweep of n_probes, recall@k, distance computations per query
    (candidates examined) and batch queries/s; and the setting ``choose_lsh_params`` picks for --choose targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads must not spin between turns of `race`

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_core import one_at_a_time, race, recall_at_k  # noqa: E402

from lookalike._threads import set_num_threads  # noqa: E402
from lookalike.bench.algorithms import directory_size  # noqa: E402
from lookalike.index.flat import FlatIndex  # noqa: E402
from lookalike.index.lsh import LSHIndex, choose_lsh_params  # noqa: E402
from lookalike.index.rp_forest import RPForestIndex  # noqa: E402
from tests.conftest import clustered  # noqa: E402

try:
    import annoy
except ImportError:  # the benchmark still runs, without the annoy rows
    annoy = None

SEARCH_KS = [20, 30, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1200, 1600, 2400, 3200, 4800, 6400, 9600, 12800,
             19200, 25600, 38400, 51200]
LSH_SETTINGS = [(8, 12), (16, 14), (16, 16), (32, 16)]
N_PROBES = [1, 2, 4, 8, 16, 32, 64, 128]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="vectors in the index")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--clusters", type=int, default=None, help="mixture components (default n / 100)")
    p.add_argument("--spread", type=float, default=0.3, help="cluster spread of tests.conftest.clustered")
    p.add_argument("--trees", type=int, nargs="+", default=[10], help="n_trees, the same for both libraries")
    p.add_argument("--leaf-size", type=int, nargs="+", default=[32], help="RPForestIndex leaf_size values")
    p.add_argument("--targets", type=float, nargs="+", default=[0.90, 0.95, 0.99])
    p.add_argument("--choose", type=float, nargs="*", default=[0.90], help="targets for choose_lsh_params")
    p.add_argument("--no-lsh", action="store_true")
    p.add_argument("--no-forest", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="timings are the best of at least this many runs")
    p.add_argument("--single", type=int, default=200, help="queries timed one at a time")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="JSON file (default results/bench_lsh_rpf-<n>x<dim>.json)")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------ contenders
def wall_clock(fn):
    """(what fn returns, wall seconds it took)."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


class Contender:
    """One index under test: ``search(queries, search_k)`` -> ids, ``one(query (1, d), search_k)``, build time,
    bytes."""

    name: str
    build_s: float
    size_bytes: int

    def search(self, queries, search_k):
        raise NotImplementedError

    def one(self, query, search_k):
        raise NotImplementedError


class OurForest(Contender):
    def __init__(self, x, n_trees, leaf_size, k, seed):
        self.name = f"lookalike RPForest(leaf {leaf_size})"
        self.k = k
        self.index = RPForestIndex(x.shape[1], "cosine", n_trees=n_trees, leaf_size=leaf_size, seed=seed)
        _, self.build_s = wall_clock(lambda: self.index.add(x))
        with tempfile.TemporaryDirectory() as tmp:
            self.index.save(Path(tmp) / "forest")
            self.size_bytes = directory_size(Path(tmp) / "forest")

    def search(self, queries, search_k):
        return self.index.search(queries, self.k, search_k=search_k).ids

    def one(self, query, search_k):
        return self.index.search(query, self.k, search_k=search_k).ids


class AnnoyForest(Contender):
    def __init__(self, x, n_trees, k, seed, threads):
        self.name = "annoy"
        self.k, self.threads = k, threads
        self.index = annoy.AnnoyIndex(x.shape[1], "angular")
        self.index.set_seed(seed)
        start = time.perf_counter()
        for i, row in enumerate(x):
            self.index.add_item(i, row)
        self.add_s = time.perf_counter() - start
        _, self.build_s = wall_clock(lambda: self.index.build(n_trees, n_jobs=threads))
        with tempfile.TemporaryDirectory() as tmp:
            self.index.save(str(Path(tmp) / "forest.ann"))
            self.size_bytes = (Path(tmp) / "forest.ann").stat().st_size
            self.index.unload()
            self.index.load(str(Path(tmp) / "forest.ann"))  # read into memory before the file goes

    def _loop(self, queries, search_k):
        return [self.index.get_nns_by_vector(row, self.k, search_k=search_k) for row in queries]

    def search(self, queries, search_k):
        shares = np.array_split(queries, self.threads)
        with ThreadPoolExecutor(self.threads) as pool:
            parts = list(pool.map(lambda share: self._loop(share, search_k), shares))
        return np.array([ids + [-1] * (self.k - len(ids)) for part in parts for ids in part])

    def one(self, query, search_k):
        return self.index.get_nns_by_vector(query[0], self.k, search_k=search_k)


# ------------------------------------------------------------------------------------------ forests
def sweep(contenders, q, truth, args):
    """(search_k, recall, batch q/s) per contender until each passes the highest target."""
    points = {c.name: [] for c in contenders}
    goal = max(args.targets)
    for search_k in SEARCH_KS:
        running = [c for c in contenders if not points[c.name] or points[c.name][-1][1] < goal]
        if not running:
            break
        recalls = {c.name: recall_at_k(c.search(q, search_k), truth) for c in running}
        rates = race({c.name: (lambda c=c: c.search(q, search_k)) for c in running}, len(q), args.repeats,
                     min_seconds=0.5)
        for c in running:
            points[c.name].append((search_k, recalls[c.name], rates[c.name]["qps"]))
    return points


def at_targets(contenders, points, q, args):
    """At each target, the first search_k of each contender that reaches it, with single-query q/s."""
    out = {}
    for target in args.targets:
        first = {c.name: next((p for p in points[c.name] if p[1] >= target), None) for c in contenders}
        reached = [c for c in contenders if first[c.name] is not None]
        singles = race({c.name: one_at_a_time(c.one, q[: args.single], first[c.name][0]) for c in reached}, args.single,
                       args.repeats)
        out[target] = {
            c.name: None if first[c.name] is None else {
                "search_k": first[c.name][0], "recall": first[c.name][1], "qps": first[c.name][2],
                "single_qps": singles[c.name]["qps"]}
            for c in contenders
        }
    return out


def bench_forests(x, q, truth, args):
    results = []
    for n_trees in args.trees:
        contenders = [OurForest(x, n_trees, leaf, args.k, args.seed) for leaf in args.leaf_size]
        if annoy is not None:
            contenders.append(AnnoyForest(x, n_trees, args.k, args.seed, args.threads))
        points = sweep(contenders, q, truth, args)
        results.append({
            "n_trees": n_trees,
            "build": {c.name: {"build_s": c.build_s, "size_mb": c.size_bytes / 1e6,
                               **({"add_items_s": c.add_s} if hasattr(c, "add_s") else {})} for c in contenders},
            "sweep": points,
            "targets": at_targets(contenders, points, q, args),
        })
    return results


# ------------------------------------------------------------------------------------------ LSH
def bench_lsh(x, q, truth, args):
    rows = []
    for n_tables, n_bits in LSH_SETTINGS:
        index = LSHIndex(x.shape[1], "cosine", n_tables=n_tables, n_bits=n_bits, seed=args.seed)
        _, build_s = wall_clock(lambda: index.add(x))
        for n_probes in N_PROBES:
            recall = recall_at_k(index.search(q, args.k, n_probes=n_probes).ids, truth)
            work = index.last_stats["mean_distance_computations"]
            run = {"lsh": lambda: index.search(q, args.k, n_probes=n_probes)}
            qps = race(run, len(q), 1, min_seconds=0.3)["lsh"]["qps"]
            rows.append({"n_tables": n_tables, "n_bits": n_bits, "n_probes": n_probes, "recall": recall,
                         "distance_computations": work, "qps": qps, "build_s": build_s,
                         "index_mb": index.memory_bytes() / 1e6})
            print(f"  lsh {n_tables} tables x {n_bits} bits, {n_probes} probes: recall {recall:.3f}, "
                  f"{work:.0f} candidates", file=sys.stderr, flush=True)
            if recall >= 0.995:
                break
    chosen = {}
    for target in args.choose:
        picked, seconds = wall_clock(lambda: choose_lsh_params(x, target, k=args.k, metric="cosine", seed=args.seed))
        index = LSHIndex(x.shape[1], "cosine", n_tables=picked["n_tables"], n_bits=picked["n_bits"], seed=args.seed)
        index.add(x)
        held_out = recall_at_k(index.search(q, args.k, n_probes=picked["n_probes"]).ids, truth)
        chosen[target] = {**picked, "held_out_recall": held_out, "choose_s": seconds,
                          "held_out_distance_computations": index.last_stats["mean_distance_computations"]}
    return rows, chosen


# ------------------------------------------------------------------------------------------ report
def print_forests(forests, args):
    for res in forests:
        print(f"\n== RP forests, n_trees={res['n_trees']}, cosine, k={args.k}")
        for name, b in res["build"].items():
            extra = f" (+ {b['add_items_s']:.2f} s add_item loop)" if "add_items_s" in b else ""
            print(f"  {name:28s} build {b['build_s']:6.2f} s{extra}, saved index {b['size_mb']:6.1f} MB")
        for name, pts in res["sweep"].items():
            curve = ", ".join(f"({s}, {r:.3f}, {v:.0f})" for s, r, v in pts)
            print(f"  {name}: (search_k, recall, batch q/s) {curve}")
        print(f"  {'target':>6s} {'library':28s} {'search_k':>8s} {'recall':>7s} {'batch q/s':>10s} "
              f"{'single q/s':>10s}")
        for target, by_name in res["targets"].items():
            for name, hit in by_name.items():
                if hit is None:
                    print(f"  {target:6.2f} {name:28s} {'not reached':>8s}")
                    continue
                print(f"  {target:6.2f} {name:28s} {hit['search_k']:8d} {hit['recall']:7.3f} {hit['qps']:10.0f} "
                      f"{hit['single_qps']:10.0f}")
        if "annoy" not in res["build"]:
            continue
        for target, by_name in res["targets"].items():
            peer = by_name["annoy"]
            for name, hit in by_name.items():
                if name != "annoy" and hit and peer:
                    print(f"  recall {target:.2f} {name} / annoy: batch q/s {hit['qps'] / peer['qps']:.2f}, "
                          f"single q/s {hit['single_qps'] / peer['single_qps']:.2f}")


def print_lsh(rows, chosen, args):
    print(f"\n== LSH (SimHash + multi-probe), cosine, k={args.k}")
    print(f"  {'tables':>6s} {'bits':>4s} {'probes':>6s} {'recall':>7s} {'candidates':>10s} {'batch q/s':>10s} "
          f"{'build s':>7s} {'tables MB':>9s}")
    for r in rows:
        print(f"  {r['n_tables']:6d} {r['n_bits']:4d} {r['n_probes']:6d} {r['recall']:7.3f} "
              f"{r['distance_computations']:10.0f} {r['qps']:10.0f} {r['build_s']:7.2f} {r['index_mb']:9.1f}")
    for target, c in chosen.items():
        print(f"  choose_lsh_params(target={target}): n_tables={c['n_tables']} n_bits={c['n_bits']} "
              f"n_probes={c['n_probes']} -> recall {c['held_out_recall']:.3f} on the benchmark queries, "
              f"{c['held_out_distance_computations']:.0f} candidates ({c['choose_s']:.0f} s to choose)")


def main(argv=None):
    args = parse_args(argv)
    args.clusters = args.clusters or max(10, args.n // 100)
    set_num_threads(args.threads)
    data = clustered(args.n + args.queries, args.dim, args.clusters, seed=args.seed, spread=args.spread)
    data /= np.linalg.norm(data, axis=1, keepdims=True)  # on the unit sphere
    x, q = data[: args.n], data[args.n :]
    print(f"data: {args.n} x {args.dim} on the unit sphere ({args.clusters} clusters, spread {args.spread}), "
          f"{args.queries} queries, k={args.k}, threads={args.threads}, annoy={'yes' if annoy else 'no'}")
    flat = FlatIndex(args.dim, "cosine")
    flat.add(x)
    truth = flat.search(q, args.k).ids

    forests = [] if args.no_forest else bench_forests(x, q, truth, args)
    print_forests(forests, args)
    lsh_rows, chosen = ([], {}) if args.no_lsh else bench_lsh(x, q, truth, args)
    if not args.no_lsh:
        print_lsh(lsh_rows, chosen, args)

    out = args.out or ROOT / "results" / f"bench_lsh_rpf-{args.n}x{args.dim}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"python": platform.python_version(), "processor": platform.processor(),
                    "annoy": getattr(annoy, "__version__", None) if annoy else None},
        "forests": [{**res, "targets": {str(t): v for t, v in res["targets"].items()}} for res in forests],
        "lsh": lsh_rows,
        "lsh_chosen": {str(t): v for t, v in chosen.items()},
    }
    out.write_text(json.dumps(payload, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
