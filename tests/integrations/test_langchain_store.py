"""What the standard suite does not cover: metadata filters, maximal marginal relevance, relevance scores, retrievers,
deletes by filter, the reserved text key, and the adapter that makes a lookalike embedder a LangChain Embeddings."""

from __future__ import annotations

import asyncio
import hashlib
import itertools

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

import lookalike
from lookalike.embed.base import TEXT, Embedder, EmbedderSpec, register_embedder
from lookalike.errors import DuplicateIdError, InvalidInputError, InvalidParameterError
from lookalike.integrations.langchain import TEXT_KEY, LookalikeEmbeddings, LookalikeVectorStore

_names = itertools.count()


class TableEmbeddings(Embeddings):
    """Texts named after the vectors they stand for, so that tests choose the geometry."""

    TABLE = {"x": [1.0, 0.0, 0.0], "x-twin": [0.99, 0.02, 0.0], "y": [0.8, -0.6, 0.0], "z": [0.0, 0.0, 1.0],
             "query": [1.0, -0.05, 0.0]}

    def embed_documents(self, texts):
        return [self.TABLE[text] for text in texts]

    def embed_query(self, text):
        return self.TABLE[text]


class HashEmbedder(Embedder):
    """A lookalike embedder for tests: a text is a seeded random vector."""

    name = "test-hash"
    dim = 16
    modalities = frozenset({TEXT})

    def _embed_text_batch(self, texts):
        seeds = [int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little") for t in texts]
        return np.asarray([np.random.default_rng(s).normal(size=self.dim) for s in seeds], dtype=np.float32)


register_embedder("test-hash", EmbedderSpec(f"{__name__}:HashEmbedder", frozenset({TEXT}), 16, "tests only"))


@pytest.fixture(params=["embedded", "server"])
def make_store(request, tmp_path, client):
    """A factory of empty stores: on a database of its own, or on a fresh collection of the shared server."""
    made = []

    def make(embedding=None, **options):
        target = {"path": tmp_path / "db"} if request.param == "embedded" else {"client": client}
        store = LookalikeVectorStore(embedding or TableEmbeddings(), collection_name=f"store-{next(_names)}",
                                     **target, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.delete_collection()


def texts_of(documents):
    return [doc.page_content for doc in documents]


def test_metadata_filters_use_lookalike_where(make_store):
    store = make_store()
    store.add_texts(["x", "x-twin", "y", "z"], [{"lang": "en", "year": 2019}, {"lang": "fr", "year": 2021},
                                               {"lang": "en", "year": 2023}, {"lang": "de"}], ids=["1", "2", "3", "4"])
    assert texts_of(store.similarity_search("query", k=4, filter={"lang": "en"})) == ["x", "y"]
    assert texts_of(store.similarity_search("query", k=4, filter={"year": {"$gte": 2020}})) == ["x-twin", "y"]
    assert texts_of(store.similarity_search("query", k=4, where={"lang": {"$in": ["de", "fr"]}})) == ["x-twin", "z"]
    assert store.similarity_search("query", k=4, filter={"lang": "it"}) == []
    with pytest.raises(InvalidInputError):
        store.similarity_search("query", filter={"lang": "en"}, where={"lang": "fr"})


def test_scores_and_relevance(make_store):
    store = make_store()
    store.add_texts(["x", "y", "z"])
    scored = store.similarity_search_with_score("x", k=3)
    assert [doc.page_content for doc, _ in scored] == ["x", "y", "z"]
    distances = [score for _, score in scored]
    assert distances == sorted(distances) and distances[0] == pytest.approx(0.0, abs=1e-6)  # cosine distance
    relevance = store.similarity_search_with_relevance_scores("x", k=3)
    assert relevance[0][1] == pytest.approx(1.0, abs=1e-6) and relevance[2][1] == pytest.approx(0.0, abs=1e-6)
    above = store.similarity_search_with_relevance_scores("x", k=3, score_threshold=0.5)
    assert texts_of(doc for doc, _ in above) == ["x", "y"]


def test_maximal_marginal_relevance_trades_relevance_for_diversity(make_store):
    store = make_store()
    store.add_texts(["x", "x-twin", "y", "z"])
    assert texts_of(store.similarity_search("query", k=2)) == ["x", "x-twin"]
    diverse = store.max_marginal_relevance_search("query", k=2, fetch_k=4, lambda_mult=0.5)
    assert texts_of(diverse) == ["x", "y"]  # the near duplicate of x gives way
    relevant = store.max_marginal_relevance_search_by_vector(TableEmbeddings.TABLE["query"], k=2, lambda_mult=1.0)
    assert texts_of(relevant) == ["x", "x-twin"]
    only_z = store.max_marginal_relevance_search("query", k=2, filter={TEXT_KEY: "z"})
    assert texts_of(only_z) == ["z"]
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 4, "lambda_mult": 0.5})
    assert texts_of(mmr.invoke("query")) == ["x", "y"]


def test_async_variants_answer_as_the_sync_ones(make_store):
    store = make_store()

    async def run():
        ids = await store.aadd_texts(["x", "x-twin", "y", "z"], [{"n": i} for i in range(4)])
        near = await store.asimilarity_search("query", k=2)
        scored = await store.asimilarity_search_with_score("query", k=1)
        by_vector = await store.asimilarity_search_by_vector(TableEmbeddings.TABLE["z"], k=1)
        mmr = await store.amax_marginal_relevance_search("query", k=2, fetch_k=4, lambda_mult=0.5)
        retrieved = await store.as_retriever(search_kwargs={"k": 1, "filter": {"n": 3}}).ainvoke("query")
        await store.adelete([ids[0]])
        left = await store.aget_by_ids(ids)
        return near, scored, by_vector, mmr, retrieved, left

    near, scored, by_vector, mmr, retrieved, left = asyncio.run(run())
    assert texts_of(near) == ["x", "x-twin"] and scored[0][0].page_content == "x"
    assert texts_of(by_vector) == ["z"] and texts_of(mmr) == ["x", "y"] and texts_of(retrieved) == ["z"]
    assert texts_of(left) == ["x-twin", "y", "z"]


def test_deletes_by_id_by_filter_and_all(make_store):
    store = make_store()
    store.add_texts(["x", "x-twin", "y", "z"], [{"keep": True}, {"keep": False}, {"keep": False}, {"keep": True}],
                    ids=["a", "b", "c", "d"])
    assert store.delete(["a", "a", "missing"]) is True  # repeats and unknown ids are ignored
    assert [doc.id for doc in store.get_by_ids(["a", "b", "c", "d"])] == ["b", "c", "d"]
    store.delete(filter={"keep": False})
    assert [doc.id for doc in store.get_by_ids(["b", "c", "d"])] == ["d"]
    store.delete()
    assert store.similarity_search("query", k=4) == [] and len(store.collection) == 0
    with pytest.raises(InvalidParameterError):
        store.delete(["d"], bogus=1)


def test_documents_round_trip_with_their_text_in_reserved_metadata(make_store):
    store = make_store()
    ids = store.add_documents([Document(page_content="x", metadata={"source": "a.txt", "page": 3}, id="doc-1"),
                               Document(page_content="y")])
    assert ids[0] == "doc-1" and len(ids[1]) == 36  # a UUID where none was given
    point = store.collection.get(["doc-1"])
    assert point.metadatas[0] == {"source": "a.txt", "page": 3, TEXT_KEY: "x"}
    assert store.get_by_ids(["doc-1", ids[1], "doc-1"]) == [
        Document(id="doc-1", page_content="x", metadata={"source": "a.txt", "page": 3}),
        Document(id=ids[1], page_content="y", metadata={})]
    with pytest.raises(InvalidInputError, match="reserved"):
        store.add_texts(["z"], [{TEXT_KEY: "smuggled"}])
    with pytest.raises(InvalidInputError):
        store.add_texts(["z", "y"], ids=["only-one"])
    with pytest.raises(DuplicateIdError):
        store.add_texts(["z", "y"], ids=["same", "same"])
    assert store.add_texts([]) == []


def test_search_keywords_reach_the_index(make_store):
    store = make_store(metric="l2")
    store.add_texts(["x", "x-twin", "y", "z"])
    store.collection.create_index("ivf", nlist=2)
    assert texts_of(store.similarity_search("query", k=2, index="ivf", nprobe=2)) == ["x", "x-twin"]
    with pytest.raises(InvalidParameterError):
        store.similarity_search("query", k=2, index="ivf", ef=10)


def test_from_texts_and_an_existing_collection(make_store, tmp_path):
    first = make_store()
    name = first.collection_name
    first.add_texts(["x", "y"], ids=["1", "2"])
    target = {"path": first._db} if isinstance(first._db, lookalike.Database) else {"client": first._db}
    reopened = LookalikeVectorStore(TableEmbeddings(), collection_name=name, **target)
    assert texts_of(reopened.similarity_search("x", k=1)) == ["x"]  # the data is found again
    built = LookalikeVectorStore.from_texts(["z", "y"], TableEmbeddings(), [{"n": 1}, {"n": 2}], ids=["a", "b"],
                                            collection_name=f"{name}-new", **target)
    assert built.get_by_ids(["b"])[0].metadata == {"n": 2}
    built.delete_collection()


def test_a_store_without_path_or_client_is_temporary():
    store = LookalikeVectorStore(TableEmbeddings())
    store.add_texts(["x", "y"])
    directory = store._db.path.parent
    assert texts_of(store.similarity_search("y", k=1)) == ["y"] and directory.exists()
    del store
    import gc

    gc.collect()
    assert not directory.exists()
    with pytest.raises(InvalidInputError):
        LookalikeVectorStore(TableEmbeddings(), path="somewhere", client="http://127.0.0.1:1")


def test_a_lookalike_embedder_is_a_langchain_embeddings(make_store):
    embeddings = LookalikeEmbeddings("test-hash")
    vectors = embeddings.embed_documents(["a red dress", "white sneakers"])
    assert len(vectors) == 2 and len(vectors[0]) == embeddings.dim == 16
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # lookalike embedders answer unit rows
    assert embeddings.embed_query("white sneakers") == vectors[1]
    assert asyncio.run(embeddings.aembed_query("a red dress")) == vectors[0]
    assert embeddings.embed_documents([]) == []
    assert LookalikeEmbeddings(HashEmbedder()).embed_query("white sneakers") == vectors[1]
    with pytest.raises(InvalidParameterError):
        LookalikeEmbeddings(object())
    store = make_store(embeddings)
    store.add_texts(["a red dress", "white sneakers", "a wool coat"])
    assert texts_of(store.similarity_search("white sneakers", k=1)) == ["white sneakers"]
    assert store.collection.embedder == "test-hash"  # recorded, so the server can search it by text too


def test_a_store_written_through_langchain_is_searchable_by_text_on_the_server(server, client):
    import httpx

    store = LookalikeVectorStore(LookalikeEmbeddings("test-hash"), client=client, collection_name="by-text")
    store.add_texts(["a red dress", "white sneakers", "a wool coat"], ids=["d", "s", "c"])
    hits = httpx.post(f"{server.url}/api/collections/by-text/search", json={"text": "white sneakers", "k": 1})
    assert hits.json()["hits"][0]["id"] == "s"
    store.delete_collection()
