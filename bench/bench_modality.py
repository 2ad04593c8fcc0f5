"""Text queries vs photo queries on the approximate indexes of a catalog: recall@10 against QPS, per modality.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_modality.py --db DEMO_DB
    python bench/bench_modality.py --db DEMO_DB --embedders minilm-fmnist,minilm-fmnist+use-m --plot docs/modality

The same as ``lookalike bench --modalities DEMO_DB``; the measurement is lookalike.bench.modality (see there).
The catalog is the demo's collection (``lookalike demo --no-serve --db DEMO_DB``).
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--collection", default="fashion-mnist")
    parser.add_argument("--embedders", default="minilm-fmnist+use-m", help="text routes, comma-separated")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--plot", default=None, help="write the curves to BASE.png and BASE.svg")
    args = parser.parse_args()

    import lookalike
    from lookalike.bench.modality import measure_modalities, plot, report

    with lookalike.Database(args.db) as db:
        col = db.get_collection(args.collection)
        curves = measure_modalities(col, args.embedders.split(","), args.queries)
        print(f"{col.name}: {len(col)} products; {args.queries} queries per set")
        print(report(curves))
        if args.plot:
            plot(curves, args.plot, col.name)


if __name__ == "__main__":
    main()
