"""HNSW against hnswlib and faiss IndexHNSWFlat, same graph parameters: a thin caller of ``lookalike bench --preset hnsw``
(src/lookalike/bench/presets/hnsw.toml), kept for the commands the docs used; its options are lookalike bench's.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_hnsw.py
    python bench/bench_hnsw.py -d synthetic:20000:64 --queries 200
"""

import sys

from lookalike.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--preset", "hnsw", *sys.argv[1:]]))
