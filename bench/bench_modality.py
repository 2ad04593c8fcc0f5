"""Text queries vs photo queries on the approximate indexes of a catalog: a thin caller of
``lookalike bench --modalities DB[:COLLECTION]`` (``lookalike.bench.modality``), kept for the commands the docs
used.  The catalog is the demo's collection (``lookalike demo --no-serve --db DEMO_DB``).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_modality.py --db DEMO_DB
    python bench/bench_modality.py --db DEMO_DB --embedders minilm-fmnist,minilm-fmnist+use-m --out docs
"""

import argparse
import sys

from lookalike.cli import main

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True)
    p.add_argument("--collection", default="fashion-mnist")
    p.add_argument("--embedders", default="minilm-fmnist+use-m", help="text routes, comma-separated")
    p.add_argument("--queries", default="200")
    p.add_argument("--out", default="bench-results", help="the plot goes to OUT/modalities-COLLECTION.png/.svg")
    a = p.parse_args()
    sys.exit(main(["bench", "--modalities", f"{a.db}:{a.collection}", "--text-embedders", a.embedders,
                   "--queries", a.queries, "--out", a.out]))
