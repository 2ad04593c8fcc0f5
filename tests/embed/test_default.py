"""The offline default "minilm-fmnist": the committed image tower weights, with MiniLM as the text tower."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from lookalike.embed import EmbedderUnavailableError, UnreadableImageError
from lookalike.embed.base import IMAGE_SPACE
from lookalike.embed.captions import class_name_queries, held_out_queries
from lookalike.embed.image_tower import DEFAULT_WEIGHTS, ImageTower, read_metadata
from lookalike.errors import EmptyBatchError, InvalidInputError, StorageFormatError

pytestmark = pytest.mark.contract

CHANCE = 0.1  # ten balanced classes


def test_identity(default_embedder):
    assert default_embedder.name == IMAGE_SPACE and default_embedder.dim == 384
    described = default_embedder.describe()
    assert described["modalities"] == ["image", "text"] and len(described["image_weights_sha256"]) == 16


def test_committed_weights_are_small_safetensors():
    assert DEFAULT_WEIGHTS.stat().st_size < 3_000_000
    metadata = read_metadata(DEFAULT_WEIGHTS)
    assert metadata["text_model"].endswith("all-MiniLM-L6-v2") and metadata["dim"] == "384"
    raw = DEFAULT_WEIGHTS.read_bytes()  # safetensors: u64 header length, a JSON header, raw tensors (no pickle)
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} <= {"F32", "I64"}


def test_images_shape_dtype_unit_norm(default_embedder, fmnist_sample):
    images = [Image.fromarray(p) for p in fmnist_sample[0][:10]]
    vectors = default_embedder.embed_images(images)
    assert vectors.shape == (10, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_batched_equals_unbatched_and_pixels_equal_images(default_embedder, fmnist_sample):
    pixels = fmnist_sample[0][:12]
    images = [Image.fromarray(p) for p in pixels]
    one_batch = default_embedder.embed_images(images, batch_size=12)
    np.testing.assert_allclose(default_embedder.embed_images(images, batch_size=5), one_batch, atol=1e-5)
    np.testing.assert_allclose(default_embedder.embed_pixels(pixels, batch_size=4), one_batch, atol=1e-5)


def test_zero_shot_classification_beats_chance(default_embedder, fmnist_sample):
    pixels, labels = fmnist_sample
    prompts = default_embedder.embed_texts(class_name_queries())
    predicted = np.argmax(default_embedder.embed_pixels(pixels) @ prompts.T, axis=1)
    accuracy = np.mean(predicted == labels)
    assert accuracy > 5 * CHANCE, f"zero-shot accuracy {accuracy:.2f}"


def test_held_out_paraphrases_land_nearer_their_class(default_embedder, fmnist_sample):
    """Each paraphrase (never seen in training) is more similar to the images of its class than to the others'."""
    pixels, labels = fmnist_sample
    image_vectors = default_embedder.embed_pixels(pixels)
    queries, query_labels = held_out_queries()
    similarity = default_embedder.embed_texts(queries) @ image_vectors.T  # (queries, images)
    per_class = np.stack([similarity[:, labels == c].mean(axis=1) for c in range(10)], axis=1)
    own = per_class[np.arange(len(queries)), query_labels]
    others = (per_class.sum(axis=1) - own) / 9
    assert np.mean(own > others) > 0.75
    rank_of_own = (per_class > own[:, None]).sum(axis=1)  # 0 = its class is the nearest
    assert np.mean(rank_of_own < 3) > 2 * 0.3  # its class in the top 3 of 10: 30% by chance


def test_a_users_product_photo_is_embedded(default_embedder):
    photo = Image.new("RGB", (400, 600), "white")
    photo.paste((30, 30, 120), (100, 50, 300, 550))  # a tall dark rectangle: trousers-like on white
    vector = default_embedder.embed_images([photo])
    assert vector.shape == (1, 384) and np.isfinite(vector).all()


def test_bad_images(default_embedder):
    with pytest.raises(UnreadableImageError):
        default_embedder.embed_images([np.zeros((28, 28), dtype=np.uint8)])
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, format="PNG")
    with pytest.raises(UnreadableImageError):
        default_embedder.embed_images([Image.open(io.BytesIO(buffer.getvalue()[:60]))])
    with pytest.raises(EmptyBatchError):
        default_embedder.embed_images([])


@pytest.mark.parametrize("bad", [np.zeros((2, 28, 27), np.uint8), np.zeros((2, 28, 28), np.float32),
                                 np.zeros((0, 28, 28), np.uint8)])
def test_bad_pixels(default_embedder, bad):
    with pytest.raises(InvalidInputError):
        default_embedder.embed_pixels(bad)


def test_weights_that_are_not_ours(tmp_path):
    pytest.importorskip("safetensors")
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not safetensors at all")
    with pytest.raises(StorageFormatError):
        ImageTower(bogus)


def test_missing_weights_say_how_to_train_them(tmp_path):
    pytest.importorskip("torch")
    with pytest.raises(EmbedderUnavailableError, match="train-image-tower"):
        ImageTower(tmp_path / "absent.safetensors")
