"""``lookalike.Client``: a lookalike server (``lookalike serve``) from Python, with the API of ``lookalike.Database``.

    client = lookalike.Client("http://127.0.0.1:8000", api_key=None)
    col = client.get_or_create_collection("docs", dim=384)
    col.upsert(["a", "b"], vectors, [{"lang": "en"}, {"lang": "fr"}])
    result = col.query(queries, k=5, where={"lang": "en"})     # a SearchResult, NumPy arrays as in embedded mode

Errors the server raises come back as the same classes (a DimensionMismatchError on the server is a
DimensionMismatchError here); a server that cannot be reached raises ServerUnavailableError.  See docs/client.md.
"""

from __future__ import annotations

from ..server.protocol import ServerError, ServerUnavailableError
from .remote import Client, RemoteCollection

__all__ = ["Client", "RemoteCollection", "ServerError", "ServerUnavailableError"]
