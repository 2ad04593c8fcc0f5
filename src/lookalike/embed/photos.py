"""Catalog pictures turned back into the kind of photo a shopper uploads, and through the upload path again.

A Fashion-MNIST picture is a product photo reduced to 28x28 and negated (Xiao et al. 2017).  A shopper's photo is
the other way round: dark product on a white background, in colour, hundreds of pixels wide, JPEG-compressed.
:func:`as_product_photo` undoes the reduction as far as it can (negation undone, a tint, upscaled to 480 px, JPEG at
a random quality); :func:`round_trip` then sends it through the same conversion an upload takes
(:func:`lookalike.embed.pixels.to_fashion_mnist_pixels`).  The image tower trains on such round trips so that
uploaded photos find their class as well as the stored pictures do, and the benchmark measures it.
"""

from __future__ import annotations

import io

import numpy as np

PHOTO_SIDE = 480


def as_product_photo(stored: np.ndarray, rng: np.random.Generator, side: int = PHOTO_SIDE):
    """One stored picture (uint8 28x28, light on black) -> an RGB PIL image: the product dark on white, tinted by
    a random colour, ``side`` pixels wide, JPEG-compressed at quality 40-90."""
    from PIL import Image

    ink = np.asarray(stored, dtype=np.float32)[..., None] / 255.0  # how much of the product covers each pixel
    tint = rng.uniform(0.45, 1.0, size=3).astype(np.float32)  # per channel: how dark the product is in it
    rgb = 255.0 * (1.0 - ink * tint)  # the white background stays white
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), mode="RGB")
    image = image.resize((side, side), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(40, 91)))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def round_trip(stored: np.ndarray, seed: int = 0) -> np.ndarray:
    """Stored pictures ``(n, 28, 28)`` -> what the upload path makes of them as product photos, uint8 ``(n, 28, 28)``
    (seeded: picture ``i`` of a call always gets the same tint and quality)."""
    return _round_trip_part((np.asarray(stored, dtype=np.uint8), seed, 0))


def round_trip_parallel(stored: np.ndarray, seed: int = 0, processes: int = 2) -> np.ndarray:
    """:func:`round_trip` split over ``processes`` worker processes (same result, picture by picture)."""
    from concurrent.futures import ProcessPoolExecutor

    stored = np.asarray(stored, dtype=np.uint8)
    if processes <= 1 or len(stored) < 1000:
        return round_trip(stored, seed)
    bounds = np.linspace(0, len(stored), processes + 1).astype(int)
    with ProcessPoolExecutor(processes) as pool:
        parts = pool.map(_round_trip_part, [(stored[a:b], seed, a) for a, b in zip(bounds[:-1], bounds[1:])])
        return np.concatenate(list(parts))


def _round_trip_part(job) -> np.ndarray:
    stored, seed, offset = job
    from .pixels import to_fashion_mnist_pixels

    out = np.empty_like(stored)
    for i, picture in enumerate(stored):
        out[i] = to_fashion_mnist_pixels(as_product_photo(picture, np.random.default_rng((seed, offset + i))))
    return out
