"""The one place where input is checked.  Every public entry point goes through these functions, so an
error message for the same mistake reads the same everywhere.  Checks raise, they never ``assert``."""

from __future__ import annotations

import numbers
from typing import Any, Iterable

import numpy as np

from .errors import (
    DimensionMismatchError,
    DuplicateIdError,
    EmptyBatchError,
    InvalidIdError,
    InvalidInputError,
    InvalidKError,
    NonFiniteVectorError,
)

MAX_K = 100_000


def as_matrix(vectors: Any, dim: int, *, what: str = "vectors", allow_empty: bool = False,
              finite: bool = True) -> np.ndarray:
    """Coerce ``vectors`` to a 2-D C-contiguous float32 array of ``dim`` columns; a 1-D input is one row.
    ``finite=False`` leaves NaN and inf in an array that needs no conversion to the caller, which hands it to an
    index: every ``Index.search`` refuses them (a single query's kernel checks them as it reads the query)."""
    if (type(vectors) is np.ndarray and vectors.dtype == np.float32 and vectors.flags.c_contiguous
            and 0 < vectors.ndim <= 2 and vectors.size and vectors.shape[-1] == dim):
        if not finite:
            return vectors.reshape(-1, dim)
        total = float(vectors.sum()) if vectors.size <= 4096 else 0.0  # a NaN or inf makes the sum NaN or inf
        if total - total == 0.0 and (vectors.size <= 4096 or np.isfinite(vectors).all()):
            return vectors.reshape(-1, dim)  # the common case: already what search needs (a view, no copy)
    try:
        arr = np.asarray(vectors)
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        raise InvalidInputError(f"{what} must be a 2-D array of numbers: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise InvalidInputError(f"{what} must be numeric, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise InvalidInputError(f"{what} must be real numbers, got complex")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if arr.size else arr.reshape(0, dim)
    if arr.ndim != 2:
        raise InvalidInputError(f"{what} must be 1-D (one vector) or 2-D (a batch), got {arr.ndim}-D")
    if arr.shape[0] == 0 and not allow_empty:
        raise EmptyBatchError(f"{what} is an empty batch: pass at least one vector")
    if arr.shape[1] != dim:
        raise DimensionMismatchError(
            f"expected {dim} dims, got {arr.shape[1]}: the collection or index was created with dim={dim} "
            "(another embedding model?)"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        raise NonFiniteVectorError(
            f"{what} contain NaN or inf in {len(bad)} row(s), first at row {int(bad[0])}: clean the data first"
        )
    return arr


FLOAT32 = np.dtype(np.float32)


def one_query(vectors: Any, k: Any, dim: int) -> np.ndarray | None:
    """``vectors`` as the (1, dim) view the short ways for a single query take (``Index.search_one``), when it is
    one C-contiguous float32 vector (1-D, or one row) and ``k`` a valid int; else None, and the general path
    converts, checks or raises.  NaN and inf are left to the kernels, which find them as they read the query."""
    if (type(vectors) is np.ndarray and type(k) is int and 0 < k <= MAX_K and vectors.dtype == FLOAT32
            and vectors.flags.c_contiguous and 0 < vectors.ndim <= 2 and vectors.size == vectors.shape[-1] == dim):
        return vectors.reshape(1, dim)
    return None


def check_k(k: Any) -> int:
    """k must be an int >= 1 (a bool or a float is refused, even 10.0)."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
        raise InvalidKError(f"k must be a positive integer, got {k!r} ({type(k).__name__})")
    k = int(k)
    if k < 1:
        raise InvalidKError(f"k must be >= 1, got {k}")
    if k > MAX_K:
        raise InvalidKError(f"k must be <= {MAX_K}, got {k}: page through results instead")
    return k


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    from .errors import InvalidParameterError

    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise InvalidParameterError(f"{name} must be >= {minimum}, got {int(value)}")
    return int(value)


def as_labels(ids: Any, n: int | None = None) -> np.ndarray:
    """Integer labels an index speaks: 1-D int64, unique, and ``n`` of them when ``n`` is given."""
    arr = np.asarray(ids)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise InvalidIdError(f"ids must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InvalidIdError(f"index ids must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if n is not None and len(arr) != n:
        raise InvalidInputError(f"got {len(arr)} ids for {n} vectors: pass one id per vector")
    if len(arr) == 0:
        raise EmptyBatchError("ids is an empty batch: pass at least one id")
    if arr.size and (arr < 0).any():
        raise InvalidIdError("index ids must be >= 0 (-1 is the padding value of results)")
    if len(arr) > 1:
        ordered = np.sort(arr)
        repeated = ordered[1:] == ordered[:-1]
        if repeated.any():
            first = int(ordered[1:][repeated][0])
            raise DuplicateIdError(f"id {first} appears twice in one call: ids in a batch must be unique")
    return arr


def check_unique(ids: Iterable[Any]) -> None:
    """Ids of one call must be distinct (str and int ids never compare equal: "1" and 1 are two ids)."""
    ids = list(ids)
    if len(set(ids)) == len(ids):
        return
    seen: set = set()
    for i in ids:
        if i in seen:
            raise DuplicateIdError(f"id {i!r} appears twice in one call: ids in a batch must be unique")
        seen.add(i)
