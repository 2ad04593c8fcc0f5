"""Which shard owns a point: a stable hash of its id.

The owner must be the same in every process, on every machine and after every restart, so Python's ``hash()``
(salted per process for str) is out.  Each id is encoded with its type, so the int 1 and the str "1" — two
different ids in a collection — are two different keys::

    key(id)   = the first 8 bytes of BLAKE2b("i" + decimal digits)   for an int
                the first 8 bytes of BLAKE2b("s" + UTF-8 bytes)      for a str
    owner(id) = jump_hash(key(id), n_shards)

Jump consistent hash (Lamping & Veach 2014, "A Fast, Minimal Memory, Consistent Hash Algorithm") spreads keys
evenly over n buckets and, when n grows to n + 1, moves only the 1/(n + 1) of the keys that the new bucket takes:
every other point keeps its owner.  The 64-bit key also breaks ties between equal distances when per-shard
results are merged, which makes that order independent of the shard count.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Any, Sequence

import numpy as np

ROUTING_NAME = "jump-blake2b64-v1"  # recorded in the manifest: a layout is read with the rule that wrote it
_MASK64 = (1 << 64) - 1
_JUMP_MULTIPLIER = 2862933555777941757  # the 64-bit linear congruential step of the paper


def id_key(ext_id: Any) -> int:
    """The 64-bit key of one id (an int or a str, as ``collection.check_ids`` returns them)."""
    if isinstance(ext_id, str):
        data = b"s" + ext_id.encode("utf-8")
    else:
        data = b"i" + str(int(ext_id)).encode("ascii")
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "little")


def id_keys(ext_ids: Sequence[Any]) -> np.ndarray:
    """Keys of many ids, as a uint64 array."""
    return np.fromiter((id_key(i) for i in ext_ids), dtype=np.uint64, count=len(ext_ids))


def jump_hash(key: int, n_buckets: int) -> int:
    """The bucket in [0, n_buckets) of a 64-bit key (the paper's algorithm, line by line)."""
    bucket, jump = -1, 0
    while jump < n_buckets:
        bucket = jump
        key = (key * _JUMP_MULTIPLIER + 1) & _MASK64
        jump = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


def shard_of(ext_id: Any, n_shards: int) -> int:
    """The shard that owns ``ext_id`` among ``n_shards``."""
    return jump_hash(id_key(ext_id), n_shards)


def group_by_shard(ext_ids: Sequence[Any], n_shards: int) -> dict[int, np.ndarray]:
    """Positions of ``ext_ids`` grouped by owner shard: ``{shard: positions in the input, in input order}``.
    Shards that own none of the ids are left out."""
    owners = np.fromiter((shard_of(i, n_shards) for i in ext_ids), dtype=np.int64, count=len(ext_ids))
    return {int(s): np.flatnonzero(owners == s) for s in np.unique(owners)}


def tie_break_keys(keys: np.ndarray) -> np.ndarray:
    """Keys as non-negative int64 (top bit cleared), usable where -1 means "no point"."""
    return (np.asarray(keys, dtype=np.uint64) >> np.uint64(1)).astype(np.int64)


__all__ = ["ROUTING_NAME", "group_by_shard", "id_key", "id_keys", "jump_hash", "shard_of", "tie_break_keys"]
