"""Routing (stable hash, jump consistent hash), the merge order and the manifest: no Ray actor needed."""

from __future__ import annotations

import json
import subprocess
import sys
from hashlib import blake2b

import numpy as np
import pytest

from lookalike import Database
from lookalike.distributed.errors import ShardLayoutError
from lookalike.distributed.layout import MANIFEST, open_layout, read_layout
from lookalike.distributed.merge import merge_order
from lookalike.distributed.routing import group_by_shard, id_key, jump_hash, shard_of
from lookalike.errors import StorageFormatError

pytestmark = pytest.mark.unit


def test_key_encodes_the_type_of_the_id():
    assert id_key(1) != id_key("1")
    assert id_key(np.int64(7)) == id_key(7)  # numpy scalars are ints
    assert id_key("1") == int.from_bytes(blake2b(b"s1", digest_size=8).digest(), "little")


def test_owner_is_the_same_in_another_process_whatever_its_hash_seed():
    ids = [0, 1, "1", "sku-42", -5, 2**62, "é"]
    here = [shard_of(i, 7) for i in ids]
    code = f"from lookalike.distributed.routing import shard_of; print([shard_of(i, 7) for i in {ids!r}])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""})
    assert json.loads(out.stdout) == here


def test_ids_spread_evenly():
    counts = np.bincount([shard_of(f"item-{i}", 4) for i in range(20_000)], minlength=4)
    assert counts.min() > 0.9 * 5_000 and counts.max() < 1.1 * 5_000


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_jump_hash_moves_only_what_the_new_shard_takes(n):
    keys = [id_key(i) for i in range(5_000)]
    before = np.array([jump_hash(k, n) for k in keys])
    after = np.array([jump_hash(k, n + 1) for k in keys])
    moved = before != after
    assert (after[moved] == n).all()  # a point that moves goes to the new shard, never between old ones
    assert abs(moved.mean() - 1 / (n + 1)) < 0.03


def test_group_by_shard_covers_every_position_once():
    ids = [i if i % 3 else f"s{i}" for i in range(1_000)]
    groups = group_by_shard(ids, 5)
    positions = np.sort(np.concatenate(list(groups.values())))
    assert (positions == np.arange(len(ids))).all()
    for shard, pos in groups.items():
        assert all(shard_of(ids[p], 5) == shard for p in pos)


def test_merge_orders_by_distance_then_by_key_whatever_the_column_order():
    distances = np.array([[0.5, 0.1, 0.5, np.inf, 0.3]], dtype=np.float32)
    keys = np.array([[9, 4, 2, 0, 7]], dtype=np.uint64)
    best = merge_order(distances, keys, 4)
    assert best.tolist() == [[1, 4, 2, 0]]  # 0.1, 0.3, then the two 0.5 by key (2 before 9)
    shuffled = [4, 2, 0, 3, 1]
    again = merge_order(distances[:, shuffled], keys[:, shuffled], 4)
    assert np.array(shuffled)[again].tolist() == best.tolist()


@pytest.mark.persistence
def test_manifest_is_created_then_reopened(tmp_path):
    layout = open_layout(tmp_path / "db", 3)
    assert layout.n_shards == 3 and layout.shards == ["shard-000", "shard-001", "shard-002"]
    assert read_layout(tmp_path / "db") == layout
    assert open_layout(tmp_path / "db", None).n_shards == 3
    with pytest.raises(ShardLayoutError, match="holds 3 shards, not 5"):
        open_layout(tmp_path / "db", 5)


@pytest.mark.persistence
def test_manifest_refuses_what_is_not_a_sharded_database(tmp_path):
    Database(tmp_path / "single").close()
    with pytest.raises(StorageFormatError, match="single-node"):
        open_layout(tmp_path / "single", 2)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    with pytest.raises(StorageFormatError, match="not a sharded"):
        open_layout(tmp_path / "other", 2)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / MANIFEST).write_text("{not json")
    with pytest.raises(StorageFormatError, match="corrupt"):
        open_layout(tmp_path / "bad", 2)
