"""Pictures in and out of the server: decoding an uploaded photo safely, and item images as PNG thumbnails."""

from __future__ import annotations

import hashlib
import io
import warnings

from .errors import PayloadTooLargeError

THUMBNAIL_SIDE = 224  # a 28x28 Fashion-MNIST item is upscaled to this (nearest neighbour keeps it crisp)
MIN_SIDE, MAX_SIDE = 16, 1024


def decode_upload(data: bytes, max_pixels: int):
    """Uploaded bytes -> a decoded PIL image, or a typed error: empty / not an image / truncated -> 400,
    too many pixels (a decompression bomb) -> 413.  The size is checked from the header, before decoding."""
    from PIL import Image

    from ..embed.base import UnreadableImageError, open_image

    if not data:
        raise UnreadableImageError("the uploaded file is empty (0 bytes): send a JPEG, PNG or WebP photo")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as header:
                width, height = header.size
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise PayloadTooLargeError("the uploaded image has too many pixels (decompression bomb?)") from None
        except Exception as exc:  # noqa: BLE001 - PIL raises many kinds on garbage; all mean "not an image"
            raise UnreadableImageError(f"the uploaded file is not an image PIL can read: {exc}") from None
        if width * height > max_pixels:
            raise PayloadTooLargeError(
                f"the uploaded image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}: "
                "send a smaller photo"
            )
        try:
            return open_image(data)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise PayloadTooLargeError("the uploaded image has too many pixels (decompression bomb?)") from None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def item_png(image, size: int | None) -> bytes:
    """An item's picture as PNG bytes, fitted in ``size`` x ``size`` (default: tiny images upscaled to 224)."""
    from ..catalog.images import thumbnail

    longest = max(image.width, image.height)
    side = size if size is not None else (THUMBNAIL_SIDE if longest < THUMBNAIL_SIDE else None)
    if side is not None and side != longest:
        image = thumbnail(image, side)
    elif image.mode not in ("RGB", "L", "RGBA"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()
