"""Index implementations, one file per algorithm; ``registry`` maps names to classes."""

from .base import Index
from .flat import FlatIndex
from .registry import available, from_config, get_index_class

__all__ = ["Index", "FlatIndex", "available", "from_config", "get_index_class"]
