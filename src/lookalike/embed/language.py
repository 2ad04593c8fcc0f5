"""Is a query English?  The default text route reads English words through WordNet and everything else through a
multilingual encoder, so it needs to know which of the two it is looking at.

Two signals, both about the language's grammar, not about garments:
- function words of the other supported languages (articles, prepositions: "des", "una", "eine", "della"), which
  English never uses;
- the share of the query's words that English knows: a word of WordNet (any part of speech, plurals and inflections
  reduced by its own rules) or an English function word.  "maglietta bianca" or "Stiefeletten" have none.
A query with a foreign function word, or with fewer than half of its words English, is not English.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .wordnet import WordNet, load_wordnet

WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

# Articles, prepositions, conjunctions and pronouns of French, Spanish, German and Italian that are not English words.
FOREIGN_FUNCTION_WORDS = frozenset("""
un une des les du de d l au aux à et avec pour sans sur dans ou mon ma mes
el los las una unos unas del con para sin y o mi mis por
ein eine einen einem einer eines der die das den dem mit für aus und oder ohne von vom zum zur im mein meine
il lo gli di da per della delle dei degli del nel nella con senza e o mio mia
""".split())

# English closed-class words (WordNet holds only nouns, verbs, adjectives and adverbs).
ENGLISH_FUNCTION_WORDS = frozenset("""
a an the of for with without to in on at by from into onto over under about as and or but not no nor
i me my mine we us our you your he him his she her it its they them their this that these those
am is are was were be been being do does did have has had will would can could should may might must
some any each every all both either neither such what which who whom whose where when how why
s men women mens womens kids girls boys
""".split())

ENGLISH_SHARE_NEEDED = 0.5


def words_of(text: str) -> list[str]:
    """The lower-case words of ``text`` (letters only: "t-shirt" -> "t", "shirt")."""
    return [word.lower() for word in WORD.findall(text)]


class LanguageGuess:
    """``is_english(text)``: the rule of the module docstring over WordNet's vocabulary."""

    def __init__(self, wordnet: WordNet | None = None) -> None:
        self.wordnet = wordnet or load_wordnet()

    def is_english_word(self, word: str) -> bool:
        return word in ENGLISH_FUNCTION_WORDS or self.wordnet.knows_word(word)

    def english_share(self, text: str) -> float:
        words = words_of(text)
        if not words:
            return 0.0
        return sum(self.is_english_word(word) for word in words) / len(words)

    def has_foreign_function_words(self, text: str) -> bool:
        return any(word in FOREIGN_FUNCTION_WORDS for word in words_of(text))

    def is_english(self, text: str) -> bool:
        if self.has_foreign_function_words(text):
            return False
        return self.english_share(text) >= ENGLISH_SHARE_NEEDED


@lru_cache(maxsize=1)
def default_language_guess() -> LanguageGuess:
    return LanguageGuess()
