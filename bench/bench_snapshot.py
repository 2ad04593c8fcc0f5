"""What an online snapshot costs: a thin caller of ``lookalike bench --snapshot`` (``lookalike.bench.snapshot``),
kept for the commands the docs used.

    python bench/bench_snapshot.py --db fashion-db
    python bench/bench_snapshot.py --synthetic 1000000 --dim 128
"""

import argparse

from lookalike.bench.snapshot import measure_snapshot, report

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="an existing database (its first collection is written to, in a copy)")
    parser.add_argument("--synthetic", type=int, help="make a fresh database of this many random points")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--no-load", action="store_true", help="only the snapshot's time and size")
    args = parser.parse_args()
    source = args.db if args.db else f"synthetic:{args.synthetic}:{args.dim}"
    print(report(measure_snapshot(source, load=not args.no_load)))
