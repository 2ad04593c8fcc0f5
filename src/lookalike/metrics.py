"""Metric registry.

Inside the loops every index works on a cheap "raw" distance, smaller is closer:
  * kind "ip" (cosine, dot): raw = -<q, x>; cosine vectors are L2-normalised once, on the way in;
  * kind "l2": raw = ||q - x||^2 (no square root in the loop).
``finalize`` turns raw distances into the distance users see, once, at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UnknownMetricError, ZeroVectorError
from .types import Metric


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # "ip" or "l2": which kernel family computes raw distances
    normalize: bool  # L2-normalise vectors and queries on the way in


_SPECS = {
    "cosine": MetricSpec("cosine", "ip", True),
    "dot": MetricSpec("dot", "ip", False),
    "l2": MetricSpec("l2", "l2", False),
}
_ALIASES = {"euclidean": "l2", "angular": "cosine", "ip": "dot", "inner_product": "dot"}


def get_metric(name: str | Metric) -> MetricSpec:
    key = name.value if isinstance(name, Metric) else name
    if not isinstance(key, str):
        raise UnknownMetricError(f"metric must be a string, got {name!r}")
    key = _ALIASES.get(key.lower(), key.lower())
    if key not in _SPECS:
        raise UnknownMetricError(f"unknown metric {name!r}: choose one of {sorted(_SPECS)}")
    return _SPECS[key]


def row_norms(vectors: np.ndarray, *, what: str = "vectors") -> np.ndarray:
    """Each row's length; a zero row has no direction, so cosine cannot use it (ZeroVectorError)."""
    norms = np.linalg.norm(vectors, axis=1)
    zero = np.flatnonzero(norms == 0)
    if len(zero):
        raise ZeroVectorError(
            f"{what} row {int(zero[0])} is all zeros: a zero vector has no direction under the cosine metric"
        )
    return norms


def normalize_rows(vectors: np.ndarray, *, what: str = "vectors", norms: np.ndarray | None = None) -> np.ndarray:
    """Unit-length rows (``norms``: the rows' lengths, when the caller has them already)."""
    if norms is None:
        norms = row_norms(vectors, what=what)
    return np.ascontiguousarray(vectors / norms[:, None], dtype=np.float32)


def prepare(vectors: np.ndarray, spec: MetricSpec, *, what: str = "vectors") -> np.ndarray:
    return normalize_rows(vectors, what=what) if spec.normalize else vectors


def finalize(raw: np.ndarray, spec: MetricSpec) -> np.ndarray:
    """Raw distances -> user distances.  Padding (+inf) stays +inf."""
    raw = np.asarray(raw, dtype=np.float32)
    if spec.name == "cosine":
        return np.where(np.isfinite(raw), np.maximum(1.0 + raw, 0.0), np.inf).astype(np.float32)
    if spec.name == "dot":
        return raw.copy()
    return np.sqrt(np.maximum(raw, 0.0)).astype(np.float32)


def similarity(distances: np.ndarray, spec: MetricSpec) -> np.ndarray:
    """User distance -> similarity, larger is closer (padding gives -inf)."""
    d = np.asarray(distances, dtype=np.float32)
    if spec.name == "cosine":
        return np.float32(1.0) - d  # padding: 1 - inf = -inf
    if spec.name == "dot":
        return -d
    s = np.float32(1.0) / (np.float32(1.0) + d)  # distances are >= 0: no overflow, no division by zero
    padding = d == np.inf
    if padding.any():
        s[padding] = -np.inf
    return s


def raw_distances(queries: np.ndarray, vectors: np.ndarray, spec: MetricSpec) -> np.ndarray:
    """Dense raw distances (q, n) through BLAS; the reference every kernel is checked against."""
    scores = queries @ vectors.T
    if spec.kind == "ip":
        return -scores
    sq = (queries * queries).sum(1)[:, None] - 2.0 * scores + (vectors * vectors).sum(1)[None, :]
    return np.maximum(sq, 0.0)
