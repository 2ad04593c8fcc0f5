"""A million vectors on one machine, end to end, beside faiss and hnswlib: a thin caller of
``lookalike bench --scaling`` (``lookalike.bench.scaling``; results: docs/scaling.md), kept for the commands the
docs used.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_scaling.py                 # 1M x 128
    python bench/bench_scaling.py --n 200000 --skip-hnsw --nlist 2048                           # smaller
"""

import argparse
import sys

from lookalike.cli import main

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", default="1000000")
    p.add_argument("--dim", default="128")
    p.add_argument("--queries", default="1000")
    p.add_argument("--batch", default="50000")
    p.add_argument("--nlist", default="1024")
    p.add_argument("--m", default="32")
    p.add_argument("--skip-hnsw", action="store_true")
    p.add_argument("--out", default="results")
    a = p.parse_args()
    sys.exit(main(["bench", "--scaling", f"{a.n}:{a.dim}", "--queries", a.queries, "--scaling-batch", a.batch,
                   "--scaling-nlist", a.nlist, "--scaling-m", a.m, "--out", a.out]
                  + (["--scaling-skip-hnsw"] if a.skip_hnsw else [])))
