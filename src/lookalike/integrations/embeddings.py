"""Any lookalike embedder as a LangChain ``Embeddings``.

    from lookalike.integrations.langchain import LookalikeEmbeddings
    embeddings = LookalikeEmbeddings("minilm-fmnist")           # a registered name, or an Embedder object

lookalike embedders answer ``(n, dim)`` float32 arrays of unit rows; LangChain wants lists of floats.  Embedders are
not re-entrant (Hugging Face tokenizers), and LangChain's async methods call them from worker threads, so one lock
lets one batch through at a time.
"""

from __future__ import annotations

import threading
from typing import Any

from langchain_core.embeddings import Embeddings

from ..embed.base import DEFAULT_EMBEDDER, Embedder, get_embedder
from ..errors import InvalidParameterError


class LookalikeEmbeddings(Embeddings):
    """``LookalikeEmbeddings(embedder="minilm-fmnist", **options)``: ``embedder`` is an ``Embedder`` or the name it
    is registered under (``options`` go to its constructor, as ``get_embedder``)."""

    def __init__(self, embedder: Embedder | str = DEFAULT_EMBEDDER, **options: Any):
        self.embedder = get_embedder(embedder, **options) if isinstance(embedder, str) else embedder
        if not isinstance(self.embedder, Embedder):
            raise InvalidParameterError(
                f"embedder must be a lookalike Embedder or its registered name, got {embedder!r}"
            )
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            return self.embedder.embed_texts(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def __repr__(self) -> str:
        return f"LookalikeEmbeddings({self.embedder.name!r}, dim={self.embedder.dim})"


__all__ = ["LookalikeEmbeddings"]
