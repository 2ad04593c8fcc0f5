"""LangChain's own standard suite for vector stores (``langchain_tests.integration_tests.VectorStoreIntegrationTests``),
run on an embedded database and on a server, sync and async, with none of its tests skipped or overridden."""

from __future__ import annotations

import itertools

import pytest
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from lookalike.integrations.langchain import LookalikeVectorStore

_names = itertools.count()


class TestEmbeddedStore(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, tmp_path):
        """An empty store on a database of its own."""
        store = LookalikeVectorStore(self.get_embeddings(), path=tmp_path / "db")
        yield store
        store.delete_collection()


class TestServerStore(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, client):
        """An empty store on a collection of its own, on the shared server."""
        store = LookalikeVectorStore(self.get_embeddings(), client=client, collection_name=f"lc-{next(_names)}")
        yield store
        store.delete_collection()
