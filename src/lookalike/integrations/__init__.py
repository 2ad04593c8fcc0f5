"""Adapters that let lookalike slot in where other tools already work.

* ``lookalike.integrations.langchain``: ``LookalikeVectorStore`` (a LangChain vector store, embedded or on a server)
  and ``LookalikeEmbeddings`` (any lookalike embedder as a LangChain ``Embeddings``).  Needs the optional extra
  ``lookalike[langchain]`` (langchain-core); nothing here is imported until that module is.
"""
