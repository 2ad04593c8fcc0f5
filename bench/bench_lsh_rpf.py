"""Tree and hash indexes: RPForest against annoy, and LSH: a thin caller of ``lookalike bench --preset trees``
(src/lookalike/bench/presets/trees.toml), kept for the commands the docs used; its options are lookalike bench's.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_lsh_rpf.py
    python bench/bench_lsh_rpf.py -d synthetic:20000:64 --queries 200
"""

import sys

from lookalike.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--preset", "trees", *sys.argv[1:]]))
