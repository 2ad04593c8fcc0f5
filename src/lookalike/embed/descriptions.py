"""Descriptions of Fashion-MNIST pictures from their pixels, and the captions the image tower is trained on.

Each picture gets a value per attribute, from the measures of :mod:`lookalike.embed.attributes` ranked within its
class (the words are relative to the kind of garment: "white" is the lightest seventh of the t-shirts):

    lightness  0 black, 1 dark, 2 grey, 3 light, 4 white    (every class)
    pattern    0 plain, 1 patterned, 2 striped             (garments and bags; the middle of texture says nothing)
    logo       1 a logo or print on the chest              (t-shirts, pullovers, shirts)
    length     0 short / low, 1 long / high                (dresses, coats, tops, shoes)
    sleeves    0 short, 1 long                             (shirts)
    handle     1 a handle or strap loop                    (bags)

A caption names the class (one of its synonyms) and some of these values in words ("a long black striped dress",
"navy sneakers", "a plain white tee with a logo"); colour names come from a colour table, placed by the grey they
show (:mod:`lookalike.embed.colours`).  A caption that names only the class ("a photo of a dress") fits every
picture of the class; one naming values fits only the pictures that show them, which is what teaches the tower
what "black" or "striped" look like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .attributes import PixelMeasures, measure, within_class_percentiles
from .colours import LIGHTNESS_WORDS, colours_of_step

ATTRIBUTES = ("lightness", "pattern", "logo", "length", "sleeves", "handle")
LIGHTNESS, PATTERN, LOGO, LENGTH, SLEEVES, HANDLE = range(len(ATTRIBUTES))
UNSAID = -1  # the attribute is not named (a caption) or not shown clearly (a picture)
PLAIN, PATTERNED, STRIPED = 0, 1, 2

# Within-class percentile bounds of each lightness step (0-15 black, 15-35 dark, 35-65 grey, 65-85 light, 85+ white).
LIGHTNESS_PERCENTILES = (15.0, 35.0, 65.0, 85.0)
TEXTURE_PLAIN, TEXTURE_PATTERNED = 30.0, 70.0  # texture percentiles: below plain, above patterned
STRIPES_PERCENTILE = 60.0  # of the patterned, those this directional are striped
LOGO_PERCENTILE = 85.0
LENGTH_SHORT, LENGTH_LONG = 30.0, 70.0  # percentiles of height / width
SHIRT_SHORT_SLEEVES, SHIRT_LONG_SLEEVES = 0.85, 0.98  # low width / shoulder width (bimodal: absolute bounds)
HANDLE_SHARE = 0.1  # share of the upper third that is a hole

# Classes (Fashion-MNIST order) each attribute applies to.
T_SHIRT, TROUSER, PULLOVER, DRESS, COAT, SANDAL, SHIRT, SNEAKER, BAG, ANKLE_BOOT = range(10)
PATTERNED_CLASSES = (T_SHIRT, TROUSER, PULLOVER, DRESS, COAT, SHIRT, BAG)
LOGO_CLASSES = (T_SHIRT, PULLOVER, SHIRT)
LENGTH_CLASSES = (T_SHIRT, DRESS, COAT, SANDAL, SNEAKER, ANKLE_BOOT)
SHOES = (SANDAL, SNEAKER, ANKLE_BOOT)

# Words per value (the first is the plainest).  Lightness words also come from the colour table.
PATTERN_WORDS = {
    PLAIN: ("plain", "solid", "solid-colour", "plain-coloured", "simple", "unpatterned"),
    PATTERNED: ("patterned", "printed", "with a print", "with a pattern", "graphic", "all-over print"),
    STRIPED: ("striped", "with stripes", "stripy", "stripe"),
}
LOGO_WORDS = ("with a logo", "with a print on the front", "with a graphic", "with a big logo")
LENGTH_WORDS = {  # (short / low, long / high) per kind of garment
    "garment": (("short", "cropped", "mini"), ("long", "maxi", "full-length", "longline")),
    "shoe": (("low", "low-top", "low-cut", "flat"), ("high", "high-top", "tall", "high-cut")),
}
SLEEVE_WORDS = (("short-sleeved", "with short sleeves"), ("long-sleeved", "with long sleeves"))
HANDLE_WORDS = ("with a handle", "with handles", "with a strap", "with a top handle")
SUFFIX_WORDS = frozenset(LOGO_WORDS + HANDLE_WORDS + SLEEVE_WORDS[0][1:] + SLEEVE_WORDS[1][1:]
                         + ("with a print", "with a pattern", "with stripes"))


@dataclass(frozen=True)
class Descriptions:
    """Attribute values ``(n, len(ATTRIBUTES))`` int8 of a set of pictures, with the measures they came from."""

    values: np.ndarray
    labels: np.ndarray
    measures: PixelMeasures


def describe(stored: np.ndarray, labels: np.ndarray) -> Descriptions:
    """The attribute values of pictures of a catalog (percentiles are taken among these pictures, per class)."""
    labels = np.asarray(labels)
    m = measure(stored)
    pct = {name: within_class_percentiles(m.column(name), labels)
           for name in ("lightness", "texture", "stripes", "logo", "aspect")}
    values = np.full((len(labels), len(ATTRIBUTES)), UNSAID, dtype=np.int8)
    values[:, LIGHTNESS] = np.searchsorted(LIGHTNESS_PERCENTILES, pct["lightness"], side="right")

    patterned_class = np.isin(labels, PATTERNED_CLASSES)
    values[patterned_class & (pct["texture"] < TEXTURE_PLAIN), PATTERN] = PLAIN
    busy = patterned_class & (pct["texture"] >= TEXTURE_PATTERNED)
    values[busy, PATTERN] = PATTERNED
    values[busy & (pct["stripes"] >= STRIPES_PERCENTILE), PATTERN] = STRIPED

    logo = np.isin(labels, LOGO_CLASSES) & (pct["logo"] >= LOGO_PERCENTILE) & (pct["texture"] < TEXTURE_PATTERNED)
    values[logo, LOGO] = 1

    length_class = np.isin(labels, LENGTH_CLASSES)
    values[length_class & (pct["aspect"] < LENGTH_SHORT), LENGTH] = 0
    values[length_class & (pct["aspect"] >= LENGTH_LONG), LENGTH] = 1

    shirts = labels == SHIRT
    values[shirts & (m.sleeves < SHIRT_SHORT_SLEEVES), SLEEVES] = 0
    values[shirts & (m.sleeves > SHIRT_LONG_SLEEVES), SLEEVES] = 1
    values[(labels == BAG) & (m.handle >= HANDLE_SHARE), HANDLE] = 1
    return Descriptions(values, labels, m)


def applicable(label: int) -> dict[int, tuple[int, ...]]:
    """The attributes a class can be described by, with their possible values."""
    out: dict[int, tuple[int, ...]] = {LIGHTNESS: tuple(range(len(LIGHTNESS_WORDS)))}
    if label in PATTERNED_CLASSES:
        out[PATTERN] = (PLAIN, PATTERNED, STRIPED)
    if label in LOGO_CLASSES:
        out[LOGO] = (1,)
    if label in LENGTH_CLASSES:
        out[LENGTH] = (0, 1)
    if label == SHIRT:
        out[SLEEVES] = (0, 1)
    if label == BAG:
        out[HANDLE] = (1,)
    return out


def fits(picture_values: np.ndarray, mentioned: np.ndarray) -> np.ndarray:
    """Whether pictures show what captions say: ``(..., A)`` values against ``(..., A)`` mentions (broadcast); a
    caption's "patterned" fits striped pictures too."""
    said = mentioned != UNSAID
    same = picture_values == mentioned
    same[..., PATTERN] |= (mentioned[..., PATTERN] == PATTERNED) & (picture_values[..., PATTERN] == STRIPED)
    return np.all(~said | same, axis=-1)


def words_for(label: int, attribute: int, value: int, rng: np.random.Generator) -> str:
    """Words naming one attribute value of a garment of class ``label``."""
    if attribute == LIGHTNESS:
        if rng.random() < 0.5:
            return LIGHTNESS_WORDS[value]
        names = [n for n in colours_of_step(value) if n.count(" ") <= 1 and n.replace(" ", "").isalpha()]
        return str(rng.choice(names))
    if attribute == PATTERN:
        return str(rng.choice(PATTERN_WORDS[value]))
    if attribute == LOGO:
        return str(rng.choice(LOGO_WORDS))
    if attribute == LENGTH:
        return str(rng.choice(LENGTH_WORDS["shoe" if label in SHOES else "garment"][value]))
    if attribute == SLEEVES:
        return str(rng.choice(SLEEVE_WORDS[value]))
    return str(rng.choice(HANDLE_WORDS))


def describe_noun(label: int, noun: str, mentioned: dict[int, int], rng: np.random.Generator) -> str:
    """A bare noun phrase: "long black striped dress with a logo" (adjectives in the usual English order: size,
    colour, pattern; "with ..." phrases after the noun), or now and then the colour after it ("a dress in navy")."""
    before, after, colour = [], [], None
    for attribute in (LENGTH, SLEEVES, LIGHTNESS, PATTERN, LOGO, HANDLE):
        if attribute not in mentioned:
            continue
        words = words_for(label, attribute, mentioned[attribute], rng)
        if attribute == LIGHTNESS:
            colour = words
            before.append(words)
        elif words in SUFFIX_WORDS or words.startswith("with "):
            after.append(words)
        else:
            before.append(words)
    if colour is not None and len(before) > 1 and rng.random() < 0.2:  # "a striped dress in navy"
        before.remove(colour)
        after.append(f"in {colour}")
    return " ".join(before + [noun] + after)
