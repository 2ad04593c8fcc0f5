"""Captions for the Fashion-MNIST classes: what the image tower is trained against, and held-out queries to test it.

Fashion-MNIST has labels, not captions.  As in CLIP's zero-shot prompts ("a photo of a {label}"), captions are made
from each class's names and synonyms put into templates, some with an adjective (a colour, a material, a style)
that the grayscale 28x28 image cannot show: the tower learns to place "a red dress" and "a black dress" both near
dresses, so a shopper's adjectives do not pull a query to the wrong garment.

``HELD_OUT_QUERIES`` are shopper-style paraphrases that use none of the training synonyms; they are never embedded
during training and measure whether the locked text tower carries the meaning beyond the training vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog.fashion_mnist import CLASS_NAMES

# Per class (in CLASS_NAMES order): names a shopper would type.  The first is the class-name query of the evaluation.
SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("t-shirt", "tee", "top", "tank top", "short-sleeved top", "crop top"),
    ("trousers", "pants", "jeans", "slacks", "leggings", "chinos"),
    ("pullover", "sweater", "jumper", "knit sweater", "sweatshirt", "knitted pullover"),
    ("dress", "gown", "sundress", "frock", "maxi dress", "summer dress"),
    ("coat", "jacket", "overcoat", "parka", "trench coat", "winter coat"),
    ("sandal", "sandals", "flip-flops", "slides", "strappy sandals", "summer sandals"),
    ("shirt", "button-up shirt", "blouse", "dress shirt", "flannel shirt", "long-sleeved shirt"),
    ("sneaker", "sneakers", "trainers", "running shoes", "athletic shoes", "tennis shoes"),
    ("bag", "handbag", "purse", "tote bag", "backpack", "shoulder bag"),
    ("ankle boot", "ankle boots", "boots", "chelsea boots", "booties", "leather boots"),
)

# Nouns that take no article ("a photo of jeans", not "a photo of a jeans").
PLURALS = frozenset({
    "trousers", "pants", "jeans", "slacks", "leggings", "chinos", "sandals", "flip-flops", "slides",
    "strappy sandals", "summer sandals", "sneakers", "trainers", "running shoes", "athletic shoes", "tennis shoes",
    "ankle boots", "boots", "chelsea boots", "booties", "leather boots",
})

ADJECTIVES: tuple[str, ...] = (
    "black", "white", "red", "blue", "navy", "grey", "beige", "pink", "green", "brown",
    "cotton", "leather", "wool", "striped", "casual", "elegant", "vintage", "cheap",
)

# {np}: a noun phrase with its article ("a red dress", "jeans"); {bare}: without it ("red dress").
TEMPLATES: tuple[str, ...] = (
    "{bare}",
    "{np}",
    "a photo of {np}",
    "a picture of {np}",
    "a product photo of {np}",
    "an image of {np}",
    "a black and white photo of {np}",
    "women's {bare}",
    "men's {bare}",
    "i am looking for {np}",
    "show me {bare}",
    "buy {bare} online",
)
ADJECTIVE_TEMPLATES: tuple[str, ...] = ("{np}", "a photo of {np}", "{bare}", "women's {bare}")

# Shopper paraphrases, never used in training (none contains a synonym of its own class as a word).
HELD_OUT_QUERIES: tuple[tuple[str, ...], ...] = (
    ("sleeveless camisole", "a plain crewneck with short sleeves", "spaghetti strap cami",
     "singlet for the gym"),
    ("denim bottoms", "a pair of joggers", "wide-leg culottes", "grey sweatpants"),
    ("a warm woolly knit for winter", "hoodie", "turtleneck knitwear", "chunky cable knit"),
    ("little black number for a party", "knee-length outfit for a wedding guest", "evening ball attire",
     "sleeveless shift for the office"),
    ("warm winter outerwear", "puffer", "a long wool peacoat", "anorak"),
    ("open-toe summer footwear", "beach shoes with straps", "gladiators", "espadrilles"),
    ("a collared long-sleeve top with buttons", "crisp white oxford with a collar", "checked button-down",
     "denim overshirt"),
    ("shoes for jogging", "kicks", "gym footwear", "canvas low-tops"),
    ("clutch", "satchel", "messenger carryall", "leather holdall"),
    ("heeled footwear ending at the ankle", "desert chukkas", "lace-up work footwear",
     "zip-up suede footwear for autumn"),
)


def noun_phrase(noun: str, adjective: str | None = None) -> tuple[str, str]:
    """``(with article, bare)`` for a noun and optional adjective: ("an elegant coat", "elegant coat")."""
    bare = f"{adjective} {noun}" if adjective else noun
    if noun in PLURALS:
        return bare, bare
    article = "an" if bare[0] in "aeiou" else "a"
    return f"{article} {bare}", bare


def class_captions(label: int) -> list[str]:
    """Every training caption of one class: synonyms x templates, plus each synonym with each adjective."""
    captions = []
    for i, noun in enumerate(SYNONYMS[label]):
        np_, bare = noun_phrase(noun)
        captions.extend(t.format(np=np_, bare=bare) for t in TEMPLATES)
        for j, adjective in enumerate(ADJECTIVES):  # one template per (noun, adjective), in rotation
            np_, bare = noun_phrase(noun, adjective)
            template = ADJECTIVE_TEMPLATES[(i + j) % len(ADJECTIVE_TEMPLATES)]
            captions.append(template.format(np=np_, bare=bare))
    return list(dict.fromkeys(captions))  # unique, in a stable order


def training_captions() -> tuple[list[str], list[int]]:
    """All training captions and the class of each."""
    texts: list[str] = []
    labels: list[int] = []
    for label in range(len(CLASS_NAMES)):
        captions = class_captions(label)
        texts.extend(captions)
        labels.extend([label] * len(captions))
    return texts, labels


COLOUR_ADJECTIVES = frozenset({"black", "white", "red", "blue", "navy", "grey", "beige", "pink", "green", "brown"})
DESCRIBED_PER_CLASS = 1100  # captions per class that describe what a picture shows (lightness, pattern, shape)
BANK_SEED = 0


@dataclass(frozen=True)
class CaptionBank:
    """The captions of the described tower: texts, their classes, and what each says (``(n, A)`` int8, -1 where it
    says nothing of an attribute; see :mod:`lookalike.embed.descriptions`)."""

    texts: list[str]
    labels: np.ndarray
    mentioned: np.ndarray


def caption_bank(per_class: int = DESCRIBED_PER_CLASS, seed: int = BANK_SEED) -> CaptionBank:
    """Class captions (synonyms in templates, with materials and styles but no colour: a colour is something a
    picture shows or not) plus ``per_class`` generated captions per class naming some of the values a picture of
    the class can show, in the class's synonyms and the templates; seeded."""
    from .descriptions import ATTRIBUTES, UNSAID, applicable, describe_noun

    rng = np.random.default_rng(seed)
    texts: list[str] = []
    labels: list[int] = []
    mentions: list[np.ndarray] = []
    for label in range(len(CLASS_NAMES)):
        for caption in class_captions(label):
            if not COLOUR_ADJECTIVES & set(caption.split()):
                texts.append(caption)
                labels.append(label)
                mentions.append(np.full(len(ATTRIBUTES), UNSAID, dtype=np.int8))
        options = applicable(label)
        for _ in range(per_class):
            said = {a: int(rng.choice(values)) for a, values in options.items()
                    if rng.random() < MENTION_PROBABILITY.get(a, 0.45)}
            if not said:
                said = {0: int(rng.integers(len(options[0])))}
            noun = str(rng.choice(SYNONYMS[label]))
            bare = describe_noun(label, noun, said, rng)
            article = "" if noun in PLURALS else ("an " if bare[0] in "aeiou" else "a ")
            template = DESCRIBED_TEMPLATES[int(rng.integers(len(DESCRIBED_TEMPLATES)))]
            texts.append(template.format(np=article + bare, bare=bare))
            labels.append(label)
            row = np.full(len(ATTRIBUTES), UNSAID, dtype=np.int8)
            for attribute, value in said.items():
                row[attribute] = value
            mentions.append(row)
    unique = dict.fromkeys(zip(texts, labels, map(bytes, mentions)))  # a repeated caption counts once
    texts = [t for t, _, _ in unique]
    labels_arr = np.asarray([lab for _, lab, _ in unique], dtype=np.int64)
    mentioned = np.stack([np.frombuffer(m, dtype=np.int8) for _, _, m in unique])
    return CaptionBank(texts, labels_arr, mentioned)


MENTION_PROBABILITY = {0: 0.75, 1: 0.5}  # lightness, pattern; other attributes 0.45
DESCRIBED_TEMPLATES: tuple[str, ...] = ("{np}", "{bare}", "{np}", "a photo of {np}", "women's {bare}", "men's {bare}",
                                        "i am looking for {np}", "show me {bare}", "a product photo of {np}")


def class_name_queries() -> list[str]:
    """One query per class, the evaluation's "class name" prompts: "a photo of a t-shirt", ..."""
    return ["a photo of " + noun_phrase(names[0])[0] for names in SYNONYMS]


def held_out_queries() -> tuple[list[str], list[int]]:
    """The held-out paraphrases and the class of each."""
    pairs = [(q, label) for label, queries in enumerate(HELD_OUT_QUERIES) for q in queries]
    return [q for q, _ in pairs], [label for _, label in pairs]
