"""lookalike as a LangChain vector store (``pip install "lookalike[langchain]"``).

    from lookalike.integrations.langchain import LookalikeVectorStore
    store = LookalikeVectorStore(embeddings, path="my-db")                       # embedded
    store = LookalikeVectorStore(embeddings, client=lookalike.Client(url))       # a lookalike server

One LangChain document is one point of a lookalike collection: its id (a string: given, or a random UUID when
absent), the embedding of its text, and its metadata, with the text itself stored under the reserved metadata key
``_page_content``.  ``filter=`` takes lookalike's ``where`` syntax (``{"lang": "en"}``, ``{"year": {"$gte": 2020}}``,
``$in``, ``$and``, ...).  ``similarity_search_with_score`` returns the collection metric's distance (smaller is
closer); ``similarity_search_with_relevance_scores`` turns it into a relevance in [0, 1].  The collection is created
on the first write, with the dimension of the first embeddings.  Extra search keywords go to lookalike: ``index=``
picks an index, anything else is a query parameter of it (``nprobe=8``, ``ef=64``).

The async methods await the embeddings model natively (``aembed_query`` / ``aembed_documents``) and run the storage
call in a worker thread; a lock keeps the (not thread-safe) embedded collection to one call at a time.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from ..database import Database, check_name
from ..errors import CollectionNotFoundError, IdNotFoundError, InvalidInputError, InvalidParameterError
from ..metrics import get_metric
from .embeddings import LookalikeEmbeddings

TEXT_KEY = "_page_content"  # the metadata key that holds a document's text


class LookalikeVectorStore(VectorStore):
    """A LangChain ``VectorStore`` on a lookalike collection.

    ``path`` opens (or creates) an embedded database, ``client`` a server (a ``lookalike.Client`` or its URL);
    with neither, the store lives in a temporary directory removed when the store is garbage-collected."""

    def __init__(self, embedding: Embeddings, path: str | os.PathLike | Database | None = None,
                 client: Any = None, collection_name: str = "langchain", metric: str = "cosine"):
        if path is not None and client is not None:
            raise InvalidInputError("pass path= (an embedded database) or client= (a server), not both")
        self._embedding = embedding
        self.collection_name = check_name(collection_name)
        self.metric = get_metric(metric).name
        self._lock = threading.RLock()
        self._collection: Any = None
        if client is not None:
            from ..client import Client

            self._db: Any = Client(client) if isinstance(client, str) else client
        elif isinstance(path, Database):
            self._db = path
        elif path is not None:
            self._db = Database(path)
        else:
            directory = tempfile.mkdtemp(prefix="lookalike-langchain-")
            self._db = Database(os.path.join(directory, "db"))
            weakref.finalize(self, _remove_temporary, self._db, directory)

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    @property
    def collection(self) -> Any:
        """The lookalike collection (a ``Collection`` or ``RemoteCollection``), or None before the first write."""
        with self._lock:
            if self._collection is None:
                try:
                    self._collection = self._db.get_collection(self.collection_name)
                except CollectionNotFoundError:
                    return None
            return self._collection

    def delete_collection(self) -> None:
        """Drop the whole collection (the next write creates it again)."""
        with self._lock:
            self._collection = None
            if self.collection_name in self._db.list_collections():
                self._db.drop_collection(self.collection_name)

    # ================================================================== writes
    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *, ids: list[str] | None = None,
                  **kwargs: Any) -> list[str]:
        """Embed and upsert texts: a document whose id is already stored is replaced.  Returns the ids."""
        texts = list(texts)
        ids = _ids_for(texts, ids)
        return self._upsert(texts, self._embedding.embed_documents(texts) if texts else [], metadatas, ids)

    async def aadd_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *,
                         ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        texts = list(texts)
        ids = _ids_for(texts, ids)
        vectors = await self._embedding.aembed_documents(texts) if texts else []
        return await asyncio.to_thread(self._upsert, texts, vectors, metadatas, ids)

    def _upsert(self, texts: list[str], vectors: Any, metadatas: list[dict] | None, ids: list[str]) -> list[str]:
        if not texts:
            return []
        if metadatas is not None and len(metadatas) != len(texts):
            raise InvalidInputError(f"got {len(metadatas)} metadatas for {len(texts)} texts: pass one per text")
        stored = [_stored_metadata(meta, text) for meta, text in zip(metadatas or [None] * len(texts), texts)]
        vectors = np.asarray(vectors, dtype=np.float32)
        with self._lock:
            collection = self.collection
            if collection is None:
                collection = self._collection = self._db.get_or_create_collection(
                    self.collection_name, vectors.shape[-1], self.metric, **self._embedder_record())
            collection.upsert(ids, vectors, stored)
        return ids

    def _embedder_record(self) -> dict[str, Any]:
        """Record a lookalike embedder on the collection, so the server can also search it by text."""
        if isinstance(self._embedding, LookalikeEmbeddings):
            from ..embed.base import available_embedders

            if self._embedding.embedder.name.partition(":")[0] in available_embedders():
                return {"embedder": self._embedding.embedder.name}
        return {}

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete documents by id (ids not stored are ignored), by ``filter=`` on metadata, or all of them
        (no ids and no filter).  Returns True."""
        where = _where(kwargs)
        if kwargs:
            raise InvalidParameterError(f"delete takes ids and filter=, not {sorted(kwargs)}")
        with self._lock:
            collection = self.collection
            if collection is None:
                return True
            if ids is None:
                collection.delete(where=where if where is not None else {})  # {} matches every point
                return True
            if where is not None:
                raise InvalidInputError("delete takes ids or filter=, not both")
            wanted = list(dict.fromkeys(str(i) for i in ids))
            if not wanted:
                return True
            try:
                present = [i for i, found in zip(wanted, collection.has(wanted)) if found]
                if present:
                    collection.delete(present)
            except IdNotFoundError:  # deleted by someone else in between (a server has other clients): once more
                present = [i for i, found in zip(wanted, collection.has(wanted)) if found]
                if present:
                    collection.delete(present)
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        return await asyncio.to_thread(self.delete, ids, **kwargs)

    # ================================================================== reads
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents of the ids that are stored, in the order asked (unknown ids are left out)."""
        wanted = list(dict.fromkeys(str(i) for i in ids))
        with self._lock:
            collection = self.collection
            if collection is None or not wanted:
                return []
            present = [i for i, found in zip(wanted, collection.has(wanted)) if found]
            if not present:
                return []
            points = collection.get(present)
        return [_document(i, meta) for i, meta in zip(points.ids, points.metadatas)]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return await asyncio.to_thread(self.get_by_ids, ids)

    def similarity_search(self, query: str, k: int = 4, filter: dict | None = None, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: dict | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """Documents and their distance to the query (smaller is closer), nearest first."""
        return self.similarity_search_with_score_by_vector(self._embedding.embed_query(query), k, filter, **kwargs)

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, filter: dict | None = None,
                                    **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)]

    def similarity_search_with_score_by_vector(self, embedding: list[float], k: int = 4, filter: dict | None = None,
                                               **kwargs: Any) -> list[tuple[Document, float]]:
        hits = self._search(embedding, k, filter, kwargs)
        return [(_document(i, meta), distance) for i, meta, distance, _ in hits]

    async def asimilarity_search(self, query: str, k: int = 4, filter: dict | None = None,
                                 **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in await self.asimilarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search_with_score(self, query: str, k: int = 4, filter: dict | None = None,
                                            **kwargs: Any) -> list[tuple[Document, float]]:
        vector = await self._embedding.aembed_query(query)
        return await asyncio.to_thread(self.similarity_search_with_score_by_vector, vector, k, filter, **kwargs)

    async def asimilarity_search_by_vector(self, embedding: list[float], k: int = 4, filter: dict | None = None,
                                           **kwargs: Any) -> list[Document]:
        return await asyncio.to_thread(self.similarity_search_by_vector, embedding, k, filter, **kwargs)

    def _search(self, embedding: Any, k: int, filter: dict | None, kwargs: dict[str, Any], *,
                with_vectors: bool = False) -> list[tuple[Any, dict | None, float, np.ndarray | None]]:
        """(id, metadata, distance, vector or None) of the k nearest stored points, nearest first."""
        where = _where(kwargs, filter)
        with self._lock:
            collection = self.collection
            if collection is None:
                return []
            result = collection.query(np.asarray(embedding, dtype=np.float32), k=k, where=where, **kwargs)
            hits = [(i, meta, float(d)) for i, meta, d in zip(result.ids[0], result.metadatas[0], result.distances[0])
                    if i is not None]
            vectors = collection.get([i for i, _, _ in hits]).vectors if with_vectors and hits else None
        return [(i, meta, d, None if vectors is None else vectors[n]) for n, (i, meta, d) in enumerate(hits)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Distance -> relevance in [0, 1] (for unit-length embeddings), per metric."""
        return {"cosine": self._cosine_relevance_score_fn, "l2": self._euclidean_relevance_score_fn,
                "dot": self._max_inner_product_relevance_score_fn}[self.metric]

    # ================================================================== maximal marginal relevance
    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      filter: dict | None = None, **kwargs: Any) -> list[Document]:
        return self.max_marginal_relevance_search_by_vector(self._embedding.embed_query(query), k, fetch_k,
                                                            lambda_mult, filter, **kwargs)

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5, filter: dict | None = None,
                                                **kwargs: Any) -> list[Document]:
        """k documents among the ``fetch_k`` nearest, chosen one by one for relevance to the query minus
        similarity to those already chosen (Carbonell & Goldstein, 1998); ``lambda_mult`` 1 is pure relevance."""
        hits = self._search(embedding, max(fetch_k, k), filter, kwargs, with_vectors=True)
        if not hits:
            return []
        chosen = maximal_marginal_relevance(np.asarray(embedding, dtype=np.float32),
                                            np.stack([vector for *_, vector in hits]), lambda_mult=lambda_mult, k=k)
        return [_document(hits[n][0], hits[n][1]) for n in chosen]

    async def amax_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                             lambda_mult: float = 0.5, filter: dict | None = None,
                                             **kwargs: Any) -> list[Document]:
        vector = await self._embedding.aembed_query(query)
        return await self.amax_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult, filter, **kwargs)

    async def amax_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                       lambda_mult: float = 0.5, filter: dict | None = None,
                                                       **kwargs: Any) -> list[Document]:
        return await asyncio.to_thread(self.max_marginal_relevance_search_by_vector, embedding, k, fetch_k,
                                       lambda_mult, filter, **kwargs)

    # ================================================================== constructors
    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings, metadatas: list[dict] | None = None, *,
                   ids: list[str] | None = None, path: str | os.PathLike | Database | None = None, client: Any = None,
                   collection_name: str = "langchain", metric: str = "cosine",
                   **kwargs: Any) -> "LookalikeVectorStore":
        store = cls(embedding, path=path, client=client, collection_name=collection_name, metric=metric)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def __repr__(self) -> str:
        return f"LookalikeVectorStore({self.collection_name!r}, metric={self.metric!r}, db={self._db!r})"


# ====================================================================== helpers
def _ids_for(texts: list[str], ids: Sequence[Any] | None) -> list[str]:
    """One string id per text: the ones given, a random UUID where none is (None or "")."""
    if ids is None:
        return [str(uuid.uuid4()) for _ in texts]
    ids = list(ids)
    if len(ids) != len(texts):
        raise InvalidInputError(f"got {len(ids)} ids for {len(texts)} texts: pass one id per text")
    return [str(i) if i not in (None, "") else str(uuid.uuid4()) for i in ids]


def _stored_metadata(metadata: dict | None, text: str) -> dict[str, Any]:
    stored = dict(metadata or {})
    if TEXT_KEY in stored:
        raise InvalidInputError(f"metadata key {TEXT_KEY!r} is reserved: it holds the document's text")
    stored[TEXT_KEY] = text
    return stored


def _document(point_id: Any, stored: dict | None) -> Document:
    metadata = dict(stored or {})
    text = metadata.pop(TEXT_KEY, "")
    return Document(id=str(point_id), page_content=text, metadata=metadata)


def _where(kwargs: dict[str, Any], filter: dict | None = None) -> dict | None:
    """The metadata filter, given as ``filter=`` (LangChain's name) or ``where=`` (lookalike's)."""
    where = kwargs.pop("where", None)
    filter = kwargs.pop("filter", None) if filter is None else filter
    if where is not None and filter is not None:
        raise InvalidInputError("give the metadata filter once, as filter= or where=")
    return filter if filter is not None else where


def _remove_temporary(db: Database, directory: str) -> None:
    db.close()
    shutil.rmtree(directory, ignore_errors=True)


__all__ = ["LookalikeEmbeddings", "LookalikeVectorStore", "TEXT_KEY"]
