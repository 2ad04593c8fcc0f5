"""A reader of the WordNet 3.0 noun database (Miller 1995), as Debian's ``wordnet-base`` package installs it.

WordNet groups nouns into synsets (sets of synonyms with a gloss) linked by hypernymy ("a slingback is a kind of
shoe, a shoe a kind of footwear").  The shopper's vocabulary understood by the default text route comes from here:
``lookalike.embed.garments`` walks these links from a query's words up to the catalog's classes.

Only the three files the noun side needs are read, once, into memory (about 20 MB, under a second):
``index.noun`` (lemma -> synset offsets, most frequent sense first), ``data.noun`` (offset -> lemmas, pointers,
gloss) and ``noun.exc`` (irregular plurals: "feet" -> "foot").  The format is WordNet's ``wndb(5)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import EmbedderUnavailableError

DEFAULT_WORDNET_DIR = "/usr/share/wordnet"
HYPERNYM_POINTERS = frozenset({"@", "@i"})  # hypernym and instance hypernym

# WordNet's "morphy" detachment rules for nouns: a plural suffix and what replaces it.
NOUN_SUFFIXES = (("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
                 ("ies", "y"), ("s", ""))
# Regular inflections of verbs and adjectives ("knitted" -> "knit", "warmer" -> "warm"), as morphy detaches them.
INFLECTION_SUFFIXES = (("ies", "y"), ("es", "e"), ("es", ""), ("s", ""), ("ed", "e"), ("ed", ""), ("ing", "e"),
                       ("ing", ""), ("er", ""), ("er", "e"), ("est", ""), ("est", "e"), ("ly", ""))


@dataclass(frozen=True)
class Synset:
    """One noun synset: its lemmas (underscores for spaces), its gloss and the offsets of its hypernyms."""

    offset: int
    lemmas: tuple[str, ...]
    gloss: str
    hypernyms: tuple[int, ...]

    @property
    def definition(self) -> str:
        """The gloss without its example sentences: "a shoe that has a strap that wraps around the heel"."""
        return self.gloss.split(';')[0].split('"')[0].strip().rstrip(";").strip()

    def words(self) -> list[str]:
        return [lemma.replace("_", " ") for lemma in self.lemmas]


class WordNet:
    """The noun side of WordNet 3.0: synsets by lemma, hypernym closure, and plural -> lemma."""

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.directory = Path(directory or os.environ.get("LOOKALIKE_WORDNET_DIR", DEFAULT_WORDNET_DIR))
        files = {name: self.directory / name for name in ("index.noun", "data.noun", "noun.exc")}
        missing = [str(path) for path in files.values() if not path.is_file()]
        if missing:
            raise EmbedderUnavailableError(
                f"WordNet 3.0 is not installed ({', '.join(missing)} missing): apt-get install wordnet-base, "
                "or set LOOKALIKE_WORDNET_DIR to a directory holding index.noun, data.noun and noun.exc"
            )
        self._index = _read_index(files["index.noun"])
        self._synsets = _read_data(files["data.noun"])
        self._exceptions = _read_exceptions(files["noun.exc"])
        self._other_vocabulary: frozenset[str] | None = None
        self._adjectives: frozenset[str] | None = None

    def __contains__(self, lemma: str) -> bool:
        return lemma in self._index

    def synsets(self, word: str) -> list[Synset]:
        """The noun senses of ``word`` or of its lemma ("slingbacks" -> "slingback"), most frequent first."""
        for lemma in self.lemmas_of(word):
            return [self._synsets[offset] for offset in self._index[lemma]]
        return []

    def lemmas_of(self, word: str) -> list[str]:
        """The dictionary forms ``word`` may be: itself, an irregular singular, or a regular plural's stem."""
        word = word.lower().strip().replace(" ", "_")
        candidates = [word, *self._exceptions.get(word, ())]
        candidates += [word[: -len(suffix)] + ending for suffix, ending in NOUN_SUFFIXES if word.endswith(suffix)]
        return [lemma for lemma in dict.fromkeys(candidates) if lemma in self._index]

    def knows_word(self, word: str) -> bool:
        """Whether ``word`` is an English word of WordNet in any part of speech, inflections stripped
        ("pair", "warm", "running", "knitted"): the vocabulary :mod:`lookalike.embed.language` counts."""
        word = word.lower()
        if self.lemmas_of(word):
            return True
        vocabulary = self._other_words()
        candidates = [word] + [word[: -len(suffix)] + ending for suffix, ending in INFLECTION_SUFFIXES
                               if word.endswith(suffix) and len(word) > len(suffix) + 1]
        return any(candidate in vocabulary for candidate in candidates)

    def is_adjective(self, word: str) -> bool:
        """Whether WordNet lists ``word`` as an adjective ("short", "plain")."""
        if self._adjectives is None:
            index = self.directory / "index.adj"
            self._adjectives = frozenset(line.split(" ", 1)[0] for line in _data_lines(index)) if index.is_file() \
                else frozenset()
        return word.lower() in self._adjectives

    def _other_words(self) -> frozenset[str]:
        """Lemmas of the verb, adjective and adverb indexes and their exception lists, read on first use."""
        if self._other_vocabulary is None:
            words: set[str] = set()
            for pos in ("verb", "adj", "adv"):
                index = self.directory / f"index.{pos}"
                if index.is_file():
                    words.update(line.split(" ", 1)[0] for line in _data_lines(index))
                exceptions = self.directory / f"{pos}.exc"
                if exceptions.is_file():
                    words.update(line.split(" ", 1)[0] for line in _data_lines(exceptions))
            self._other_vocabulary = frozenset(words)
        return self._other_vocabulary

    def all_synsets(self):
        return self._synsets.values()

    def synset(self, offset: int) -> Synset:
        return self._synsets[offset]

    def ancestors(self, synset: Synset) -> list[Synset]:
        """Every hypernym above ``synset``, nearest first (breadth-first, each once)."""
        seen: set[int] = {synset.offset}
        frontier = list(synset.hypernyms)
        order: list[Synset] = []
        while frontier:
            following: list[int] = []
            for offset in frontier:
                if offset in seen:
                    continue
                seen.add(offset)
                parent = self._synsets[offset]
                order.append(parent)
                following.extend(parent.hypernyms)
            frontier = following
        return order


@lru_cache(maxsize=2)
def load_wordnet(directory: str | None = None) -> WordNet:
    """One shared, read-only WordNet per directory (reading it takes about a second)."""
    return WordNet(directory)


def _read_index(path: Path) -> dict[str, tuple[int, ...]]:
    """index.noun: ``lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...``."""
    index: dict[str, tuple[int, ...]] = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("  "):  # the licence header
                continue
            fields = line.split()
            n_pointers = int(fields[3])
            index[fields[0]] = tuple(int(offset) for offset in fields[6 + n_pointers:])
    return index


def _read_data(path: Path) -> dict[int, Synset]:
    """data.noun: ``offset lex_filenum ss_type w_cnt (word lex_id)... p_cnt (symbol offset pos src/tgt)... | gloss``."""
    synsets: dict[int, Synset] = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("  "):
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            n_words = int(fields[3], 16)
            lemmas = tuple(fields[4 + 2 * i].lower() for i in range(n_words))
            at = 4 + 2 * n_words
            n_pointers = int(fields[at])
            pointers = [fields[at + 1 + 4 * i: at + 5 + 4 * i] for i in range(n_pointers)]
            hypernyms = tuple(int(offset) for symbol, offset, pos, _ in pointers
                              if symbol in HYPERNYM_POINTERS and pos == "n")
            offset = int(fields[0])
            synsets[offset] = Synset(offset, tuple(dict.fromkeys(lemmas)), gloss.strip(), hypernyms)
    return synsets


def _data_lines(path: Path):
    """The lines of a WordNet file after its licence header (which starts with two spaces)."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if not line.startswith("  ") and line.strip():
                yield line


def _read_exceptions(path: Path) -> dict[str, tuple[str, ...]]:
    """noun.exc: ``inflected base...`` per line ("feet foot")."""
    exceptions: dict[str, tuple[str, ...]] = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            fields = line.split()
            if len(fields) >= 2:
                exceptions[fields[0]] = tuple(fields[1:])
    return exceptions
