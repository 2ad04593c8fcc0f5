"""One ``threads`` setting for both kinds of parallelism lookalike uses: Numba ``prange`` loops and BLAS."""

from __future__ import annotations

import os

import numba
from threadpoolctl import threadpool_limits

from ._validation import check_positive_int

_current: int | None = None


def set_num_threads(n: int) -> None:
    """Use at most ``n`` threads for batch search and index builds (Numba kernels and BLAS matmuls)."""
    global _current
    n = check_positive_int(n, "threads")
    n = min(n, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n)
    threadpool_limits(limits=n)
    _current = n


def get_num_threads() -> int:
    return _current if _current is not None else numba.get_num_threads()


if os.environ.get("LOOKALIKE_THREADS"):
    set_num_threads(int(os.environ["LOOKALIKE_THREADS"]))
