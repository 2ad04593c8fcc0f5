"""The shopper's garment vocabulary, from WordNet: which catalog class a word the captions never taught belongs to.

The image tower was trained against captions built from a few names per class (``captions.SYNONYMS``).  A shopper
types other words: "slingbacks", "a rucksack", "cardigan".  WordNet knows them, and knows what they are a kind of:

    cardigan  > sweater (a class name: Pullover)
    rucksack  > bag (Bag)
    anorak    > jacket (Coat) > coat
    slingback > shoe > footwear          (no class on the way: its gloss, "a shoe that has a strap that wraps
                                          around the heel", says what it looks like)

So the class names anchor the catalog in WordNet: each class's caption synonyms, in their garment senses, are its
anchor synsets.  A word found in a query is looked up (plural -> lemma), its garment sense chosen (a sense whose
hypernyms reach clothing, footwear, bags or luggage: "loafer" the shoe, not the idler), and its hypernyms climbed
to the nearest anchor.  The result, a :class:`GarmentWord`, says which class it reached and how the word is
explained in the catalog's own words; :meth:`GarmentLexicon.head` picks the garment a query is about, which the
text route pulls the query to (see :mod:`lookalike.embed.multilingual`).

Nothing here lists the words a shopper may type: they come from WordNet's 82,000 noun synsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .captions import SYNONYMS
from .wordnet import Synset, WordNet, load_wordnet

# What a fashion catalog sells, as WordNet roots: a sense counts as a garment sense when one of these is above it.
DOMAIN_ROOTS = ("clothing", "footwear", "bag", "baggage", "headdress")
MIN_ANCHORS_BELOW = 3
PREPOSITIONS = frozenset("for with without to in on at by from under over into like near than of".split())
MAX_PHRASE_WORDS = 3  # "tank top", "pair of jeans", "jodhpur boot"
WORD = re.compile(r"[^\W\d_]+(?:[-'][^\W\d_]+)*", re.UNICODE)


@dataclass(frozen=True)
class GarmentWord:
    """A word of a query that WordNet places among garments."""

    text: str  # as it appears in the query ("slingbacks")
    synset: Synset  # its garment sense
    label: int | None  # the catalog class reached through hypernyms, or None when no anchor is above it
    anchor: str | None  # the class synonym reached ("sweater"), or None
    position: int = 0  # index of its first token in the query

    def explanation(self) -> str:
        """The word in the catalog's words: "cardigan, a sweater" or "slingback, a shoe that has a strap ..."."""
        head = self.synset.words()[0]
        if self.anchor == head:
            return head
        if self.anchor is not None:
            return f"{head}, a {self.anchor}"
        return f"{head}, {self.synset.definition}"


class GarmentLexicon:
    """Garment words of a text -> catalog classes, through WordNet's hypernyms (see the module docstring)."""

    def __init__(self, wordnet: WordNet | None = None, synonyms: tuple[tuple[str, ...], ...] = SYNONYMS) -> None:
        self.wordnet = wordnet or load_wordnet()
        self._roots = {s.offset for root in DOMAIN_ROOTS for s in self.wordnet.synsets(root)}
        self._anchors = self._anchor_synsets(synonyms)
        self._compounds: dict[str, list[Synset]] | None = None

    def garment_sense(self, word: str) -> Synset | None:
        """The sense of ``word`` a shop sells: among its senses that are garments, footwear, bags or luggage, the
        most frequent one that reaches a catalog class ("thongs": the flip-flops, not the underwear WordNet lists
        first), else the most frequent garment sense.  A phrase is tried as written, hyphenated and closed up
        ("polo neck", "polo-neck", "poloneck")."""
        for spelling in dict.fromkeys((word, word.replace(" ", "-"), word.replace(" ", ""), word.replace("-", " "))):
            senses = [s for s in self.wordnet.synsets(spelling) if s.offset in self._anchors or self._in_domain(s)]
            if senses:
                return next((s for s in senses if self.classify(s)[0] is not None), senses[0])
        return None

    def classify(self, synset: Synset) -> tuple[int | None, str | None]:
        """The class of ``synset`` and the catalog's word for it, or (None, None) when WordNet cannot tell:
        - an anchor itself: its class, named by the class's first name;
        - else the nearest anchor above it ("cardigan > sweater");
        - else, climbing further, the first ancestor that has anchors below it, when they are all of one class
          ("satchel > luggage > case > container", and the only class under "container" is Bag), counting only
          ancestors with at least ``MIN_ANCHORS_BELOW`` anchors (one stray anchor proves nothing)."""
        if synset.offset in self._anchors:
            label, _ = self._anchors[synset.offset]
            return label, self._class_names[label]
        ancestors = self.wordnet.ancestors(synset)
        for candidate in ancestors:
            if candidate.offset in self._anchors:
                return self._anchors[candidate.offset]
        for candidate in ancestors:
            below = self._anchors_below.get(candidate.offset)
            if below:
                labels = set(below)
                if len(labels) == 1 and len(below) >= MIN_ANCHORS_BELOW:
                    label = below[0]
                    return label, self._class_names[label]
                return None, None
        return None, None

    def garment_words(self, text: str) -> list[GarmentWord]:
        """The garment words of ``text``, longest phrase first ("tank top" before "top"), each word used once."""
        tokens = [token.lower() for token in WORD.findall(text)]
        found: list[GarmentWord] = []
        start = 0
        while start < len(tokens):
            for size in range(min(MAX_PHRASE_WORDS, len(tokens) - start), 0, -1):
                phrase = " ".join(tokens[start : start + size])
                synset = self.garment_sense(phrase)
                if synset is not None:
                    found.append(self._garment_word(phrase, synset, start))
                    start += size
                    break
            else:
                start += 1
        if not found:  # one more chance for words WordNet only knows inside a compound
            found = [word for position, token in enumerate(tokens)
                     if (word := self._compound_garment(token, position)) is not None][:1]
        return found

    def _garment_word(self, text: str, synset: Synset, position: int) -> GarmentWord:
        return GarmentWord(text, synset, *self.classify(synset), position)

    def _compound_garment(self, token: str, position: int) -> GarmentWord | None:
        """A garment a single word stands for as part of a compound: the head of a closed compound ("ballgown" ->
        "gown", "overshirt" -> "shirt", whose first part must be an English word), or the one garment class of
        the open compounds it starts ("bomber" -> "bomber jacket"; "tank" -> "tank top")."""
        for cut in range(2, len(token) - 2):
            head, modifier = token[cut:], token[:cut]
            synset = self.garment_sense(head) if self.wordnet.knows_word(modifier) else None
            if synset is not None:
                word = self._garment_word(token, synset, position)
                if word.label is not None:
                    return word
        if self.wordnet.is_adjective(token):  # "short" starts "short pants", but "short sleeves" are no trousers
            return None
        senses = self._compounds_starting_with().get(token, [])
        labels = {self.classify(synset)[0] for synset in senses}
        if len(labels) == 1 and None not in labels:
            return self._garment_word(token, senses[0], position)
        return None

    def _compounds_starting_with(self) -> dict[str, list[Synset]]:
        """First word -> garment synsets with a two-or-more-word lemma starting with it (built on first use)."""
        if self._compounds is None:
            compounds: dict[str, list[Synset]] = {}
            for synset in self._garment_synsets():
                for lemma in synset.lemmas:
                    if "_" in lemma:
                        compounds.setdefault(lemma.split("_", 1)[0], []).append(synset)
            self._compounds = compounds
        return self._compounds

    def class_words(self) -> dict[int, set[str]]:
        """Class -> every WordNet word whose garment sense reaches it (the vocabulary of generated queries)."""
        words: dict[int, set[str]] = {}
        for synset in self._garment_synsets():
            label, _ = self.classify(synset)
            if label is not None:
                words.setdefault(label, set()).update(w for w in synset.words() if w.isascii())
        return words

    def _garment_synsets(self):
        """Every noun synset under clothing, footwear, bags or luggage."""
        return (synset for synset in self.wordnet.all_synsets() if self._in_domain(synset))

    def head(self, text: str) -> GarmentWord | None:
        """The garment the query is about: English puts modifiers before the head of a noun phrase ("white
        sneakers", "denim jacket", "jersey dress": sneakers, jacket, dress) and attaches other garments with
        prepositions ("a bag for my shoes", "sneakers in white"), so it is the last garment word before the
        first preposition (or the last one, when the query starts with a preposition)."""
        words = self.garment_words(text)
        if not words:
            return None
        tokens = [token.lower() for token in WORD.findall(text)]
        cut = next((i for i, token in enumerate(tokens) if token in PREPOSITIONS), len(tokens))
        before = [word for word in words if word.position < cut]
        return (before or words)[-1]

    # --- building

    def _in_domain(self, synset: Synset) -> bool:
        return synset.offset in self._roots or any(parent.offset in self._roots
                                                   for parent in self.wordnet.ancestors(synset))

    def _anchor_synsets(self, synonyms: tuple[tuple[str, ...], ...]) -> dict[int, tuple[int, str]]:
        """Each class synonym's most frequent garment sense -> (class, synonym).  A synset named by two classes
        stays with the first."""
        self._class_names = [self.wordnet.lemmas_of(names[0])[0].replace("_", " ") if self.wordnet.lemmas_of(names[0])
                             else names[0] for names in synonyms]
        anchors: dict[int, tuple[int, str]] = {}
        for label, names in enumerate(synonyms):
            for name in names:
                synset = next((s for s in self.wordnet.synsets(name) if self._in_domain(s)), None)
                if synset is not None and synset.offset not in anchors:
                    anchors[synset.offset] = (label, self.wordnet.lemmas_of(name)[0].replace("_", " "))
        self._anchors_below: dict[int, list[int]] = {}  # ancestor -> the class of each anchor below it
        for offset, (label, _) in anchors.items():
            for parent in self.wordnet.ancestors(self.wordnet.synset(offset)):
                self._anchors_below.setdefault(parent.offset, []).append(label)
        return anchors


@lru_cache(maxsize=1)
def default_lexicon() -> GarmentLexicon:
    return GarmentLexicon()


# Shopper templates and adjectives of generated text queries (bench_modality, the demo's text tuning).
QUERY_TEMPLATES = ("{np}", "{adj} {bare}", "looking for {np}", "a {adj} one: {bare}", "{bare} for women",
                   "{bare} for men", "buy {adj} {bare}", "i want {np}")
QUERY_ADJECTIVES = ("black", "white", "red", "navy", "green", "cheap", "warm", "light", "striped", "vintage",
                    "leather", "cotton")


def generated_text_queries(n: int, seed: int = 0, lexicon: GarmentLexicon | None = None) -> tuple[list[str], list[int]]:
    """``n`` shopping queries made from WordNet's garment words of every class (each word whose hypernyms reach
    a class) in shopper templates with adjectives, seeded: text queries nobody wrote down, for tuning and
    measuring text search ("a black cardigan", "looking for espadrilles").  Returns (texts, classes)."""
    import numpy as np

    from .captions import noun_phrase

    words = (lexicon or default_lexicon()).class_words()
    rng = np.random.default_rng(seed)
    classes = sorted(words)
    texts, labels = [], []
    for i in range(n):
        label = classes[i % len(classes)]
        pool = sorted(words[label])
        word = pool[rng.integers(len(pool))]
        adjective = QUERY_ADJECTIVES[rng.integers(len(QUERY_ADJECTIVES))]
        template = QUERY_TEMPLATES[rng.integers(len(QUERY_TEMPLATES))]
        np_, bare = noun_phrase(word)
        texts.append(template.format(np=np_, bare=bare, adj=adjective))
        labels.append(label)
    return texts, labels
