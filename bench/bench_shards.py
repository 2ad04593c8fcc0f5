"""Sharded lookalike on a local Ray: a thin caller of ``lookalike bench --shards`` (``lookalike.bench.shards``),
kept for the commands the docs used.

    python bench/bench_shards.py                       # 100k x 128, cosine, shards 1,2,4
    python bench/bench_shards.py --n 20000 --shards 1,2 --num-cpus 4
"""

import argparse
import sys

from lookalike.cli import main

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", default="100000")
    p.add_argument("--dim", default="128")
    p.add_argument("--queries", default="1000")
    p.add_argument("--shards", default="1,2,4")
    p.add_argument("--num-cpus", default="2")
    p.add_argument("--out", default="results")
    a = p.parse_args()
    sys.exit(main(["bench", "--shards", f"{a.n}:{a.dim}", "--queries", a.queries, "--shards-counts", a.shards,
                   "--shards-cpus", a.num_cpus, "--out", a.out]))
