"""Exact search and IVF against NumPy and faiss: a thin caller of ``lookalike bench --preset core``
(src/lookalike/bench/presets/core.toml), kept for the commands the docs used; its options are lookalike bench's.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_core.py
    python bench/bench_core.py -d synthetic:20000:64 --queries 200
"""

import sys

from lookalike.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--preset", "core", *sys.argv[1:]]))
