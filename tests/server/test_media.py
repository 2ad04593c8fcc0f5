"""Units behind the photo routes: safe decoding of uploads, garment cropping, item thumbnails."""

from __future__ import annotations

import io

import numpy as np
import pytest

from lookalike.errors import InvalidInputError
from lookalike.server.crop import SEGFORMER_ENV, crop_garment
from lookalike.server.errors import PayloadTooLargeError
from lookalike.server.media import decode_upload, item_png


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_decode_upload_accepts_common_formats():
    from PIL import Image

    for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP"):
        buffer = io.BytesIO()
        Image.new("RGB", (40, 30), (10, 200, 30)).save(buffer, format=fmt)
        assert decode_upload(buffer.getvalue(), max_pixels=10_000).size == (40, 30)


@pytest.mark.parametrize("data", [b"", b"GIF89a", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "é".encode() * 100])
def test_decode_upload_refuses_garbage(data):
    with pytest.raises(InvalidInputError):
        decode_upload(data, max_pixels=10_000)


def test_decode_upload_checks_pixels_before_decoding():
    from PIL import Image

    with pytest.raises(PayloadTooLargeError):
        decode_upload(_png(Image.new("L", (200, 200))), max_pixels=39_999)


def _garment_photo(side=300):
    """A red garment in the middle of a light grey, slightly noisy background."""
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal(225, 6, (side, side, 3)), 0, 255).astype(np.uint8)
    pixels[90:240, 110:200] = (180, 30, 40)
    return Image.fromarray(pixels)


def test_grabcut_crops_to_the_garment(monkeypatch):
    monkeypatch.delenv(SEGFORMER_ENV, raising=False)
    cropped, info = crop_garment(_garment_photo())
    assert info["method"] == "grabcut"
    x0, y0, x1, y1 = info["box"]
    assert abs(x0 - 110) <= 15 and abs(x1 - 200) <= 15 and abs(y0 - 90) <= 15 and abs(y1 - 240) <= 15
    assert cropped.size == (x1 - x0, y1 - y0)
    corner = np.asarray(cropped)[0, 0]
    assert (corner == 255).all()  # the background is painted white, like a product shot


def test_crop_leaves_a_featureless_photo_alone(monkeypatch):
    from PIL import Image

    monkeypatch.delenv(SEGFORMER_ENV, raising=False)
    flat = Image.new("RGB", (100, 100), (128, 128, 128))
    image, info = crop_garment(flat)
    assert info["box"] is None and image is flat
    tiny = Image.new("RGB", (8, 8))
    assert crop_garment(tiny) == (tiny, {"method": None, "box": None})


@pytest.mark.slow
def test_segformer_checkpoint_is_used_when_configured(tmp_path, monkeypatch):
    """A tiny random SegFormer saved in the Hugging Face layout goes through the same loading path as a real one."""
    transformers = pytest.importorskip("transformers")
    config = transformers.SegformerConfig(
        num_channels=3, num_encoder_blocks=1, depths=[1], sr_ratios=[1], hidden_sizes=[8], patch_sizes=[7],
        strides=[4], num_attention_heads=[1], mlp_ratios=[1], decoder_hidden_size=8, num_labels=3,
        id2label={0: "Background", 1: "Upper-clothes", 2: "Face"}, label2id={"Background": 0, "Upper-clothes": 1,
                                                                         "Face": 2})
    transformers.SegformerForSemanticSegmentation(config).save_pretrained(tmp_path)
    transformers.SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(tmp_path)
    monkeypatch.setenv(SEGFORMER_ENV, str(tmp_path))
    _, info = crop_garment(_garment_photo())
    assert info["method"] == "segformer"


def test_a_broken_segformer_dir_falls_back_to_grabcut(tmp_path, monkeypatch):
    monkeypatch.setenv(SEGFORMER_ENV, str(tmp_path / "missing"))
    assert crop_garment(_garment_photo())[1]["method"] == "grabcut"


def test_item_png_upscales_small_images():
    from PIL import Image

    tiny = Image.fromarray(np.arange(28 * 28, dtype=np.uint8).reshape(28, 28) % 255)
    assert Image.open(io.BytesIO(item_png(tiny, None))).size == (224, 224)
    assert Image.open(io.BytesIO(item_png(tiny, 56))).size == (56, 56)
    big = Image.new("RGB", (600, 400))
    assert Image.open(io.BytesIO(item_png(big, None))).size == (600, 400)
    assert Image.open(io.BytesIO(item_png(big, 300))).size == (300, 200)
