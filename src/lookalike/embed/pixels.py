"""Any photo -> the 28x28 grayscale picture the Fashion-MNIST image tower was trained on.

Fashion-MNIST images were made from Zalando product photos by this pipeline (Xiao et al. 2017, section 2): trim
the background, resize the longest edge to 28, sharpen, pad the shorter edge to 28 with the garment centred,
negate (light garment on black), convert to 8-bit grayscale.  A user's photo goes through the same steps here:

1. flatten transparency onto white (a cut-out product PNG has a transparent background);
2. convert to grayscale;
3. invert when the background is light: the median of the border pixels is above mid-grey (product photos are dark
   on white, Fashion-MNIST is light on black);
4. trim to the bounding box of the pixels brighter than ``TRIM_THRESHOLD`` (5% of full scale, as in the paper);
5. resize the longest edge to 28 (Lanczos, antialiased) and centre on a black 28x28 canvas.

Sharpening is skipped: at 28 px it mostly adds ringing to photos that are not studio shots.  An image that is
already 28x28 grayscale on a dark background (a Fashion-MNIST image) is passed through untouched.
"""

from __future__ import annotations

import numpy as np

SIDE = 28
TRIM_THRESHOLD = 13  # 5% of 255
_LIGHT_BACKGROUND = 128


def to_fashion_mnist_pixels(image) -> np.ndarray:
    """One PIL image -> uint8 ``(28, 28)``, light garment on a black background."""
    from PIL import Image, ImageOps

    image = _flatten_transparency(image).convert("L")
    pixels = np.asarray(image)
    light_background = float(np.median(_border(pixels))) >= _LIGHT_BACKGROUND
    if image.size == (SIDE, SIDE) and not light_background:
        return pixels.copy()
    if light_background:
        image = ImageOps.invert(image)
    box = image.point(lambda v: 255 if v > TRIM_THRESHOLD else 0).getbbox()
    if box is not None:  # an all-black picture has nothing to trim to
        image = image.crop(box)
    scale = SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.LANCZOS)
    canvas = Image.new("L", (SIDE, SIDE), 0)
    canvas.paste(image, ((SIDE - size[0]) // 2, (SIDE - size[1]) // 2))
    return np.asarray(canvas).copy()


def images_to_pixels(images: list) -> np.ndarray:
    """A list of PIL images -> uint8 ``(n, 28, 28)``."""
    return np.stack([to_fashion_mnist_pixels(image) for image in images])


def _flatten_transparency(image):
    from PIL import Image

    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return image
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _border(pixels: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels, where a product photo's background is."""
    return np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
