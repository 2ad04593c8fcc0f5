"""The Embedder protocol, input checks and registry, on a NumPy-only embedder (no model needed)."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from lookalike.embed import (
    DEFAULT_EMBEDDER,
    Embedder,
    EmbedderSpec,
    UnknownEmbedderError,
    UnreadableImageError,
    UnsupportedModalityError,
    available_embedders,
    get_embedder,
    open_image,
    register_embedder,
)
from lookalike.errors import EmptyBatchError, InvalidInputError, InvalidParameterError

pytestmark = pytest.mark.unit


class HashEmbedder(Embedder):
    """Deterministic pseudo-embeddings from a hash of the input; counts the batches it was given."""

    name = "hash"
    dim = 8
    modalities = frozenset({"text", "image"})

    def __init__(self, batch_size: int = 3) -> None:
        super().__init__(batch_size)
        self.batches: list[int] = []

    def _vector(self, data: bytes) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "little")
        return np.random.default_rng(seed).normal(size=self.dim) * 5

    def _embed_text_batch(self, texts):
        self.batches.append(len(texts))
        return np.stack([self._vector(t.encode()) for t in texts])

    def _embed_image_batch(self, images):
        self.batches.append(len(images))
        return np.stack([self._vector(image.tobytes()) for image in images])


class TextOnly(HashEmbedder):
    name = "text-only"
    modalities = frozenset({"text"})


TEXTS = ["a red dress", "sneakers", "an ankle boot", "a bag", "jeans", "a coat", "a shirt"]


def test_rows_are_float32_unit_vectors_in_order():
    vectors = HashEmbedder().embed_texts(TEXTS)
    assert vectors.shape == (len(TEXTS), 8) and vectors.dtype == np.float32 and vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(vectors[2], HashEmbedder().embed_texts([TEXTS[2]])[0])


@pytest.mark.parametrize("batch_size", [1, 2, 3, 100])
def test_batching_gives_the_unbatched_result(batch_size):
    embedder = HashEmbedder()
    together = embedder.embed_texts(TEXTS, batch_size=100)
    embedder.batches.clear()
    np.testing.assert_array_equal(embedder.embed_texts(TEXTS, batch_size=batch_size), together)
    assert max(embedder.batches) <= batch_size and sum(embedder.batches) == len(TEXTS)


def test_constructor_batch_size_is_the_default():
    embedder = HashEmbedder(batch_size=2)
    embedder.embed_texts(TEXTS)
    assert embedder.batches == [2, 2, 2, 1]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "4"])
def test_bad_batch_size(bad):
    with pytest.raises(InvalidParameterError):
        HashEmbedder().embed_texts(TEXTS, batch_size=bad)
    with pytest.raises(InvalidParameterError):
        HashEmbedder(batch_size=bad)


def test_empty_batches():
    with pytest.raises(EmptyBatchError):
        HashEmbedder().embed_texts([])
    with pytest.raises(EmptyBatchError):
        HashEmbedder().embed_images([])


@pytest.mark.parametrize("texts", [[""], ["ok", "   "], ["ok", None], [3], [b"bytes"]])
def test_empty_or_non_string_texts(texts):
    with pytest.raises(InvalidInputError):
        HashEmbedder().embed_texts(texts)


def test_a_bare_string_is_not_a_batch():
    with pytest.raises(InvalidInputError, match="list"):
        HashEmbedder().embed_texts("a red dress")


def test_images_are_embedded_whatever_their_mode():
    images = [Image.new(mode, (20, 30)) for mode in ("RGB", "L", "RGBA", "P")]
    assert HashEmbedder().embed_images(images).shape == (4, 8)


def test_a_bare_image_is_not_a_batch():
    with pytest.raises(InvalidInputError, match="list"):
        HashEmbedder().embed_images(Image.new("RGB", (4, 4)))


@pytest.mark.parametrize("bad", [np.zeros((28, 28), dtype=np.uint8), "photo.jpg", b"\x89PNG", None])
def test_non_images_are_refused(bad):
    with pytest.raises(UnreadableImageError):
        HashEmbedder().embed_images([bad])


def _png_bytes(size=(16, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_truncated_image_is_unreadable():
    png = _png_bytes((64, 64))
    truncated = Image.open(io.BytesIO(png[: len(png) // 2]))  # the header parses; the pixels do not
    with pytest.raises(UnreadableImageError):
        HashEmbedder().embed_images([truncated])


def test_open_image():
    assert open_image(_png_bytes()).size == (16, 16)
    for garbage in (b"not an image", b"", _png_bytes()[:40]):
        with pytest.raises(UnreadableImageError):
            open_image(garbage)
    with pytest.raises(UnreadableImageError):
        open_image("/nonexistent/photo.jpg")


def test_unsupported_modality_names_the_alternatives():
    with pytest.raises(UnsupportedModalityError, match="minilm-fmnist"):
        TextOnly().embed_images([Image.new("RGB", (4, 4))])
    assert isinstance(UnsupportedModalityError("x"), InvalidInputError)


def test_registry_lists_the_builtin_embedders_without_loading_them():
    registered = available_embedders()
    assert {"minilm", "minilm-fmnist", "clip"} <= set(registered)
    assert DEFAULT_EMBEDDER in registered
    assert registered[DEFAULT_EMBEDDER].modalities == {"text", "image"}
    assert registered["minilm"].modalities == {"text"}


def test_register_and_get_custom_embedder(monkeypatch):
    from lookalike.embed import base

    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))  # the test's registration does not outlive it
    register_embedder("hash-test", EmbedderSpec(f"{__name__}:HashEmbedder", frozenset({"text", "image"}), 8, "test"))
    embedder = get_embedder("hash-test", batch_size=5)
    assert isinstance(embedder, HashEmbedder) and embedder.batch_size == 5
    with pytest.raises(UnknownEmbedderError, match="no ':' argument"):
        get_embedder("hash-test:something")
    with pytest.raises(InvalidParameterError, match="allow_download"):
        get_embedder("hash-test", allow_download=True)


@pytest.mark.parametrize("name", ["nope", "", 3, None])
def test_unknown_embedder(name):
    with pytest.raises(UnknownEmbedderError):
        get_embedder(name)


@pytest.mark.parametrize("name", ["", "a:b", None])
def test_bad_registration_names(name):
    with pytest.raises(InvalidParameterError):
        register_embedder(name, EmbedderSpec("x:y", frozenset({"text"}), 1, ""))


def test_describe():
    assert HashEmbedder().describe() == {"name": "hash", "dim": 8, "modalities": ["image", "text"]}


def test_importing_the_package_loads_no_model_library():
    import subprocess
    import sys

    code = ("import sys, lookalike.embed; lookalike.embed.available_embedders(); "
            "print([m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
