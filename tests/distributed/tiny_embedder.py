"""A small deterministic image embedder for the ingest tests: the colours of a 4x4 thumbnail (48 dims)."""

from __future__ import annotations

import numpy as np

from lookalike.embed.base import IMAGE, Embedder


class ThumbnailEmbedder(Embedder):
    name = "test-thumbnail"
    dim = 48
    modalities = frozenset({IMAGE})

    def _embed_image_batch(self, images: list) -> np.ndarray:
        return np.stack([np.asarray(im.convert("RGB").resize((4, 4)), dtype=np.float32).ravel() + 1.0
                         for im in images])
