"""CLIP (Radford et al. 2021): a text transformer and a vision transformer trained contrastively on image-caption
pairs so that both land in one space.  Any Hugging Face CLIP checkpoint loads here through transformers'
``CLIPModel`` + ``CLIPProcessor``; the documented default is FashionCLIP (Chia et al. 2022,
``patrickjohncyh/fashion-clip``: OpenAI's ViT-B/32 CLIP fine-tuned on 700k Farfetch products, 512-d).

Weights are read from a local directory or from the user's Hugging Face cache only (``local_files_only``), unless
``allow_download=True``.  To use FashionCLIP on a machine with internet access, once:

    huggingface-cli download patrickjohncyh/fashion-clip      # or CLIPEmbedder(..., allow_download=True)

then ``get_embedder("clip")`` or ``get_embedder("clip:/path/to/any/clip/checkpoint")``.

Texts longer than the text model's context (77 tokens for OpenAI CLIP) are truncated.  Images are converted to
RGB and resized / centre-cropped by the checkpoint's own image processor.
"""

from __future__ import annotations

import os

import numpy as np

from ._hf import as_tensor_output, quiet_loading, torch_device
from .base import DEFAULT_BATCH_SIZE, IMAGE, TEXT, Embedder, EmbedderUnavailableError

FASHION_CLIP = "patrickjohncyh/fashion-clip"


class CLIPEmbedder(Embedder):
    """Texts and images -> ``projection_dim``-d unit vectors (512 for FashionCLIP) with a CLIP checkpoint."""

    modalities = frozenset({TEXT, IMAGE})

    def __init__(self, model_name_or_path: str | os.PathLike = FASHION_CLIP, allow_download: bool = False,
                 device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(batch_size)
        import torch  # noqa: F401  (the registry turns a missing torch into EmbedderUnavailableError)
        from transformers import CLIPModel, CLIPProcessor

        self.model_name_or_path = str(model_name_or_path)
        self.name = f"clip:{self.model_name_or_path}"
        self.device = torch_device(device)
        try:
            with quiet_loading():
                self.model = CLIPModel.from_pretrained(self.model_name_or_path, local_files_only=not allow_download)
                self.processor = CLIPProcessor.from_pretrained(self.model_name_or_path,
                                                               local_files_only=not allow_download)
        except (OSError, ValueError) as exc:
            hint = ("" if allow_download else
                    f": download it once with `huggingface-cli download {self.model_name_or_path}` "
                    "or pass allow_download=True")
            raise EmbedderUnavailableError(
                f"cannot load CLIP checkpoint {self.model_name_or_path!r} from local files{hint} ({exc})"
            ) from None
        self.model.eval().to(self.device)
        self.dim = int(self.model.config.projection_dim)
        self.max_tokens = int(self.model.config.text_config.max_position_embeddings)

    def _embed_text_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        tokens = self.processor(text=texts, padding=True, truncation=True, max_length=self.max_tokens,
                                return_tensors="pt").to(self.device)
        with torch.inference_mode():
            features = self.model.get_text_features(input_ids=tokens["input_ids"],
                                                    attention_mask=tokens["attention_mask"])
        return as_tensor_output(features).float().cpu().numpy()

    def _embed_image_batch(self, images: list) -> np.ndarray:
        import torch

        pixels = self.processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        with torch.inference_mode():
            features = self.model.get_image_features(pixel_values=pixels["pixel_values"].to(self.device))
        return as_tensor_output(features).float().cpu().numpy()
