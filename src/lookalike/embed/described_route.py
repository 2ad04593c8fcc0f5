"""The description a text query gives, and the part of its class it names.

The shopper's text route finds the garment class a query means and pulls the query toward that class's pictures
(:mod:`lookalike.embed.multilingual`).  Pulling toward the whole class would wash out "black" or "striped": the
class's centre is a grey, half-patterned garment.  So the pull goes toward the part of the class the description
names: the class centre moved by the difference between the pictures of the class that show each named value and
the class as a whole (``sub_centroid - centroid``), in the space of the image tower.  These centres are computed
from the training pictures and their pixel descriptions (:mod:`lookalike.embed.descriptions`) and shipped beside
the tower (``models/fmnist_described_tower_centroids.npy``, written by ``lookalike train-image-tower``).

What a query says is read, strongest first:
1. lightness from colour names placed by the grey a grayscale photo gives them (:mod:`lookalike.embed.colours`:
   "navy" dark, "cream" white, "red" dark grey, said to look like green);
2. pattern and shape from the words of the captions that name them ("striped", "plain", "long", "high-top", ...);
3. words of other languages by their nearest English prototype under the multilingual encoder ("schwarz",
   "noir", "negro" sit next to "black": cosine 0.93-0.94, garment nouns under 0.5);
4. for a query not in English, the nearest described training captions by the same encoder, which name what they
   describe: when most of those that name an attribute agree ("a righe" lands among "striped" captions), their
   value is taken.

When neither WordNet nor the votes reach a class (an English query the votes split on: "evening ball attire"),
MiniLM's own reading decides: the class whose centre is nearest to its vector.  The described tower spreads each
class by its descriptions, so a query left unpulled would land between them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np

from .colours import LIGHTNESS_WORDS, read_colour
from .descriptions import (
    ATTRIBUTES, HANDLE, HANDLE_WORDS, LENGTH, LENGTH_WORDS, LIGHTNESS, LOGO, LOGO_WORDS, PATTERN, PATTERN_WORDS,
    SLEEVE_WORDS, SLEEVES, UNSAID, applicable,
)

# Slots of the centroid table: 0 the class centre, then one per (attribute, value).
SLOTS: tuple[tuple[int, int], ...] = tuple((a, v) for a in range(len(ATTRIBUTES)) for v in range(5)
                                           if (a == LIGHTNESS) or (a == PATTERN and v < 3)
                                           or (a in (LENGTH, SLEEVES) and v < 2) or (a in (LOGO, HANDLE) and v == 1))
SLOT_OF = {pair: 1 + i for i, pair in enumerate(SLOTS)}
DESCRIPTION_GAIN = 1.5  # how far past the named part's centre the pull goes (measured: bench suite "descriptions")
VOTER_MENTION_SHARE = 0.5  # of the voters, at least this share must name an attribute ...
VOTER_AGREEMENT = 0.7  # ... and this share of those must name the same value, for the vote to count

# Words that name values, beyond the captions' own (the captions' words are in descriptions.py).
EXTRA_PATTERN_WORDS = {
    0: ("monochrome", "uni", "block colour", "single colour", "one colour", "basic"),
    1: ("pattern", "print", "prints", "floral", "flowery", "flowers", "paisley", "leopard", "animal print", "camo",
        "camouflage", "checked", "check", "checkered", "chequered", "plaid", "tartan", "gingham", "polka", "dotted",
        "dots", "spotted", "houndstooth", "argyle", "geometric", "tie-dye", "patterns", "jacquard", "embroidered"),
    2: ("stripes", "pinstripe", "pinstriped", "breton", "candy-striped", "striping", "stripe"),
}
EXTRA_LENGTH_WORDS = {0: ("knee-length", "above-the-knee", "cropped", "minidress", "mini-dress", "hi"),
                      1: ("floor-length", "ankle-length", "maxidress", "maxi-dress", "midi", "hi-top")}
SLEEVELESS = ("sleeveless",)


@dataclass
class QueryDescription:
    """What a query says a picture shows: ``values`` {attribute index: value}, the words that said each, and notes
    (a colour a grayscale picture cannot tell from others; a value the class cannot show)."""

    values: dict[int, int] = field(default_factory=dict)
    words: dict[int, str] = field(default_factory=dict)
    source: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {ATTRIBUTES[a]: {"value": value_name(a, v), "words": self.words.get(a), "source": self.source.get(a)}
                for a, v in sorted(self.values.items())} | ({"notes": list(self.notes)} if self.notes else {})


def value_name(attribute: int, value: int) -> str:
    if attribute == LIGHTNESS:
        return LIGHTNESS_WORDS[value]
    if attribute == PATTERN:
        return ("plain", "patterned", "striped")[value]
    if attribute == LENGTH:
        return ("short or low", "long or high")[value]
    if attribute == SLEEVES:
        return ("short", "long")[value]
    return "yes"


def _phrase_table() -> list[tuple[str, int, int]]:
    """(phrase, attribute, value), longest phrases first, from the captions' words and the extra words."""
    rows: list[tuple[str, int, int]] = []
    for value, words in PATTERN_WORDS.items():
        rows += [(w, PATTERN, value) for w in words + EXTRA_PATTERN_WORDS[value]]
    rows += [(w, LOGO, 1) for w in LOGO_WORDS + ("logo", "logos", "slogan", "graphic tee", "emblem", "lettering")]
    for kind in LENGTH_WORDS.values():
        for value, words in enumerate(kind):
            rows += [(w, LENGTH, value) for w in words]
    rows += [(w, LENGTH, v) for v, words in EXTRA_LENGTH_WORDS.items() for w in words]
    for value, words in enumerate(SLEEVE_WORDS):
        rows += [(w, SLEEVES, value) for w in words + (words[0].replace("-", " "),)]
    rows += [(w, SLEEVES, 0) for w in SLEEVELESS]
    rows += [(w, HANDLE, 1) for w in HANDLE_WORDS + ("handle", "handles", "strap", "straps", "top-handle")]
    phrases = {}
    for phrase, attribute, value in rows:
        phrases.setdefault(phrase.removeprefix("with a ").removeprefix("with "), (attribute, value))
    return sorted(((p, a, v) for p, (a, v) in phrases.items()), key=lambda row: -len(row[0]))


_PHRASES = _phrase_table()


def read_description(text: str, label: int | None) -> QueryDescription:
    """What an English query says of lightness, pattern and shape (the voters of other languages come later)."""
    description = QueryDescription()
    # hyphens and plurals as the words come: "knee length" is "knee-length", "pinstripes" a "pinstripe"
    words = re.findall(r"[a-z]+", text.lower())
    lowered = " " + " ".join(words + [w[:-1] for w in words if w.endswith("s") and len(w) > 3]) + " "
    colour = read_colour(text)
    if colour is not None:
        description.values[LIGHTNESS] = colour.step
        description.words[LIGHTNESS] = colour.words
        description.source[LIGHTNESS] = "colour table"
        if colour.note():
            description.notes.append(colour.note())
    for phrase, attribute, value in _PHRASES:
        if attribute in description.values:
            continue
        phrase = phrase.replace("-", " ")
        if f" {phrase} " in lowered:
            if attribute == LENGTH and phrase in ("long", "short") and f" {phrase} sleeve" in lowered:
                continue  # "long sleeves" is about the sleeves
            description.values[attribute] = value
            description.words[attribute] = phrase
            description.source[attribute] = "words"
            lowered = lowered.replace(f" {phrase} ", " ")
    return restrict(description, label)


def without_description(text: str, description: QueryDescription) -> str:
    """The text without the words that describe (colour names, "dark", "high-top", "striped"...), so that the
    garment is looked for among the rest: "snow white trainers" is not about "whites" (flannels), "high-top boots"
    not about a "top"."""
    from .colours import DARKER, LIGHTER, colour_table

    table = colour_table()
    phrases = [w for w in description.words.values() if w]
    for phrase in sorted(phrases, key=len, reverse=True):
        pattern = r"[-\s]".join(re.escape(part) for part in re.split(r"[-\s]", phrase))
        text = re.sub(rf"(?i)(?<![\w-]){pattern}s?(?![\w-])", " ", text)
    def describes(token: str) -> bool:  # "navy", "dark", "snow-white": colour words and modifiers only
        parts = [p for p in re.split(r"[-\s]", token.lower().strip(",.;!?")) if p]
        return bool(parts) and all(p in table or p in DARKER | LIGHTER for p in parts)

    return " ".join(w for w in text.split() if not describes(w))


def restrict(description: QueryDescription, label: int | None) -> QueryDescription:
    """Drop what the class cannot show (a pattern of sneakers, sleeves of trousers), with a note saying so."""
    if label is None:
        return description
    from ..catalog.fashion_mnist import CLASS_NAMES

    options = applicable(label)
    for attribute in list(description.values):
        if attribute not in options or description.values[attribute] not in options[attribute]:
            words = description.words.get(attribute)
            if words is not None:  # a value the voters guessed is dropped without a word
                description.notes.append(f"'{words}' is not something the pictures of {CLASS_NAMES[label]} show here: "
                                         "it does not change the ranking")
            for part in (description.values, description.words, description.source):
                part.pop(attribute, None)
    return description


# The words of other languages are compared with these English ones by the multilingual encoder (USE places
# "schwarz", "noir", "negro" next to "black", 0.93-0.94; garment nouns stay under 0.5 from all of them).
PROTOTYPES: tuple[tuple[str, int, int], ...] = (
    ("black", LIGHTNESS, 0), ("dark", LIGHTNESS, 1), ("grey", LIGHTNESS, 2), ("light", LIGHTNESS, 3),
    ("white", LIGHTNESS, 4), ("plain", PATTERN, 0), ("patterned", PATTERN, 1), ("striped", PATTERN, 2),
    ("short", LENGTH, 0), ("low", LENGTH, 0), ("long", LENGTH, 1), ("high", LENGTH, 1),
    ("floral", PATTERN, 1), ("flowers", PATTERN, 1), ("dots", PATTERN, 1), ("checked", PATTERN, 1),
)
PROTOTYPE_SIMILARITY = 0.62  # a word this close (cosine, USE) to a prototype names its value


class WordReader:
    """Words of other languages -> attribute values, by their nearest English prototype word under USE."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.vectors = encoder.encode([word for word, _, _ in PROTOTYPES])

    def read(self, words: list[str], description: QueryDescription) -> QueryDescription:
        """Add to ``description`` the values ``words`` name that it does not have yet (one USE batch)."""
        if not words:
            return description
        similarity = self.encoder.encode(words) @ self.vectors.T
        for word, row in zip(words, similarity):
            best = int(np.argmax(row))
            _, attribute, value = PROTOTYPES[best]
            if row[best] >= PROTOTYPE_SIMILARITY and attribute not in description.values:
                description.values[attribute] = value
                description.words[attribute] = word
                description.source[attribute] = "use-m word"
        return description


def add_voted(description: QueryDescription, voter_mentions: np.ndarray) -> QueryDescription:
    """Fill the attributes the words left open from the nearest captions' mentions (``(voters, A)`` int8)."""
    for attribute in range(len(ATTRIBUTES)):
        if attribute in description.values:
            continue
        said = voter_mentions[:, attribute]
        said = said[said != UNSAID]
        if len(said) < VOTER_MENTION_SHARE * len(voter_mentions):
            continue
        counts = np.bincount(said, minlength=5)
        value = int(np.argmax(counts))
        if counts[value] >= VOTER_AGREEMENT * len(said):
            description.values[attribute] = value
            description.words[attribute] = None
            description.source[attribute] = "use-m"
    return description


class DescribedCentroids:
    """The image tower's class centres and the centres of the pictures of each class showing each value."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = np.asarray(table, dtype=np.float32)  # (classes, 1 + len(SLOTS), dim); NaN rows: too few

    @classmethod
    def load(cls, path: str | os.PathLike) -> DescribedCentroids:
        from ..errors import EmbedderUnavailableError

        try:
            return cls(np.load(path, allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise EmbedderUnavailableError(f"cannot read the described centroids {path}: {exc}") from None

    def target(self, label: int, description: QueryDescription, gain: float = DESCRIPTION_GAIN) -> np.ndarray:
        """The class centre moved toward every named value: ``c + gain * sum(c_value - c)``, unit length."""
        centre = self.table[label, 0]
        target = centre.copy()
        for attribute, value in description.values.items():
            part = self.table[label, SLOT_OF[(attribute, value)]]
            if np.all(np.isfinite(part)):
                target += gain * (part - centre)
        return target / max(float(np.linalg.norm(target)), 1e-12)


MIN_PICTURES = 30  # a (class, value) centre needs at least this many pictures


def described_centroids(vectors: np.ndarray, labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The table :class:`DescribedCentroids` loads: per class, the centre of its vectors, then of those showing each
    (attribute, value) (NaN when fewer than ``MIN_PICTURES`` show it); each row normalised."""
    def centre(rows: np.ndarray) -> np.ndarray:
        if len(rows) < MIN_PICTURES:
            return np.full(vectors.shape[1], np.nan, dtype=np.float32)
        mean = rows.mean(axis=0)
        return (mean / np.linalg.norm(mean)).astype(np.float32)

    n_classes = int(labels.max()) + 1
    table = np.empty((n_classes, 1 + len(SLOTS), vectors.shape[1]), dtype=np.float32)
    for label in range(n_classes):
        members = labels == label
        table[label, 0] = centre(vectors[members])
        for slot, (attribute, value) in enumerate(SLOTS, start=1):
            table[label, slot] = centre(vectors[members & (values[:, attribute] == value)])
    return table
