"""FlatIndex: exact k-nearest-neighbour search, and the oracle every recall test and benchmark measures against.

Search is a BLAS matrix product by blocks followed by ``argpartition`` (see ``kernels/topk.py``): no
approximation, memory bounded by the block sizes whatever the number of vectors.
"""

from __future__ import annotations

import numpy as np

from ..kernels.topk import exact_topk
from .base import Index


class FlatIndex(Index):
    type_name = "flat"
    query_defaults: dict = {}

    def __init__(self, dim: int, metric: str = "l2"):
        super().__init__(dim, metric)
        self._sq_norms: np.ndarray | None = None  # ||x||^2 per row, cached for l2

    def _on_add(self, start: int, stop: int) -> None:
        self._sq_norms = None

    def _search_rows(self, queries: np.ndarray, k: int, mask: np.ndarray | None):
        if self.spec.kind == "l2" and (self._sq_norms is None or len(self._sq_norms) != self.n_rows):
            self._sq_norms = np.einsum("ij,ij->i", self.vectors, self.vectors)
        return exact_topk(queries, self.vectors, k, self.spec.kind, mask, self._sq_norms)
