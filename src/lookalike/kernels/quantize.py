"""Scalar quantization kernels: float32 vectors <-> uint8 codes, and distances computed on the codes.

Each dimension j is mapped linearly from [lo_j, lo_j + 255 * step_j] to 0..255 (trained min/max per dimension),
so a code costs 1 byte per dimension instead of 4.  Distances to a float query are computed on decoded values
inside the loop, without materialising the decoded vectors.
"""

from __future__ import annotations

import numba
import numpy as np

from .heaps import sift_down  # the bounded max-heap every scan uses


def train_ranges(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension offset and step from the data's min and max (a constant dimension gets step 1)."""
    lo = vectors.min(axis=0).astype(np.float32)
    hi = vectors.max(axis=0).astype(np.float32)
    step = (hi - lo) / 255.0
    step[step == 0] = 1.0
    return lo, step.astype(np.float32)


def encode(vectors: np.ndarray, lo: np.ndarray, step: np.ndarray) -> np.ndarray:
    """uint8 codes; values outside the trained range are clipped (later points may fall outside it)."""
    return np.clip(np.rint((vectors - lo) / step), 0, 255).astype(np.uint8)


def decode(codes: np.ndarray, lo: np.ndarray, step: np.ndarray) -> np.ndarray:
    return (codes.astype(np.float32) * step + lo).astype(np.float32)


def _scan_codes(queries, codes, lo, step, is_ip, row_mask, use_mask, n_candidates, out_rows, out_raw):
    """For each query, the ``n_candidates`` rows with the smallest approximate raw distance (max-heap)."""
    n_rows, dim = codes.shape
    for qi in numba.prange(queries.shape[0]):
        q = queries[qi]
        keys = out_raw[qi]
        rows = out_rows[qi]
        worst = keys[0]
        for r in range(n_rows):
            if use_mask and not row_mask[r]:
                continue
            acc = np.float32(0.0)
            if is_ip:
                for j in range(dim):
                    acc -= q[j] * (codes[r, j] * step[j] + lo[j])
            else:
                for j in range(dim):
                    diff = q[j] - (codes[r, j] * step[j] + lo[j])
                    acc += diff * diff
            if acc < worst:
                keys[0] = acc
                rows[0] = r
                sift_down(keys, rows, 0, n_candidates)
                worst = keys[0]


scan_codes = numba.njit(parallel=True, fastmath=True, cache=True)(_scan_codes)
scan_codes_serial = numba.njit(fastmath=True, cache=True)(_scan_codes)
