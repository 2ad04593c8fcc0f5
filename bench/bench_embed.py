"""Embedder benchmark: a thin caller of ``lookalike bench --embedders`` (``lookalike.bench.embedders``: catalog
embedding rate, text/image alignment, shoppers' words and languages, single-call latency), kept for the commands
the docs used; its options are lookalike bench's.

    python bench/bench_embed.py                                   # the default embedder
    python bench/bench_embed.py --embedders clip:/path/to/a/clip/checkpoint --queries 5000
"""

import sys

from lookalike.bench.embedders import DEFAULT_EMBEDDERS
from lookalike.cli import main

if __name__ == "__main__":
    given = sys.argv[1:]
    sys.exit(main(["bench", *given] if "--embedders" in given else ["bench", "--embedders", DEFAULT_EMBEDDERS, *given]))
