"""What a Fashion-MNIST picture shows besides its class: lightness, pattern and shape, measured from its pixels.

These measures caption the training images of the image tower (so that "a black striped shirt" is taught with
shirts that are dark and striped) and score the benchmark of descriptive queries.  Nothing here comes from a list
of items: every value is computed from the 28x28 picture.

Fashion-MNIST stores negated intensities (Xiao et al. 2017, section 2, step 6): the product, dark on white in the
shop's photo, is stored light on black.  So the product's own grey level is ``255 - stored``, over the garment's
pixels (the silhouette: stored value above a small threshold, with the holes of the outline filled unless they are
background seen through straps or handles).

- **lightness**: the mean grey level of the product (0 black .. 255 white);
- **texture**: how much the picture varies inside the garment, away from its outline: the mean absolute difference
  between a pixel and the mean of its 3x3 neighbourhood over the silhouette eroded by two pixels (a plain garment
  is smooth, a print, a check or stripes are not);
- **stripes**: the share of that variation along one axis (stripes change across them and not along them);
- **logo**: how much more varied the chest (the centre of the picture) is than the rest of the garment;
- **aspect**: the silhouette's height over its width ("a long dress", "a high boot" are taller than wide);
- **sleeves**: the silhouette's width low on the garment over its width at the shoulders (long sleeves hang beside
  the body, short ones stop high);
- **handle**: the share of the silhouette's upper third that is a hole in it (a bag's handle or strap loop).

Words are given relative to the class (the garment's kind): "white" is the lightest fifth of that kind in the
catalog, "black" the darkest; a grayscale picture cannot show hue, so a colour name is placed by the grey level a
grayscale photo gives it (:mod:`lookalike.embed.colours`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SILHOUETTE_THRESHOLD = 8  # stored value above which a pixel belongs to the garment (3% of full scale)
BACKGROUND_SEEN_THROUGH = 2  # a hole of the outline this dark (stored) is background, not a white part
EDGE_EROSION = 2  # pixels of outline left out of the texture measures

MEASURES = ("lightness", "texture", "stripes", "logo", "aspect", "sleeves", "handle")


@dataclass(frozen=True)
class PixelMeasures:
    """One row per picture of each measure (float32 arrays of the same length)."""

    lightness: np.ndarray
    texture: np.ndarray
    stripes: np.ndarray
    logo: np.ndarray
    aspect: np.ndarray
    sleeves: np.ndarray
    handle: np.ndarray

    def __len__(self) -> int:
        return len(self.lightness)

    def column(self, name: str) -> np.ndarray:
        return getattr(self, name)


def product_pixels(stored: np.ndarray) -> np.ndarray:
    """The pictures as the products look (the dataset's negation undone): dark products dark, on white."""
    return 255 - np.asarray(stored, dtype=np.uint8)


def silhouettes(stored: np.ndarray) -> np.ndarray:
    """Boolean ``(n, 28, 28)``: the garment's pixels, holes filled except background seen through the garment."""
    from scipy import ndimage

    stored = _batch(stored)
    outline = stored > SILHOUETTE_THRESHOLD
    filled = np.stack([ndimage.binary_fill_holes(m) for m in outline])
    see_through = filled & ~outline & (stored <= BACKGROUND_SEEN_THROUGH)
    return filled & ~see_through


def measure(stored: np.ndarray) -> PixelMeasures:
    """Every measure of a batch of stored Fashion-MNIST pictures (uint8 ``(n, 28, 28)`` or one ``(28, 28)``)."""
    from scipy import ndimage

    stored = _batch(stored)
    pixels = stored.astype(np.float32)
    body = silhouettes(stored)
    area = np.maximum(body.sum(axis=(1, 2)), 1)
    lightness = ((255.0 - pixels) * body).sum(axis=(1, 2)) / area

    inner = np.stack([ndimage.binary_erosion(m, iterations=EDGE_EROSION) for m in body])
    high_pass = np.abs(pixels - ndimage.uniform_filter(pixels, size=(1, 3, 3), mode="nearest"))
    inner_area = np.maximum(inner.sum(axis=(1, 2)), 1)
    texture = (high_pass * inner).sum(axis=(1, 2)) / inner_area

    down = np.abs(np.diff(pixels, axis=1))[:, :, :] * (inner[:, 1:, :] & inner[:, :-1, :])
    across = np.abs(np.diff(pixels, axis=2)) * (inner[:, :, 1:] & inner[:, :, :-1])
    down_sum, across_sum = down.sum(axis=(1, 2)), across.sum(axis=(1, 2))
    stripes = np.abs(down_sum - across_sum) / np.maximum(down_sum + across_sum, 1e-6)

    chest = np.zeros((28, 28), dtype=bool)
    chest[7:19, 8:20] = True
    chest_var = (high_pass * (inner & chest)).sum(axis=(1, 2)) / np.maximum((inner & chest).sum(axis=(1, 2)), 1)
    rest_var = (high_pass * (inner & ~chest)).sum(axis=(1, 2)) / np.maximum((inner & ~chest).sum(axis=(1, 2)), 1)
    logo = chest_var - rest_var

    aspect, sleeves, handle = _shape_measures(body, stored)
    return PixelMeasures(*(np.asarray(v, dtype=np.float32) for v in
                           (lightness, texture, stripes, logo, aspect, sleeves, handle)))


def _shape_measures(body: np.ndarray, stored: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from scipy import ndimage

    n = len(body)
    aspect = np.ones(n, dtype=np.float32)
    sleeves = np.ones(n, dtype=np.float32)
    handle = np.zeros(n, dtype=np.float32)
    rows_any = body.any(axis=2)
    cols_any = body.any(axis=1)
    widths = body.sum(axis=2).astype(np.float32)  # (n, 28) silhouette width of each row
    for i in range(n):
        rows = np.flatnonzero(rows_any[i])
        cols = np.flatnonzero(cols_any[i])
        if len(rows) == 0:
            continue
        top, bottom = rows[0], rows[-1] + 1
        height, width = bottom - top, cols[-1] + 1 - cols[0]
        aspect[i] = height / width
        span = widths[i, top:bottom]
        upper = span[: max(1, int(0.35 * height))].max()
        lower = np.median(span[int(0.55 * height): max(int(0.55 * height) + 1, int(0.85 * height))])
        sleeves[i] = lower / max(upper, 1.0)
        outline = stored[i] > SILHOUETTE_THRESHOLD
        holes = ndimage.binary_fill_holes(outline) & ~outline
        third = slice(top, top + max(1, height // 3))
        handle[i] = holes[third].sum() / max(ndimage.binary_fill_holes(outline)[third].sum(), 1)
    return aspect, sleeves, handle


def _batch(stored: np.ndarray) -> np.ndarray:
    stored = np.asarray(stored)
    if stored.ndim == 2:
        stored = stored[None]
    if stored.ndim != 3 or stored.dtype != np.uint8:
        from ..errors import InvalidInputError

        raise InvalidInputError(f"pictures must be uint8 (n, 28, 28), got {stored.dtype} {stored.shape}")
    return stored


def within_class_percentiles(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each value's percentile (0..100) among the values of its class (ties share the mean rank)."""
    from scipy.stats import rankdata

    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels)
    out = np.empty(len(values), dtype=np.float32)
    for label in np.unique(labels):
        members = labels == label
        ranks = rankdata(values[members])
        out[members] = 100.0 * (ranks - 0.5) / members.sum()
    return out
