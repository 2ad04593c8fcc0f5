"""Errors of sharded databases (proposed for lookalike/errors.py; defined here until they move).

    LookalikeError
    ├── ShardUnavailableError (RuntimeError)   503  a shard actor died, is restarting past the timeout, or is gone
    └── ShardLayoutError (ValueError)          409  the shard count asked for is not the one on disk
"""

from __future__ import annotations

from ..errors import LookalikeError


class ShardUnavailableError(LookalikeError, RuntimeError):
    """A shard did not answer: the whole call fails rather than return a partial answer.  ``shard`` is its number."""

    http_status = 503

    def __init__(self, message: str, shard: int | None = None):
        super().__init__(message)
        self.shard = shard

    def __reduce__(self):  # keep ``shard`` when the error crosses a process boundary
        return type(self), (self.args[0], self.shard)


class ShardLayoutError(LookalikeError, ValueError):
    """Opening a sharded database with another shard count than its manifest records."""

    http_status = 409


__all__ = ["ShardLayoutError", "ShardUnavailableError"]
