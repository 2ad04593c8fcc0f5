"""lookalike: a vector database in Python (NumPy + Numba) with a multimodal fashion search engine on top."""

from .errors import *  # noqa: F401,F403  (the error tree is part of the public API)
from .errors import __all__ as _errors
from .index import FlatIndex, Index
from .types import Metric, SearchResult

__version__ = "0.1.0"

__all__ = ["FlatIndex", "Index", "Metric", "SearchResult", *_errors]


def __getattr__(name: str):
    # heavy parts are imported on first use
    if name == "Database":
        from .database import Database

        return Database
    if name == "Collection":
        from .collection import Collection

        return Collection
    if name == "Client":
        from .client import Client

        return Client
    if name in ("IVFIndex", "HNSWIndex", "LSHIndex", "RPForestIndex", "SQ8Index", "IVFPQIndex"):
        from .index.registry import get_index_class

        names = {"IVFIndex": "ivf", "HNSWIndex": "hnsw", "LSHIndex": "lsh", "RPForestIndex": "rp_forest",
                 "SQ8Index": "sq8", "IVFPQIndex": "ivfpq"}
        return get_index_class(names[name])
    raise AttributeError(f"module 'lookalike' has no attribute {name!r}")
