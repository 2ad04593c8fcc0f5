"""Core benchmark: exact search and IVF against plain NumPy and faiss, in one run, on one seeded data set.

    python bench/bench_core.py                       # 100k x 128, 1000 queries, k=10, 2 threads
    python bench/bench_core.py --n 20000 --dim 64 --nlist 128 --threads 1

Prints a table and writes the figures as JSON to results/bench_core-<n>x<dim>.json.

Rows:
  * exact batch queries/s: FlatIndex vs NumPy (one matmul over everything + argpartition) vs faiss IndexFlatL2
    (l2) and IndexFlatIP (cosine, on normalised vectors);
  * IVF: recall@k and queries/s of IVFIndex and faiss IndexIVFFlat (same nlist, same k-means iterations and
    sample size) over an nprobe sweep; at each recall target, the queries/s of the first nprobe that reaches
    it, batch and one query at a time; build times.

The machine may be shared: contenders run in turns (a, b, a, b, ...) so that they meet the same load, and each
figure is the best of several runs.  Two rates are given: queries per wall-clock second (what a user sees on
an idle machine) and queries per CPU-second of this process (the work done, which other processes on the
machine barely disturb).  Read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import os

# Two OpenMP runtimes share this process (Numba's and the one faiss bundles); by default each keeps its idle
# threads spinning after a parallel region, stealing the cores from whichever library runs next.  Passive
# waiting keeps the turns independent (and CPU time honest).  It must be set before either runtime loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lookalike._threads import set_num_threads  # noqa: E402
from lookalike.index.flat import FlatIndex  # noqa: E402
from lookalike.index.ivf import IVFIndex  # noqa: E402
from tests.conftest import clustered  # noqa: E402

try:
    import faiss
except ImportError:  # the benchmark still runs, without the faiss rows
    faiss = None

NPROBES = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="vectors in the index")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--clusters", type=int, default=None, help="mixture components (default n / 1000)")
    p.add_argument("--spread", type=float, default=0.3, help="cluster spread of tests.conftest.clustered")
    p.add_argument("--nlist", type=int, default=None, help="IVF lists (default: power of two near 4 sqrt(n))")
    p.add_argument("--n-iter", type=int, default=20, help="k-means iterations, both libraries")
    p.add_argument("--targets", type=float, nargs="+", default=[0.90, 0.95])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="timings are the best of at least this many runs")
    p.add_argument("--single", type=int, default=200, help="queries timed one at a time")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="JSON file (default results/bench_core-<n>x<dim>.json)")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------ timing
def race(contenders, count, repeats, min_seconds=1.0, max_rounds=50):
    """{name: {"qps": per wall second, "qps_cpu": per CPU-second}} for callables that each answer ``count``
    queries.  They run in turns, at least ``repeats`` rounds and more while under ``min_seconds``; each rate
    is the best round, since other processes only ever add time."""
    for fn in contenders.values():
        fn()  # warm-up: Numba compilation, caches, thread pools
    wall = dict.fromkeys(contenders, float("inf"))
    cpu = dict.fromkeys(contenders, float("inf"))
    spent, rounds = 0.0, 0
    while rounds < repeats or (spent < min_seconds and rounds < max_rounds):
        for name, fn in contenders.items():
            wall0, cpu0 = time.perf_counter(), time.process_time()
            fn()
            elapsed = time.perf_counter() - wall0
            wall[name] = min(wall[name], elapsed)
            cpu[name] = min(cpu[name], max(time.process_time() - cpu0, 1e-9))
            spent += elapsed
        rounds += 1
    return {name: {"qps": count / wall[name], "qps_cpu": count / cpu[name]} for name in contenders}


def timed(fn):
    """(wall seconds, CPU seconds) of one call."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall0, time.process_time() - cpu0


def recall_at_k(found, truth):
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, truth))
    return hits / truth.size


# ------------------------------------------------------------------------------------------ exact search
def numpy_exact(x, q, k, metric):
    """The baseline everyone writes: one (nq, n) score matrix, argpartition, sort the k winners."""
    scores = q @ x.T
    if metric == "l2":
        scores = (x * x).sum(1)[None, :] - 2.0 * scores
    else:
        scores = -scores
    part = np.argpartition(scores, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(scores, part, axis=1), axis=1)
    return np.take_along_axis(part, order, axis=1)


def bench_exact(x, q, args, metric):
    """Batch rates of exact search, and the true neighbours (FlatIndex is the oracle)."""
    flat = FlatIndex(x.shape[1], metric)
    flat.add(x)
    truth = flat.search(q, args.k).ids
    xs, qs = (x, q) if metric == "l2" else (flat.vectors, q / np.linalg.norm(q, axis=1, keepdims=True))
    contenders = {
        "lookalike FlatIndex": lambda: flat.search(q, args.k),
        "numpy matmul+argpartition": lambda: numpy_exact(xs, qs, args.k, metric),
    }
    checks = {"numpy matmul+argpartition": lambda: numpy_exact(xs, qs, args.k, metric)}
    if faiss is not None:
        peer = faiss.IndexFlatL2(x.shape[1]) if metric == "l2" else faiss.IndexFlatIP(x.shape[1])
        peer.add(np.ascontiguousarray(xs))
        name = "faiss IndexFlatL2" if metric == "l2" else "faiss IndexFlatIP"
        contenders[name] = checks[name] = lambda: peer.search(qs, args.k)[1]
    for name, check in checks.items():
        if recall_at_k(check(), truth) < 0.99:
            raise RuntimeError(f"{name} does not agree with FlatIndex: the benchmark compares unlike things")
    return race(contenders, len(q), args.repeats), truth


# ------------------------------------------------------------------------------------------ IVF
def build_ivf(x, args):
    """{library: (search(queries, nprobe) -> ids, build (wall s, CPU s))} for lookalike and faiss (same nlist, k-means
    iterations, training sample of 256 points per list, seed)."""
    dim = x.shape[1]
    ours = IVFIndex(dim, "l2", nlist=args.nlist, n_iter=args.n_iter, seed=args.seed)
    ours_build = timed(lambda: ours.add(x))
    libraries = {"lookalike IVFIndex": (lambda queries, nprobe: ours.search(queries, args.k, nprobe=nprobe).ids,
                                        ours_build)}
    if faiss is not None:
        peer = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, args.nlist, faiss.METRIC_L2)
        peer.cp.niter = args.n_iter
        peer.cp.seed = args.seed
        peer_build = timed(lambda: (peer.train(x), peer.add(x)))

        def peer_search(queries, nprobe):
            peer.nprobe = nprobe
            return peer.search(queries, args.k)[1]

        libraries["faiss IndexIVFFlat"] = (peer_search, peer_build)
    return libraries


def bench_ivf(x, q, truth, args):
    libraries = build_ivf(x, args)
    sweeps = {name: [] for name in libraries}  # [{"nprobe", "recall", "qps", "qps_cpu"}]
    goal = max(args.targets)
    for nprobe in [p for p in NPROBES if p < args.nlist] + [args.nlist]:
        running = {name: search for name, (search, _) in libraries.items()
                   if not sweeps[name] or sweeps[name][-1]["recall"] < goal}
        if not running:
            break
        rates = race({name: (lambda s=search: s(q, nprobe)) for name, search in running.items()}, len(q),
                     args.repeats)
        for name, search in running.items():
            sweeps[name].append({"nprobe": nprobe, "recall": recall_at_k(search(q, nprobe), truth), **rates[name]})
    results = {name: {"build_s": build[0], "build_cpu_s": build[1], "sweep": sweeps[name], "targets": {}}
               for name, (_, build) in libraries.items()}
    for target in args.targets:
        first = {name: next((p for p in sweeps[name] if p["recall"] >= target), None) for name in libraries}
        reached = {name: point for name, point in first.items() if point is not None}
        singles = race({name: one_at_a_time(libraries[name][0], q[: args.single], point["nprobe"])
                        for name, point in reached.items()}, args.single, 1)
        for name, point in first.items():
            results[name]["targets"][target] = None if point is None else {
                **point, "single_qps": singles[name]["qps"], "single_qps_cpu": singles[name]["qps_cpu"]}
    return results


def one_at_a_time(search, queries, nprobe):
    def run():
        for row in queries:
            search(row[None, :], nprobe)

    return run


# ------------------------------------------------------------------------------------------ report
def print_report(exact, ivf, args):
    print(f"\n== exact search, batch of {args.queries} queries, k={args.k}: queries/s (wall) and per CPU-second")
    for metric, rows in exact.items():
        ours = rows["lookalike FlatIndex"]
        for name, rate in rows.items():
            ratio = "" if name.startswith("lookalike") else (
                f"   lookalike / this: {ours['qps'] / rate['qps']:5.2f} wall, "
                f"{ours['qps_cpu'] / rate['qps_cpu']:5.2f} cpu")
            print(f"  {metric:6s} {name:28s} {rate['qps']:9.0f} {rate['qps_cpu']:9.0f}{ratio}")
    print(f"\n== IVF, l2, nlist={args.nlist}, k={args.k}")
    for name, res in ivf.items():
        print(f"  {name}: build {res['build_s']:.2f} s ({res['build_cpu_s']:.2f} CPU-s); "
              "sweep (nprobe, recall, q/s wall, q/CPU-s): "
              + ", ".join(f"({p['nprobe']}, {p['recall']:.3f}, {p['qps']:.0f}, {p['qps_cpu']:.0f})"
                          for p in res["sweep"]))
    print(f"\n  {'target':>6s} {'library':20s} {'nprobe':>6s} {'recall':>6s} {'batch q/s':>10s} {'q/CPU-s':>9s} "
          f"{'single q/s':>10s} {'q/CPU-s':>9s}")
    for target in args.targets:
        for name, res in ivf.items():
            hit = res["targets"][target]
            if hit is None:
                print(f"  {target:6.2f} {name:20s} not reached")
                continue
            print(f"  {target:6.2f} {name:20s} {hit['nprobe']:6d} {hit['recall']:6.3f} {hit['qps']:10.0f} "
                  f"{hit['qps_cpu']:9.0f} {hit['single_qps']:10.0f} {hit['single_qps_cpu']:9.0f}")
    if len(ivf) == 2:
        ours, peer = ivf["lookalike IVFIndex"], ivf["faiss IndexIVFFlat"]
        print(f"\n  lookalike / faiss: build time {ours['build_s'] / peer['build_s']:.2f} wall, "
              f"{ours['build_cpu_s'] / peer['build_cpu_s']:.2f} cpu")
        for target in args.targets:
            a, b = ours["targets"][target], peer["targets"][target]
            if a and b:
                print(f"  at recall {target:.2f}: batch {a['qps'] / b['qps']:.2f} wall, "
                      f"{a['qps_cpu'] / b['qps_cpu']:.2f} cpu; single {a['single_qps'] / b['single_qps']:.2f} wall, "
                      f"{a['single_qps_cpu'] / b['single_qps_cpu']:.2f} cpu")


def main(argv=None):
    args = parse_args(argv)
    args.clusters = args.clusters or max(10, args.n // 1000)
    args.nlist = args.nlist or int(2 ** round(np.log2(4 * np.sqrt(args.n))))
    set_num_threads(args.threads)
    if faiss is not None:
        faiss.omp_set_num_threads(args.threads)
    data = clustered(args.n + args.queries, args.dim, args.clusters, seed=args.seed, spread=args.spread)
    x, q = data[: args.n], data[args.n :]
    print(f"data: {args.n} x {args.dim} clustered ({args.clusters} clusters, spread {args.spread}), "
          f"{args.queries} queries, k={args.k}, threads={args.threads}, faiss={'yes' if faiss else 'no'}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    exact, truth = {}, None
    for metric in ("l2", "cosine"):
        exact[metric], metric_truth = bench_exact(x, q, args, metric)
        truth = metric_truth if metric == "l2" else truth
    ivf = bench_ivf(x, q, truth, args)
    print_report(exact, ivf, args)

    out = args.out or ROOT / "results" / f"bench_core-{args.n}x{args.dim}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"python": platform.python_version(), "cores": os.cpu_count(), "load_average": os.getloadavg(),
                    "faiss": getattr(faiss, "__version__", None)},
        "exact": exact,
        "ivf": {name: {**res, "targets": {str(t): v for t, v in res["targets"].items()}} for name, res in ivf.items()},
    }
    out.write_text(json.dumps(payload, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
