"""Load test of the HTTP server (loopback only, bounded): a thin caller of ``lookalike bench --load``
(``lookalike.bench.load``), kept for the commands the docs used.

    python bench/load_test.py --db fashion-db --collection fashion-mnist --levels 1,4,16,32 --requests 2500
"""

import argparse
import sys

from lookalike.cli import main

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", default="")
    p.add_argument("--url", default=None)
    p.add_argument("--collection", default="fashion-mnist")
    p.add_argument("--levels", default="1,4,16,32")
    p.add_argument("--requests", default="2500")
    p.add_argument("--time-limit", default="45")
    p.add_argument("--modes", default="text,vector,photo")
    p.add_argument("--mixed", action="store_true")
    p.add_argument("--out", default="results")
    a = p.parse_args()
    argv = ["bench", "--load", f"{a.db}:{a.collection}", "--load-levels", a.levels, "--load-requests", a.requests,
            "--load-seconds", a.time_limit, "--load-modes", a.modes, "--out", a.out]
    sys.exit(main(argv + (["--load-url", a.url] if a.url else []) + (["--load-mixed"] if a.mixed else [])))
