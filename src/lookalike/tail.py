"""The unindexed tail: points written since an index last caught up.  Writes never wait for an index: a search
answers from the index plus an exact scan of the tail, merged into one top-k, so a new point is found at once;
the indexer folds the tail into the index in short steps, beside the searches.

The tail is the flat index's rows past the ones the index holds (an attached index's row r is the flat's row r),
so it needs no bookkeeping of its own: deleted rows are skipped by the flat's live flags, like everywhere else.
An HNSW index takes new rows while searches go on (``concurrent_add``): a search scans exactly every row past
those the graph had when it started (``searchable_rows``), so none is missed, and keeps a point found both ways
once.
Its exact scan costs a matrix product over at most ``tail_limit(dim)`` rows (16 MB of vectors: 32,768 rows of
128 floats, about 1 ms per query here); a write that leaves more behind indexes until it is back under the
limit (back-pressure: the writer pays, never the readers).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

import numpy as np

from .index.base import Index
from .index.flat import FlatIndex
from .metrics import prepare
from .types import SearchResult

TAIL_BYTES = 16 << 20
STEP_SECONDS = 0.004  # an indexing step holds the collection exclusively for about this long
CONCURRENT_STEP_FACTOR = 10  # a step nobody waits for (HNSW links beside searches) may last 10x longer
FIRST_STEP_ROWS = 32
INDEXER_NICE = 10  # the background indexer's thread runs at this niceness
QUIET_S = 0.05  # the indexer starts once no write came for this long (or the tail is past half its limit)
SAVE_WHEN_IDLE_S = 2.0  # index files are saved once writes pause this long (or every SAVE_AT_LEAST_S under load)
SAVE_AT_LEAST_S = 120.0


def tail_limit(dim: int) -> int:
    """How many unindexed rows a collection of this dimension keeps before the writer helps the indexer."""
    return max(2048, TAIL_BYTES // (4 * dim))


def unindexed(index: Index, flat: FlatIndex) -> int:
    return max(0, flat.n_rows - index.n_rows)


def search_with_tail(index: Index, flat: FlatIndex, queries: np.ndarray, k: int, allowed: Any,
                     params: dict[str, Any]) -> SearchResult:
    """The index's answer merged with the exact answer over the flat's rows it does not hold yet."""
    start = index.searchable_rows  # read before the search: rows an insertion adds meanwhile are in the tail too
    result = index.search(queries, k, allowed_ids=allowed, **params)
    if start >= flat.n_rows:
        return result
    mask = np.asarray(flat.live[start:])
    if allowed is not None:
        mask = mask & flat._mask_of(allowed)[start:]
    if not mask.any():
        return result
    q = prepare(np.asarray(queries, dtype=np.float32).reshape(-1, flat.dim), flat.spec, what="queries")
    rows, raw = flat.search_rows_from(start, q, k, mask)
    return merge_results(result, flat._result(rows, raw), k)


def merge_results(a: SearchResult, b: SearchResult, k: int) -> SearchResult:
    """One top-k of two answers (distances: smaller is nearer, padding +inf).  A point in both (one the index
    linked while the tail was scanned) is kept once."""
    ids = np.concatenate([a.ids, b.ids], axis=1)
    distances = np.concatenate([a.distances, b.distances], axis=1)
    order = np.argsort(distances, axis=1, kind="stable")
    ids, distances = np.take_along_axis(ids, order, axis=1), np.take_along_axis(distances, order, axis=1)
    if len(np.intersect1d(a.ids[a.ids >= 0], b.ids[b.ids >= 0])):
        for row in range(len(ids)):
            _, first = np.unique(ids[row], return_index=True)
            keep = np.sort(first[ids[row][first] >= 0])
            kept = np.full(ids.shape[1], -1, dtype=ids.dtype)
            kept_d = np.full(ids.shape[1], np.inf, dtype=distances.dtype)
            kept[: len(keep)], kept_d[: len(keep)] = ids[row][keep], distances[row][keep]
            ids[row], distances[row] = kept, kept_d
    return SearchResult(ids=ids[:, :k], distances=distances[:, :k])


class StepSize:
    """How many rows one indexing step takes, adapted so that a step lasts about STEP_SECONDS."""

    def __init__(self) -> None:
        self.rows = FIRST_STEP_ROWS

    def measured(self, rows: int, seconds: float) -> None:
        if rows <= 0:
            return
        per_row = max(seconds, 1e-6) / rows
        self.rows = int(np.clip(STEP_SECONDS / per_row, 8, 1 << 16))


class BackgroundIndexer:
    """A daemon thread that keeps a collection's indexes caught up with its writes.  Woken by each write, it first
    lets a burst of writes pass (it waits until none came for QUIET_S) unless the tail is past half its limit,
    then runs ``step()`` (one short indexing step, returns whether work is left) until the tail is empty or a new
    write comes in; once writes pause for SAVE_WHEN_IDLE_S it runs ``rest()`` (save the index files, off the
    request path: saving a large graph after every write would compete with the searches).  Its thread runs
    at low priority on one core: nobody waits for it, it uses what searches and writes leave.  ``stop()`` ends
    it after the step in progress."""

    def __init__(self, name: str, step: Callable[[], bool], rest: Callable[[], None], urgent: Callable[[], bool]):
        self._step, self._rest, self._urgent = step, rest, urgent
        self._wake = threading.Event()
        self._stopping = False
        self.busy = False
        self.thread = threading.Thread(target=self._run, name=f"lookalike-indexer-{name}", daemon=True)
        self.thread.start()

    def notify(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        import numba

        numba.set_num_threads(1)  # this thread's kernels use one core: the other is the searches'
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), INDEXER_NICE)
        except (OSError, AttributeError):
            pass
        unsaved_since = None  # when the indexes first changed since their last save
        while not self._stopping:
            woken = self._wake.wait(SAVE_WHEN_IDLE_S if unsaved_since is not None else None)
            try:
                if woken:
                    self._wake.clear()
                    while not self._stopping and not self._urgent() and self._wake.wait(QUIET_S):
                        self._wake.clear()  # writes keep coming and the tail is short: let them pass first
                    if self._work():
                        unsaved_since = unsaved_since or time.monotonic()
                    if self._wake.is_set():
                        continue
                overdue = unsaved_since is not None and time.monotonic() - unsaved_since > SAVE_AT_LEAST_S
                if unsaved_since is not None and (not woken or overdue) and not self._stopping:
                    self._rest()  # writes paused (or too long unsaved): save, off the request path
                    unsaved_since = None
            except Exception:  # an index the indexer cannot extend is reported by the next search, not here
                import logging

                logging.getLogger(__name__).exception("background indexing stopped on an error")

    def _work(self) -> bool:
        """Steps until the tail is empty, or a write comes in while the tail is short; whether any step ran."""
        worked = False
        self.busy = True
        try:
            while not self._stopping and self._step():
                worked = True
                if self._wake.is_set() and not self._urgent():
                    break
        finally:
            self.busy = False
        return worked

    def stop(self, timeout: float | None = None) -> None:
        self._stopping = True
        self._wake.set()
        self.thread.join(timeout)
