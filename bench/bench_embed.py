"""Embedder benchmark: text/image alignment on Fashion-MNIST and single-query latency.

    python bench/bench_embed.py                          # the offline default, minilm-fmnist
    python bench/bench_embed.py --embedder clip:/path/to/a/clip/checkpoint --base-limit 5000

Prints the figures of lookalike.embed.evaluate (zero-shot accuracy, text->image top-1 and precision@10 with
class-name queries and with held-out paraphrases, image->image precision@10 of the 10k test images against the
60k training images), the time to embed the catalog, and the latency (p50 / p95) of embedding one text and one
image, as a search request does, with 1 and 2 torch threads (on a busy machine one thread is often faster: no
thread hand-off).  Timings on a shared machine are noisy: compare runs made side by side.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from PIL import Image

from lookalike.catalog.fashion_mnist import load_fashion_mnist
from lookalike.embed import DEFAULT_EMBEDDER, get_embedder
from lookalike.embed.evaluate import measure_alignment


def embed_catalog(embedder, pixels: np.ndarray) -> np.ndarray:
    """Fashion-MNIST pixels -> vectors, directly when the embedder takes pixels, else through PIL images."""
    if hasattr(embedder, "embed_pixels"):
        return embedder.embed_pixels(pixels)
    return embedder.embed_images([Image.fromarray(p) for p in pixels])


def latency_ms(call, repeats: int) -> tuple[float, float]:
    """p50 and p95 of ``call()`` in milliseconds, after two warm-up calls."""
    call(), call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - start))
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER)
    parser.add_argument("--base-limit", type=int, default=None, help="use only the first N training images as base")
    parser.add_argument("--repeats", type=int, default=100, help="calls per latency measurement")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the catalog embedding")
    parser.add_argument("--latency-threads", type=lambda text: [int(t) for t in text.split(",")], default=[1, 2],
                        help="torch thread counts to time single calls with (comma-separated)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    embedder = get_embedder(args.embedder)
    print(f"embedder {embedder.name} ({embedder.dim}-d), loaded in {time.perf_counter() - started:.1f}s, "
          f"{args.threads} torch threads")

    train_pixels, train_labels = load_fashion_mnist("train")
    test_pixels, test_labels = load_fashion_mnist("test")
    if args.base_limit:
        train_pixels, train_labels = train_pixels[: args.base_limit], train_labels[: args.base_limit]
    started = time.perf_counter()
    test_vectors = embed_catalog(embedder, test_pixels)
    train_vectors = embed_catalog(embedder, train_pixels)
    seconds = time.perf_counter() - started
    n = len(test_pixels) + len(train_pixels)
    print(f"embedded {n} catalog images in {seconds:.1f}s ({n / seconds:.0f} images/s)")

    report = measure_alignment(embedder.embed_texts, test_vectors, test_labels, train_vectors, train_labels)
    print("\nalignment on Fashion-MNIST (test split; image->image against the training split):")
    for line in report.lines():
        print("  " + line)

    photo = Image.new("RGB", (600, 800), "white")  # a user's photo: large, colour, light background
    photo.paste((40, 40, 110), (150, 100, 450, 700))
    catalog_image = Image.fromarray(test_pixels[0])
    calls = {
        "one text query": lambda: embedder.embed_texts(["a red summer dress"]),
        "one 28x28 catalog image": lambda: embedder.embed_images([catalog_image]),
        "one 600x800 user photo": lambda: embedder.embed_images([photo]),
    }
    for threads in args.latency_threads:
        torch.set_num_threads(threads)
        print(f"\nlatency of one call, {args.repeats} repeats, {threads} torch thread(s) (p50 / p95 ms):")
        for label, call in calls.items():
            p50, p95 = latency_ms(call, args.repeats)
            print(f"  {label:26s} {p50:7.2f} / {p95:7.2f}")


if __name__ == "__main__":
    main()
