"""Any photo -> the Fashion-MNIST format (28x28, grayscale, light garment on black, trimmed and centred)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lookalike.embed.pixels import images_to_pixels, to_fashion_mnist_pixels

pytestmark = pytest.mark.unit


def product_photo(size=(300, 200), background=(255, 255, 255), garment=(180, 20, 20), mode="RGB") -> Image.Image:
    """A dark-on-white 'product shot': a filled rectangle off-centre on a light background."""
    image = Image.new(mode, size, background)
    ImageDraw.Draw(image).rectangle([40, 30, 140, 170], fill=garment)
    return image


def test_fashion_mnist_images_pass_through_untouched(fmnist_sample):
    images, _ = fmnist_sample
    for pixels in images[:20]:
        np.testing.assert_array_equal(to_fashion_mnist_pixels(Image.fromarray(pixels)), pixels)


def test_a_light_background_is_inverted_and_the_garment_centred():
    pixels = to_fashion_mnist_pixels(product_photo())
    assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
    assert pixels[14, 14] > 100  # the (dark) garment became light
    assert pixels[:, :2].max() == 0 and pixels[:, -2:].max() == 0  # the narrow garment is centred, padded left/right
    rows = np.flatnonzero(pixels.max(axis=1))
    assert rows[0] == 0 and rows[-1] == 27  # trimmed: its longest edge fills the 28 pixels


def test_a_dark_background_is_not_inverted():
    pixels = to_fashion_mnist_pixels(product_photo(background=(0, 0, 0), garment=(200, 200, 200)))
    assert pixels[14, 14] > 100 and pixels[:, 0].max() == 0


def test_transparency_is_flattened_onto_white():
    image = product_photo(background=(0, 0, 0, 0), garment=(30, 30, 30, 255), mode="RGBA")
    pixels = to_fashion_mnist_pixels(image)
    assert pixels[14, 14] > 100 and pixels[:, 0].max() == 0


def test_a_blank_image_gives_a_black_square():
    assert to_fashion_mnist_pixels(Image.new("RGB", (50, 80), "white")).max() == 0
    assert to_fashion_mnist_pixels(Image.new("L", (1, 1))).shape == (28, 28)


def test_batch():
    assert images_to_pixels([product_photo(), Image.new("L", (28, 28))]).shape == (2, 28, 28)
