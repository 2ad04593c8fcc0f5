"""Embedders: texts and images -> ``(n, dim)`` float32 unit vectors in one space.

    >>> from lookalike.embed import get_embedder
    >>> embedder = get_embedder("minilm-fmnist")            # the offline default (384-d)
    >>> embedder.embed_texts(["a red dress"]).shape
    (1, 384)

Registered names: ``"minilm-fmnist"`` (default: MiniLM texts + a Fashion-MNIST CNN), ``"minilm"`` (texts only),
``"clip"`` / ``"clip:<checkpoint>"`` (any Hugging Face CLIP; FashionCLIP by default).  Importing this package does
not import torch; an embedder loads its model when it is built.
"""

from .base import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EMBEDDER,
    Embedder,
    EmbedderSpec,
    EmbedderUnavailableError,
    UnknownEmbedderError,
    UnreadableImageError,
    UnsupportedModalityError,
    available_embedders,
    get_embedder,
    l2_normalise,
    open_image,
    register_embedder,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_EMBEDDER",
    "Embedder",
    "EmbedderSpec",
    "EmbedderUnavailableError",
    "UnknownEmbedderError",
    "UnreadableImageError",
    "UnsupportedModalityError",
    "available_embedders",
    "get_embedder",
    "l2_normalise",
    "open_image",
    "register_embedder",
]
