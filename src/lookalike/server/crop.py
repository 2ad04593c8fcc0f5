"""Crop an uploaded photo to the garment before embedding it (``crop=true`` on ``/search/image``).

A shopper's photo shows a garment on a person, a hanger or a bed; the catalog shows the garment alone.  Cutting the
garment out first makes the query look like a catalog item.  Two segmenters sit behind the one option:

* SegFormer (Xie et al. 2021) fine-tuned for clothes, the original app's choice (e.g. ``mattmdjaga/segformer_b2_clothes``),
  used when ``$LOOKALIKE_SEGFORMER_DIR`` names a local Hugging Face checkpoint directory (never downloaded);
* otherwise OpenCV's GrabCut (Rother, Kolmogorov & Blake 2004): a Gaussian-mixture colour model of foreground and
  background, refined by graph cuts, started from a rectangle a few percent inside the border (the garment is assumed
  to be roughly centred and not to touch the edges).

Either way the result is the garment's bounding box with the background painted white (a product shot), or the photo
unchanged when no plausible garment is found (under 2% or over 98% of the pixels).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import numpy as np

log = logging.getLogger("lookalike.server")

SEGFORMER_ENV = "LOOKALIKE_SEGFORMER_DIR"
WORK_SIDE = 320  # GrabCut runs on a copy at most this large: seconds become tens of milliseconds
GRABCUT_ITERATIONS = 4
BORDER = 0.04  # the starting rectangle leaves this fraction of each side as sure background
MIN_FRACTION, MAX_FRACTION = 0.02, 0.98
PAD = 0.03
# SegFormer clothes labels that are not garments (the person and the background)
NOT_GARMENT = ("background", "hair", "face", "leg", "arm", "skin", "sunglasses")

_segformer: dict[str, Any] = {}
_segformer_lock = threading.Lock()


def crop_garment(image) -> tuple[Any, dict[str, Any]]:
    """Returns (image, info): the cropped image and ``{"method", "box": [x0, y0, x1, y1] or None}``."""
    rgb = np.asarray(image.convert("RGB"))
    if min(rgb.shape[:2]) < 16:
        return image, {"method": None, "box": None}
    model_dir = os.environ.get(SEGFORMER_ENV)
    method = "grabcut"
    mask = None
    if model_dir:
        try:
            mask = segformer_mask(rgb, model_dir)
            method = "segformer"
        except Exception as exc:  # noqa: BLE001 - a broken checkpoint falls back to GrabCut, loudly
            log.warning("SegFormer segmenter unusable (%s): using GrabCut", exc)
    if mask is None:
        mask = grabcut_mask(rgb)
    fraction = float(mask.mean())
    if not MIN_FRACTION <= fraction <= MAX_FRACTION:
        return image, {"method": method, "box": None}
    return _cut_out(rgb, mask), {"method": method, "box": _box(mask)}


def grabcut_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean (h, w) mask of the foreground GrabCut finds inside a rectangle just inside the border."""
    import cv2
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    small = rgb if scale == 1.0 else np.asarray(
        Image.fromarray(rgb).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR))
    sh, sw = small.shape[:2]
    mx, my = max(1, round(sw * BORDER)), max(1, round(sh * BORDER))
    rect = (mx, my, sw - 2 * mx, sh - 2 * my)
    labels = np.zeros((sh, sw), np.uint8)
    background_model = np.zeros((1, 65), np.float64)
    foreground_model = np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(small[:, :, ::-1])
    cv2.setRNGSeed(0)  # GrabCut's GMM initialisation is random: same photo, same crop
    cv2.grabCut(bgr, labels, rect, background_model, foreground_model, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_RECT)
    small_mask = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if scale == 1.0:
        return small_mask
    full = Image.fromarray(small_mask.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)
    return np.asarray(full) > 127


def segformer_mask(rgb: np.ndarray, model_dir: str) -> np.ndarray:
    """Boolean (h, w) mask of the pixels a clothes-segmentation SegFormer labels as a garment."""
    import torch

    model, processor = _load_segformer(model_dir)
    inputs = processor(images=rgb, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**inputs).logits  # (1, labels, h/4, w/4)
    upsampled = torch.nn.functional.interpolate(logits, size=rgb.shape[:2], mode="bilinear", align_corners=False)
    labels = upsampled.argmax(dim=1)[0].numpy()
    garment = [int(i) for i, name in model.config.id2label.items()
               if not any(word in str(name).lower() for word in NOT_GARMENT)]
    return np.isin(labels, garment)


def _load_segformer(model_dir: str):
    with _segformer_lock:
        if model_dir not in _segformer:
            from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor

            model = SegformerForSemanticSegmentation.from_pretrained(model_dir, local_files_only=True).eval()
            processor = SegformerImageProcessor.from_pretrained(model_dir, local_files_only=True)
            _segformer[model_dir] = (model, processor)
        return _segformer[model_dir]


def _box(mask: np.ndarray) -> list[int]:
    """Bounding box [x0, y0, x1, y1) of the mask, padded a little, clipped to the image."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    pad_y, pad_x = round(h * PAD), round(w * PAD)
    return [max(0, int(xs.min()) - pad_x), max(0, int(ys.min()) - pad_y),
            min(w, int(xs.max()) + 1 + pad_x), min(h, int(ys.max()) + 1 + pad_y)]


def _cut_out(rgb: np.ndarray, mask: np.ndarray):
    from PIL import Image

    x0, y0, x1, y1 = _box(mask)
    white = np.full_like(rgb, 255)
    product = np.where(mask[:, :, None], rgb, white)
    return Image.fromarray(np.ascontiguousarray(product[y0:y1, x0:x1]))
