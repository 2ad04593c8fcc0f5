"""CLIPEmbedder through the real Hugging Face loading path, on a tiny randomly initialised CLIP saved in the test."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.embed import EmbedderUnavailableError, get_embedder
from lookalike.errors import EmptyBatchError, InvalidInputError

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def tiny_clip(tiny_clip_dir):
    return get_embedder(f"clip:{tiny_clip_dir}", batch_size=4)


def photos(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(3)
    sizes = [(40, 30), (28, 28), (64, 96), (33, 33), (50, 20)]
    return [Image.fromarray(rng.integers(0, 256, (*sizes[i % 5][::-1], 3), dtype=np.uint8)) for i in range(n)]


def test_loads_through_the_registry_with_its_projection_dim(tiny_clip, tiny_clip_dir):
    from lookalike.embed.clip import CLIPEmbedder

    assert isinstance(tiny_clip, CLIPEmbedder)
    assert tiny_clip.dim == 24 and tiny_clip.name == f"clip:{tiny_clip_dir}"
    assert get_embedder(tiny_clip.name).dim == tiny_clip.dim  # the name rebuilds the embedder


def test_texts(tiny_clip):
    vectors = tiny_clip.embed_texts(["a red dress", "sneakers", "a bag", "jeans", "an ankle boot", "a coat"])
    assert vectors.shape == (6, 24) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])


def test_images_of_any_size_and_mode(tiny_clip):
    images = photos(5) + [Image.new("L", (20, 20), 128), Image.new("RGBA", (30, 40))]
    vectors = tiny_clip.embed_images(images)
    assert vectors.shape == (7, 24) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_batched_equals_unbatched(tiny_clip):
    texts = ["a red dress", "sneakers for running on a track", "bag"]
    np.testing.assert_allclose(tiny_clip.embed_texts(texts, batch_size=1), tiny_clip.embed_texts(texts), atol=1e-5)
    images = photos(5)
    np.testing.assert_allclose(tiny_clip.embed_images(images, batch_size=2), tiny_clip.embed_images(images),
                               atol=1e-5)


def test_texts_longer_than_the_context_are_truncated(tiny_clip):
    assert tiny_clip.embed_texts(["dress " * 500]).shape == (1, 24)


def test_bad_input(tiny_clip):
    with pytest.raises(EmptyBatchError):
        tiny_clip.embed_images([])
    with pytest.raises(InvalidInputError):
        tiny_clip.embed_texts([""])


def test_absent_checkpoint_is_not_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache: the checkpoint is nowhere locally
    with pytest.raises(EmbedderUnavailableError, match="huggingface-cli download"):
        get_embedder("clip:nobody/no-such-clip")
    with pytest.raises(EmbedderUnavailableError):
        get_embedder("clip", model_name_or_path=tmp_path / "empty-dir")
