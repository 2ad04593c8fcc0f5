"""A readers-writer lock: many searches at once, or one change to the in-memory state of a collection.

Writers are preferred: once a change waits, new readers queue behind it, so the background indexer's short steps
and a write's publication never starve under a stream of searches.  Readers are not starved either: when a change
ends, the readers that waited for it go in before the next change (the indexer, stepping again at once, would
otherwise take the lock back before a woken reader runs), so a search waits for at most one step.  Both sides are re-entrant per thread, and a thread holding the exclusive side may
also take the shared side; a reader may not upgrade (take the exclusive side while reading).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager


class _Depth(threading.local):
    """Per thread: how deep inside the shared and the exclusive side it is (class attributes: 0 in a new thread)."""

    shared = 0
    exclusive = 0


class ReadWriteLock:
    def __init__(self) -> None:
        self._mutex = threading.Lock()  # guards the counts below
        self._cond = threading.Condition(self._mutex)
        self._readers = 0
        self._writer: int | None = None
        self._writers_waiting = 0
        self._readers_waiting = 0
        self._readers_turn = 0  # readers admitted ahead of the next change: those that waited for the last one
        self._depth = _Depth()
        self._shared_side = _SharedSide(self)

    # ------------------------------------------------------------------ shared
    def acquire_shared(self, blocking: bool = True) -> bool:
        depth = self._depth
        if depth.shared or depth.exclusive:  # already inside: never queue behind a waiting writer (deadlock)
            depth.shared += 1
            return True
        with self._mutex:  # the Condition's own lock, entered without the Condition's Python-level wrapper
            if self._writer is not None or (self._writers_waiting and not self._readers_turn):
                if not blocking:
                    return False
                self._readers_waiting += 1
                try:
                    while self._writer is not None or (self._writers_waiting and not self._readers_turn):
                        self._cond.wait()
                finally:
                    self._readers_waiting -= 1
                if self._readers_turn:
                    self._readers_turn -= 1
            self._readers += 1
        depth.shared = 1
        return True

    def release_shared(self) -> None:
        depth = self._depth
        depth.shared -= 1
        if depth.shared or depth.exclusive:
            return
        with self._mutex:
            self._readers -= 1
            if self._readers == 0 and self._writers_waiting:  # only a change waits for the readers to leave
                self._cond.notify_all()

    # ------------------------------------------------------------------ exclusive
    def acquire_exclusive(self, blocking: bool = True) -> bool:
        depth = self._depth
        if depth.exclusive:
            depth.exclusive += 1
            return True
        if depth.shared:
            raise RuntimeError("a reader cannot upgrade to the exclusive side of a ReadWriteLock")
        with self._cond:
            if not blocking and (self._writer is not None or self._readers or self._readers_turn):
                return False
            self._writers_waiting += 1
            try:
                while self._writer is not None or self._readers or self._readers_turn:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = threading.get_ident()
        depth.exclusive = 1
        return True

    def release_exclusive(self) -> None:
        depth = self._depth
        depth.exclusive -= 1
        if depth.exclusive:
            return
        with self._cond:
            self._writer = None
            self._readers_turn = self._readers_waiting  # they go first, then the next change
            self._cond.notify_all()

    def shared(self) -> "_SharedSide":
        """``with lock.shared():`` (a plain object rather than a generator: a search takes it every time)."""
        return self._shared_side

    @contextmanager
    def exclusive(self):
        self.acquire_exclusive()
        try:
            yield
        finally:
            self.release_exclusive()


class _SharedSide:
    """The shared side of a lock as a context manager."""

    __slots__ = ("_lock",)

    def __init__(self, lock: ReadWriteLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire_shared()

    def __exit__(self, *exc) -> None:
        self._lock.release_shared()
