"""Training the image tower: a seeded smoke run on 1,000 images and a small caption set; the full run is slow."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.embed.captions import (
    HELD_OUT_QUERIES,
    SYNONYMS,
    class_captions,
    held_out_queries,
    training_captions,
)
from lookalike.errors import InvalidParameterError


def small_captions(per_class: int = 4) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for label in range(10):
        captions = class_captions(label)[:per_class]
        texts += captions
        labels += [label] * len(captions)
    return texts, labels


@pytest.fixture(scope="module")
def smoke_run(minilm, fmnist_test, tmp_path_factory):
    from lookalike.embed.image_tower import train_image_tower

    def run(name: str):
        out = tmp_path_factory.mktemp("tower") / name
        result = train_image_tower(out, epochs=1, limit=1000, seed=0, evaluate=False, text_embedder=minilm,
                                   captions=small_captions(), log=lambda line: None)
        return out, result

    return run


@pytest.mark.unit
def test_held_out_queries_are_not_training_captions():
    import re

    captions = set(training_captions()[0])
    queries, labels = held_out_queries()
    assert not captions & set(queries)
    for query, label in zip(queries, labels):
        for synonym in SYNONYMS[label]:
            assert not re.search(rf"\b{re.escape(synonym)}\b", query), (query, synonym)
    assert len(queries) == sum(map(len, HELD_OUT_QUERIES))


@pytest.mark.unit
def test_captions_cover_every_class_with_articles_right():
    texts, labels = training_captions()
    assert np.bincount(labels).min() > 50 and len(set(texts)) == len(texts)
    assert "a photo of jeans" in texts and "a photo of an ankle boot" in texts and "a photo of a jeans" not in texts


@pytest.mark.contract
def test_smoke_training_saves_loadable_seeded_weights(smoke_run):
    from safetensors.torch import load_file

    from lookalike.embed.image_tower import ImageTower

    first, result = smoke_run("a.safetensors")
    assert result.n_train == 1000 and np.isfinite(result.final_loss)
    assert first.stat().st_size < 3_000_000
    tower = ImageTower(first)
    assert tower.metadata["seed"] == "0" and tower.metadata["n_train"] == "1000"
    second, _ = smoke_run("b.safetensors")
    a, b = load_file(str(first)), load_file(str(second))
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


@pytest.mark.unit
@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"batch_size": -1}, {"lr": 0}, {"threads": 0}, {"limit": 1},
                                    {"captions": (["a dress"], [3])}])
def test_bad_training_arguments(kwargs, minilm):
    from lookalike.embed.image_tower import train_image_tower

    with pytest.raises(InvalidParameterError):
        train_image_tower("/nonexistent/x.safetensors", text_embedder=minilm, log=lambda line: None, **kwargs)


@pytest.mark.slow
def test_one_full_epoch_learns_the_classes(minilm, tmp_path):
    from lookalike.embed.image_tower import train_image_tower

    result = train_image_tower(tmp_path / "tower.safetensors", epochs=1, seed=1, text_embedder=minilm)
    assert result.figures["zero_shot_class_names"] > 0.7
    assert result.figures["image_to_image_p10"] > 0.7
