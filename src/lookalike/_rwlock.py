"""A readers-writer lock: many searches at once, or one change to the in-memory state of a collection.

Writers are preferred: once a change waits, new readers queue behind it, so the background indexer's short steps
and a write's publication never starve under a stream of searches (a search then waits for at most the readers
already inside plus one step).  Both sides are re-entrant per thread, and a thread holding the exclusive side may
also take the shared side; a reader may not upgrade (take the exclusive side while reading).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager


class ReadWriteLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None
        self._writers_waiting = 0
        self._depth = threading.local()  # per thread: shared and exclusive nesting

    def _counts(self):
        depth = self._depth
        if not hasattr(depth, "shared"):
            depth.shared = depth.exclusive = 0
        return depth

    @contextmanager
    def shared(self):
        depth = self._counts()
        if depth.shared or depth.exclusive:  # already inside: never queue behind a waiting writer (deadlock)
            depth.shared += 1
            try:
                yield
            finally:
                depth.shared -= 1
            return
        with self._cond:
            while self._writer is not None or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        depth.shared = 1
        try:
            yield
        finally:
            depth.shared = 0
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self):
        depth = self._counts()
        if depth.exclusive:
            depth.exclusive += 1
            try:
                yield
            finally:
                depth.exclusive -= 1
            return
        if depth.shared:
            raise RuntimeError("a reader cannot upgrade to the exclusive side of a ReadWriteLock")
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer is not None or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = threading.get_ident()
        depth.exclusive = 1
        try:
            yield
        finally:
            depth.exclusive = 0
            with self._cond:
                self._writer = None
                self._cond.notify_all()
