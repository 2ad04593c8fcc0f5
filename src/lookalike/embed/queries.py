"""Text and photo queries of a collection, embedded the same way wherever they come from.

A collection records the embedder that made its vectors.  Its text and photo queries go through that embedder's
space's preferred text route (a ``"minilm-fmnist"`` collection is searched through ``"minilm-fmnist+use-m"``),
loaded once per process and shared: the HTTP server, ``Collection.search`` and the CLI all call
:func:`embed_query`, so the same request gives the same vector, hence the same hits, in each.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EmbedderMismatchError, EmbedderUnavailableError, InvalidInputError, NoEmbedderError

log = logging.getLogger("lookalike.embed")

_EMBEDDERS: dict[str, Any] = {}
_EMBEDDERS_LOCK = threading.Lock()
EMBEDDER_LOCKS: dict[str, threading.Lock] = {}  # one query at a time per embedder: tokenizers are not re-entrant
_UNAVAILABLE_ROUTES: set[str] = set()


def shared_embedder(name: str):
    """The embedder registered as ``name``, built on first use and then cached for the life of the process."""
    with _EMBEDDERS_LOCK:
        if name not in _EMBEDDERS:
            from .base import get_embedder

            log.info("loading embedder %s", name)
            _EMBEDDERS[name] = get_embedder(name)
            EMBEDDER_LOCKS[name] = threading.Lock()
        return _EMBEDDERS[name]


def query_embedder(collection_embedder: str):
    """The embedder for queries of a collection made by ``collection_embedder``: its space's preferred text route,
    or the embedder itself when that route cannot load here (its optional packages or WordNet missing: logged
    once, not retried)."""
    from .base import query_route

    route = query_route(collection_embedder)
    if route != collection_embedder and route not in _UNAVAILABLE_ROUTES:
        try:
            return shared_embedder(route)
        except EmbedderUnavailableError as exc:
            _UNAVAILABLE_ROUTES.add(route)
            log.warning("text route %s unavailable (%s): queries use %s", route, exc, collection_embedder)
    return shared_embedder(collection_embedder)


def embed_query(collection, *, texts: list[str] | None = None, images: list | None = None) -> np.ndarray:
    """Embed text or photo queries of ``collection`` (anything with ``name``, ``embedder``, ``dim``) with its
    embedder's query route; a collection without an embedder, or one of another dimension, is a typed error."""
    if not collection.embedder:
        raise NoEmbedderError(
            f"collection {collection.name!r} records no embedder, so it cannot be searched by text or photo: "
            "query it with vectors instead"
        )
    embedder = query_embedder(collection.embedder)
    if embedder.dim != collection.dim:
        raise EmbedderMismatchError(f"embedder {collection.embedder!r} makes {embedder.dim}-d vectors but "
                                    f"collection {collection.name!r} holds {collection.dim}-d")
    with EMBEDDER_LOCKS[embedder.name]:
        if texts is not None:
            return embedder.embed_texts(texts)
        return embedder.embed_images(images)


def search_query(text: Any = None, image: Any = None) -> tuple[str, Any]:
    """Check a search's one text or one image: returns ``("text", str)`` or ``("image", PIL image)``; an image
    may be a PIL image, a file path or the file's bytes."""
    if (text is None) == (image is None):
        raise InvalidInputError("search takes exactly one of text= or image= (use query() for vectors)")
    if text is not None:
        if not isinstance(text, str):
            raise InvalidInputError(f"text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InvalidInputError("text is empty or blank: type what you are looking for")
        return "text", text
    from PIL import Image

    from .base import open_image

    if isinstance(image, Image.Image):
        return "image", image
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            from ..errors import UnreadableImageError

            raise UnreadableImageError(f"no image file at {path}")
        return "image", open_image(path)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return "image", open_image(image)
    raise InvalidInputError(f"image must be a PIL image, a file path or bytes, got {type(image).__name__}")
