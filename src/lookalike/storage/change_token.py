"""A word in shared memory that moves whenever any process commits a write to a collection.

Before every query a collection asks "was anything written since I last caught up?".  SQLite answers it with
``PRAGMA data_version`` — a statement, a few microseconds, as much as the rest of the query's Python — so each
writer instead announces its commits in a file of 8 bytes beside the database, which every process maps: the
question becomes one load from memory.

The announcement is a fresh random value written *after* the commit, never a counter: two processes' increments
could race and lose one, and a counter that came back to a value a reader had seen would hide a write from it.
A reader takes the token *before* its snapshot of the database, so a token equal to the one it holds means no
commit was announced since that snapshot began; a commit announced meanwhile only costs one needless catch-up.
A writer that dies between its commit and the announcement never acknowledged that write; the next write (by any
process) announces both.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

TOKEN_BYTES = 8


class ChangeToken:
    """The shared token of one collection's file (``<file>-changes``, made on first open)."""

    def __init__(self, path: Path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < TOKEN_BYTES:  # two first openers both extend it to 8 bytes: no harm
                os.ftruncate(fd, TOKEN_BYTES)
            self._map = mmap.mmap(fd, TOKEN_BYTES)
        finally:
            os.close(fd)  # the mapping stays; no lock is held on this file, so closing drops nothing
        self._word = memoryview(self._map).cast("q")  # one aligned 8-byte load or store: never torn

    def read(self) -> int:
        return self._word[0]

    def announce(self) -> None:
        """A value no reader holds yet (from the OS's random source: forked processes share no seed)."""
        self._word[0] = int.from_bytes(os.urandom(TOKEN_BYTES), "little", signed=True)

    def close(self) -> None:
        self._word.release()  # reading it afterwards raises ValueError, as a closed connection would
        self._map.close()
