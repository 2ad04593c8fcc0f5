"""The default embedder's text route reads descriptions: in English words, colour names, other languages; and the
pictures it ranks by them are the ones that show them."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.embed.attributes import measure


def reading(embedder, text: str) -> dict:
    return embedder.explain(text)


def test_descriptions_in_words_colours_and_languages(described_embedder):
    e = described_embedder
    black = reading(e, "a long black striped dress")
    assert black["class"] == "Dress"
    assert {k: v["value"] for k, v in black["description"].items()} == {
        "lightness": "black", "pattern": "striped", "length": "long or high"}
    navy = reading(e, "navy jumper")["description"]["lightness"]
    assert navy["value"] == "black" and navy["source"] == "colour table"
    german = reading(e, "ein langes schwarzes Kleid")
    assert german["class"] == "Dress" and german["description"]["lightness"]["value"] == "black"
    assert german["description"]["length"]["source"] == "use-m word"
    assert reading(e, "una camicia a righe")["description"]["pattern"]["value"] == "striped"


def test_describing_words_are_not_taken_for_the_garment(described_embedder):
    assert reading(described_embedder, "snow white trainers")["class"] == "Sneaker"  # not "whites" (flannels)
    assert reading(described_embedder, "high-top boots")["class"] == "Ankle boot"  # not a "top"


def test_what_the_pictures_cannot_show_is_said(described_embedder):
    red = reading(described_embedder, "a red dress")["description"]
    assert red["lightness"]["value"] == "dark" and "grayscale" in red["notes"][0]
    sneakers = reading(described_embedder, "striped sneakers")
    assert "pattern" not in sneakers["description"] and "does not change" in sneakers["description"]["notes"][0]


def test_white_and_black_rank_the_class_by_lightness(described_embedder, fmnist_sample):
    images, labels = fmnist_sample
    pictures = described_embedder.embed_pixels(images)
    lightness = measure(images).lightness
    for noun, label in (("t-shirt", 0), ("dress", 3), ("bag", 8)):
        white, black = described_embedder.embed_texts([f"a white {noun}", f"a black {noun}"])
        top_white = np.argsort(-(pictures @ white))[:5]
        top_black = np.argsort(-(pictures @ black))[:5]
        assert (labels[top_white] == label).sum() >= 4 and (labels[top_black] == label).sum() >= 4
        assert lightness[top_white].mean() > lightness[top_black].mean() + 60, noun


def test_the_first_tower_keeps_its_own_space(described_embedder, route_embedder, fmnist_sample):
    images, _ = fmnist_sample
    assert described_embedder.space == "minilm-fmnist-described" and route_embedder.space == "minilm-fmnist"
    assert not np.allclose(described_embedder.embed_pixels(images[:3]), route_embedder.embed_pixels(images[:3]))


@pytest.mark.parametrize("text", ["evening ball attire", "a black dress", "des baskets blanches"])
def test_the_same_text_gives_the_same_vector(described_embedder, text):
    first = described_embedder.embed_texts([text])
    assert np.array_equal(first, described_embedder.embed_texts([text]))
    assert np.allclose(first, described_embedder.embed_texts([text, "a coat"])[:1], atol=1e-5)
