"""The offline default embedder, ``"minilm-fmnist"``: texts through all-MiniLM-L6-v2, images through the small CNN
trained (text tower locked) to land in MiniLM's 384-d space.  A text query and a catalog of Fashion-MNIST-like
images therefore meet in one space, with no weights fetched from anywhere.

Images of any size or colour are first turned into Fashion-MNIST's format (28x28 grayscale, light garment on
black, trimmed and centred: see :mod:`lookalike.embed.pixels`).  The tower knows ten garment classes and 28x28
shapes; it is a demonstration model, not FashionCLIP (use ``get_embedder("clip")`` when those weights are at hand).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from ..errors import EmptyBatchError, InvalidInputError
from .base import (
    DEFAULT_BATCH_SIZE, DESCRIBED_SPACE, DESCRIBED_TEXT_ROUTE, IMAGE, IMAGE_SPACE, SHOPPER_TEXT_ROUTE, TEXT, Embedder,
    check_batch_size,
)
from .image_tower import DEFAULT_WEIGHTS, FIRST_WEIGHTS, ImageTower
from .minilm import MINILM_DIM, MiniLMEmbedder
from .pixels import SIDE, images_to_pixels


class MiniLMFashionEmbedder(Embedder):
    """MiniLM texts + Fashion-MNIST image tower, both 384-d unit vectors in one space."""

    name = IMAGE_SPACE
    dim = MINILM_DIM
    modalities = frozenset({TEXT, IMAGE})
    default_weights = FIRST_WEIGHTS  # the first tower, trained on class captions

    def __init__(self, weights_path: str | os.PathLike | None = None, model_path: str | os.PathLike | None = None,
                 device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE,
                 text_embedder: MiniLMEmbedder | None = None) -> None:
        super().__init__(batch_size)
        # an already loaded MiniLM may be shared (a server holding both "minilm" and "minilm-fmnist")
        self.text = text_embedder or MiniLMEmbedder(model_path=model_path, device=device, batch_size=batch_size)
        self.tower = ImageTower(weights_path or self.default_weights, device=device)
        if self.tower.dim != self.dim:
            raise InvalidInputError(f"image tower {self.tower.weights_path} outputs {self.tower.dim} dims, "
                                    f"MiniLM {self.dim}: it was trained against another text model")

    def embed_pixels(self, pixels: Any, batch_size: int | None = None) -> np.ndarray:
        """Embed Fashion-MNIST-format images directly: uint8 ``(n, 28, 28)``, light on black (the catalog loader's
        output), skipping PIL.  Rows are unit vectors, identical to ``embed_images`` of the same pictures."""
        pixels = np.asarray(pixels)
        if pixels.ndim == 2:
            pixels = pixels[None]
        if pixels.ndim != 3 or pixels.shape[1:] != (SIDE, SIDE) or pixels.dtype != np.uint8:
            raise InvalidInputError(f"pixels must be uint8 (n, 28, 28), got {pixels.dtype} {pixels.shape}")
        if len(pixels) == 0:
            raise EmptyBatchError("no images to embed: pass at least one")
        size = self.batch_size if batch_size is None else check_batch_size(batch_size)
        return self.tower.embed_pixels(pixels, batch_size=size)

    def describe(self) -> dict[str, Any]:
        """Adds a fingerprint of the tower's weights: a retrained tower maps images elsewhere."""
        digest = hashlib.sha256(self.tower.weights_path.read_bytes()).hexdigest()[:16]
        return {**super().describe(), "image_weights_sha256": digest}

    def _embed_text_batch(self, texts: list[str]) -> np.ndarray:
        return self.text._embed_text_batch(texts)

    def _embed_image_batch(self, images: list) -> np.ndarray:
        return self.tower.embed_pixels(images_to_pixels(images), batch_size=len(images))


class MiniLMFashionUSEEmbedder(MiniLMFashionEmbedder):
    """``"minilm-fmnist+use-m"``: the images of ``"minilm-fmnist"`` (same tower, same vectors: a collection made by
    either is searched by both) and the shopper's text route, which understands garment words through WordNet and
    French, Spanish, German, Italian (and the other languages of the multilingual USE) through USE; see
    :mod:`lookalike.embed.multilingual`."""

    name = SHOPPER_TEXT_ROUTE

    def __init__(self, weights_path: str | os.PathLike | None = None, model_path: str | os.PathLike | None = None,
                 device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE,
                 text_embedder: MiniLMEmbedder | None = None, cache_dir: str | os.PathLike | None = None) -> None:
        super().__init__(weights_path, model_path, device, batch_size, text_embedder)
        self.route = self._make_route(cache_dir)

    def _make_route(self, cache_dir):
        from .multilingual import ShopperTextRoute

        return ShopperTextRoute(self.text, cache_dir=cache_dir)

    def explain(self, text: str) -> dict:
        """How the route reads ``text``: language, garment words, the class it pulls to and why."""
        from .multilingual import check_query_text

        decision = self.route.decide([check_query_text(text)])[0]
        if not decision.settled:  # some choices are made while embedding: make them
            self.route.embed([text])
        return decision.as_dict()

    def _embed_text_batch(self, texts: list[str]) -> np.ndarray:
        return self.route.embed(texts)


class DescribedFashionEmbedder(MiniLMFashionEmbedder):
    """``"minilm-fmnist-described"``: the described image tower, trained on captions that say what each picture
    shows (lightness, pattern, shape; :mod:`lookalike.embed.descriptions`) and on pictures turned into product
    photos.  A new vector space: collections made by ``"minilm-fmnist"`` keep their own embedder.  Texts go
    through plain MiniLM (English)."""

    name = DESCRIBED_SPACE
    default_weights = DEFAULT_WEIGHTS


class DescribedShopperEmbedder(MiniLMFashionUSEEmbedder):
    """``"minilm-fmnist-described+use-m"``, the offline default: the described tower's images and the shopper's
    text route, which reads the garment (WordNet, multilingual USE) and its description (colour names by their
    grey, pattern and shape words) and pulls the query toward the part of the class the description names."""

    name = DESCRIBED_TEXT_ROUTE
    default_weights = DEFAULT_WEIGHTS

    def _make_route(self, cache_dir):
        from .described_route import DescribedCentroids
        from .image_tower import centroids_path
        from .multilingual import ShopperTextRoute

        centres = DescribedCentroids.load(centroids_path(self.tower.weights_path))
        return ShopperTextRoute(self.text, cache_dir=cache_dir, described=centres)
