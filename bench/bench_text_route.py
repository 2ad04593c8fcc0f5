"""Text understanding of the text routes: a thin caller of ``lookalike bench --embedders`` (its "text queries"
figures: shoppers' words and languages, English paraphrases, class names; and the latency), kept for the commands
the docs used; its options are lookalike bench's.

    python bench/bench_text_route.py                     # minilm-fmnist+use-m vs minilm-fmnist-described+use-m
    python bench/bench_text_route.py --embedders minilm-fmnist+use-m --runs 200
    python bench/bench_text_route.py --write-centroids   # recompute models/fmnist_class_centroids.npy (model data)
"""

import sys

from lookalike.bench.embedders import DEFAULT_EMBEDDERS, write_centroids
from lookalike.cli import main

if __name__ == "__main__":
    given = sys.argv[1:]
    if "--write-centroids" in given:
        print(f"wrote {write_centroids(DEFAULT_EMBEDDERS.split(',')[0])}")
        sys.exit(0)
    sys.exit(main(["bench", *given] if "--embedders" in given else ["bench", "--embedders", DEFAULT_EMBEDDERS, *given]))
