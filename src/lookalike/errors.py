"""The lookalike error tree.

Every error lookalike raises on purpose is a ``LookalikeError``.  Each subclass also inherits the built-in
exception a Python user would expect (``except KeyError`` still catches an unknown id), and carries the HTTP
status the server answers with, so the server maps errors to responses in one place.

    LookalikeError (Exception)                       500
    ├── InvalidInputError (ValueError)               400  malformed input in general
    │   ├── DimensionMismatchError                   400  vector of the wrong length
    │   ├── NonFiniteVectorError                     400  NaN or inf in a vector
    │   ├── ZeroVectorError                          400  all-zero vector under the cosine metric
    │   ├── EmptyBatchError                          400  no vectors / no ids in a call
    │   ├── InvalidKError                            400  k not a positive int
    │   ├── InvalidParameterError                    400  unknown / out-of-range build or query parameter
    │   ├── UnknownMetricError                       400  metric name not in the registry
    │   ├── UnknownIndexTypeError                    400  index type not in the registry
    │   ├── InvalidFilterError                       400  a `where` filter that is not well formed
    │   ├── InvalidIdError                           400  an id that is neither str nor int
    │   ├── InvalidNameError                         400  a collection name that is not allowed
    │   ├── UnreadableImageError                     400  not an image, or bytes PIL cannot decode (or a bomb)
    │   ├── UnsupportedModalityError                 400  texts to an image-only embedder, or the reverse
    │   ├── UnknownEmbedderError                     400  an embedder name not in the registry
    │   ├── NoEmbedderError                          400  a text or photo query of a collection with no embedder
    │   └── DuplicateIdError                         409  id given twice, or already stored on add
    ├── IdNotFoundError (KeyError)                   404  unknown id on get / delete
    ├── CollectionNotFoundError (KeyError)           404  unknown collection
    ├── CollectionExistsError (ValueError)           409  create_collection on an existing name
    ├── IndexNotBuiltError (RuntimeError)            409  query/use of an index that is not built or trained
    ├── EmbedderMismatchError (ValueError)           409  query with another embedder than the collection's
    ├── EmbedderUnavailableError (RuntimeError)      503  the embedder's weights or optional dependencies are missing
    ├── StorageFormatError (OSError)                 500  a file or directory that is not ours or is corrupt
    ├── StorageFullError (OSError)                   507  the disk is full: the write was rolled back, nothing lost
    └── StorageBusyError (TimeoutError)              503  another writer held the lock past the busy timeout
"""

from __future__ import annotations


class LookalikeError(Exception):
    """Base of every error lookalike raises on purpose."""

    http_status = 500

    @property
    def type_name(self) -> str:
        return type(self).__name__


class InvalidInputError(LookalikeError, ValueError):
    http_status = 400


class DimensionMismatchError(InvalidInputError):
    pass


class NonFiniteVectorError(InvalidInputError):
    pass


class ZeroVectorError(InvalidInputError):
    pass


class EmptyBatchError(InvalidInputError):
    pass


class InvalidKError(InvalidInputError):
    pass


class InvalidParameterError(InvalidInputError):
    pass


class UnknownMetricError(InvalidInputError):
    pass


class UnknownIndexTypeError(InvalidInputError):
    pass


class InvalidFilterError(InvalidInputError):
    pass


class InvalidIdError(InvalidInputError):
    pass


class InvalidNameError(InvalidInputError):
    pass


class UnreadableImageError(InvalidInputError):
    pass


class NoEmbedderError(InvalidInputError):
    """A text or photo query on a collection that records no embedder (search it by vector)."""


class UnsupportedModalityError(InvalidInputError):
    pass


class UnknownEmbedderError(InvalidInputError):
    pass


class DuplicateIdError(InvalidInputError):
    http_status = 409


class IdNotFoundError(LookalikeError, KeyError):
    http_status = 404

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0]) if self.args else ""


class CollectionNotFoundError(LookalikeError, KeyError):
    http_status = 404

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CollectionExistsError(LookalikeError, ValueError):
    http_status = 409


class IndexNotBuiltError(LookalikeError, RuntimeError):
    http_status = 409


class EmbedderMismatchError(LookalikeError, ValueError):
    http_status = 409


class EmbedderUnavailableError(LookalikeError, RuntimeError):
    http_status = 503


class StorageFormatError(LookalikeError, OSError):
    http_status = 500


class StorageFullError(LookalikeError, OSError):
    http_status = 507


class StorageBusyError(LookalikeError, TimeoutError):
    http_status = 503


__all__ = [name for name in dir() if name.endswith("Error")]
