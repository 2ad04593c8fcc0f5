"""Where a catalog item's picture comes from, given the metadata stored at ingest.

Fashion-MNIST pictures are shown as the products look: the data set stores them negated (Xiao et al. 2017,
section 2, step 6: a dark product on a white background became a light shape on black), so the negation is undone
here, and a black dress shows black on white.  The embedder reads the stored pixels, not these.

``metadata["image"]`` is either ``"fashion-mnist:<split>:<index>"`` (the pixels live in the Debian package's IDX
files, nothing is copied) or an absolute path recorded when the catalog was ingested.  Only references written by
ingest are followed: a user never passes a path, so no route can be turned into a path traversal.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import IdNotFoundError

FASHION_MNIST_PREFIX = "fashion-mnist:"


def open_item_image(metadata: dict[str, Any] | None):
    """The item's picture as a PIL image (mode L or RGB), or IdNotFoundError when it has none / it is gone."""
    from PIL import Image

    ref = (metadata or {}).get("image")
    if not isinstance(ref, str) or not ref:
        raise IdNotFoundError("this item has no image")
    if ref.startswith(FASHION_MNIST_PREFIX):
        parts = ref.split(":")
        if len(parts) != 3 or parts[1] not in ("train", "test") or not parts[2].isdigit():
            raise IdNotFoundError(f"malformed image reference {ref!r}")
        split, i = parts[1], int(parts[2])
        images = _fashion_mnist_images(split)
        if not 0 <= i < len(images):
            raise IdNotFoundError(f"fashion-mnist {split} has no image {i}")
        return Image.fromarray(255 - images[i], mode="L")  # the product as photographed: dark on white
    from ..embed.base import UnreadableImageError, open_image

    path = Path(ref)
    if not path.is_file():
        raise IdNotFoundError(f"the image file of this item is gone: {path.name}")
    try:
        return open_image(path)
    except UnreadableImageError as exc:
        raise IdNotFoundError(f"the image of this item cannot be read: {exc}") from None


def thumbnail(image, size: int = 112):
    """A square-ish RGB thumbnail; tiny images (28x28) are upscaled with nearest-neighbour so pixels stay crisp."""
    from PIL import Image

    image = image.convert("RGB")
    scale = size / max(image.width, image.height)
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resample = Image.NEAREST if scale > 1 else Image.LANCZOS
    return image.resize(new, resample)


_LOADING = threading.Lock()


def _fashion_mnist_images(split: str):
    """A split's pictures, loaded once: the page asks for a dozen at once, and they must not each decompress the
    data set (measured on a fresh server: 2.3 s for the first page's twelve pictures, 3 ms each once loaded)."""
    with _LOADING:
        return _load_fashion_mnist_split(split)


@lru_cache(maxsize=2)
def _load_fashion_mnist_split(split: str):
    from .fashion_mnist import load_fashion_mnist

    return load_fashion_mnist(split)[0]


def warm_item_images(metadatas: list[dict[str, Any] | None]) -> bool:
    """Load now what the item-image route will read for items like these (a catalog's sample): the server does
    it before it says it is ready, so the first page's pictures come as fast as later ones.  Whether there was
    anything to load."""
    refs = [m.get("image") for m in metadatas if isinstance(m, dict) and isinstance(m.get("image"), str)]
    if not any(ref.startswith(FASHION_MNIST_PREFIX) for ref in refs):
        return False
    for split in ("train", "test"):  # a catalog of the data set holds both
        _fashion_mnist_images(split)
    return True
