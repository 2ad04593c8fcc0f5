"""SQ8Index: scalar quantization to 8 bits per dimension, with exact re-ranking.

The scan reads uint8 codes (a quarter of the float32 bytes, so four times the vectors per cache line and per GB
of RAM), keeps ``rerank * k`` candidates per query, then re-ranks them exactly with the float vectors.  Those are
only touched for the few candidates, so with ``Index.load(dir, mmap=True)`` they stay on disk and the resident
memory of the scan is the codes.  Quantization error moves distances a little; re-ranking restores exact order
among the candidates, and a larger ``rerank`` recovers neighbours the codes misplaced.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_positive_int
from ..kernels.quantize import decode, encode, scan_codes, scan_codes_serial, train_ranges
from .base import GrowableArray, Index

PARALLEL_MIN_QUERIES = 16


class SQ8Index(Index):
    type_name = "sq8"
    query_defaults = {"rerank": 4}
    needs_training = True

    def __init__(self, dim: int, metric: str = "l2"):
        super().__init__(dim, metric)
        self._lo: np.ndarray | None = None
        self._step: np.ndarray | None = None
        self._codes = GrowableArray((dim,), np.uint8)

    @property
    def is_trained(self) -> bool:
        return self._lo is not None

    def _train(self, vectors: np.ndarray) -> None:
        self._lo, self._step = train_ranges(vectors)

    def _on_add(self, start: int, stop: int) -> None:
        new = self.vectors[start:stop]
        hi = self._lo + 255 * self._step
        if (new < self._lo - self._step).any() or (new > hi + self._step).any():
            # points outside the trained range would be clipped into wrong codes: widen the range to cover all
            # points and re-encode (rare: the range only ever grows, so this happens O(log) times in practice)
            everything = self.vectors[:stop]
            self._lo, self._step = train_ranges(everything)
            self._codes = GrowableArray((self.dim,), np.uint8)
            self._codes.extend(encode(everything, self._lo, self._step))
            return
        self._codes.extend(encode(new, self._lo, self._step))

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        """What the codes say the vectors are (for measuring the quantization error)."""
        return decode(self._codes.view[rows], self._lo, self._step)

    def _search_rows(self, queries: np.ndarray, k: int, mask: np.ndarray | None, rerank: int = 4):
        rerank = check_positive_int(rerank, "rerank")
        n_candidates = min(self.n_rows, k * rerank)
        cand_raw = np.full((len(queries), n_candidates), np.inf, dtype=np.float32)
        cand_rows = np.full((len(queries), n_candidates), -1, dtype=np.int64)
        scan = scan_codes if len(queries) >= PARALLEL_MIN_QUERIES else scan_codes_serial
        use_mask = mask is not None
        scan(queries, self._codes.view, self._lo, self._step, self.spec.kind == "ip",
             mask if use_mask else np.ones(1, dtype=np.bool_), use_mask, n_candidates, cand_rows, cand_raw)
        return self._rerank(queries, k, cand_rows)

    def _rerank(self, queries: np.ndarray, k: int, cand_rows: np.ndarray):
        found = cand_rows >= 0
        vectors = self.vectors[np.where(found, cand_rows, 0)]  # (q, c, d): only the candidates are read
        if self.spec.kind == "ip":
            raw = -np.einsum("qcd,qd->qc", vectors, queries)
        else:
            diff = vectors - queries[:, None, :]
            raw = np.einsum("qcd,qcd->qc", diff, diff)
        raw = np.where(found, raw, np.inf).astype(np.float32)
        order = np.argsort(raw, axis=1, kind="stable")[:, :k]
        rows = np.take_along_axis(np.where(found, cand_rows, -1), order, axis=1)
        best = np.take_along_axis(raw, order, axis=1)
        out_rows = np.full((len(queries), k), -1, dtype=np.int64)
        out_raw = np.full((len(queries), k), np.inf, dtype=np.float32)
        out_rows[:, : rows.shape[1]], out_raw[:, : best.shape[1]] = rows, best
        return np.where(np.isfinite(out_raw), out_rows, -1), out_raw

    def _state(self) -> dict[str, np.ndarray]:
        if not self.is_trained:
            return {}
        return {"codes": self._codes.view, "lo": self._lo, "step": self._step}

    def _restore(self, state: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        if "codes" in state:
            self._lo, self._step = np.asarray(state["lo"]), np.asarray(state["step"])
            self._codes = GrowableArray((self.dim,), np.uint8, state["codes"])
