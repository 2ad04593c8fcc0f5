"""A shard actor that dies: Ray restarts it and it reopens from its own SQLite; nothing is silently partial."""

from __future__ import annotations

import time

import numpy as np
import pytest

from lookalike.distributed import ShardedDatabase, ShardUnavailableError

from .conftest import mixed_ids, seeded

DIM = 8


@pytest.fixture(scope="module")
def sharded(ray_local, tmp_path_factory):
    """Shared by the tests that kill a shard Ray may restart (each waits for the restart it causes)."""
    sdb = ShardedDatabase(tmp_path_factory.mktemp("faults"), n_shards=2, query_timeout_s=60)
    col = sdb.create_collection("c", DIM, "l2")
    col.add(mixed_ids(1_000), seeded(1_000, DIM, seed=11), [{"n": i} for i in range(1_000)])
    col.create_index("ivf", nlist=8)
    yield sdb, col
    sdb.close()


def _wait_for_new_process(sdb, shard: int, old_pid: int, timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = sdb.shard_info()[shard]["pid"]
        if pid != old_pid:
            return pid
        time.sleep(0.2)
    raise AssertionError(f"shard {shard} was not restarted within {timeout_s}s")


def test_killed_shard_comes_back_with_its_data(sharded, ray_local):
    sdb, col = sharded
    queries = seeded(20, DIM, seed=12)
    before = col.query(queries, k=5, nprobe=8)
    counts = col.shard_counts()
    old_pid = sdb.shard_info()[1]["pid"]

    ray_local.kill(sdb.shards[1], no_restart=False)
    try:  # during the restart: the retried answer, or a clear error — never a partial one
        during = col.query(queries, k=5, nprobe=8)
        assert during.ids.tolist() == before.ids.tolist()
    except ShardUnavailableError as exc:
        assert exc.shard == 1

    assert _wait_for_new_process(sdb, 1, old_pid) != old_pid
    assert col.shard_counts() == counts
    after = col.query(queries, k=5, nprobe=8)
    assert after.ids.tolist() == before.ids.tolist()
    np.testing.assert_array_equal(after.distances, before.distances)
    assert after.stats["index"] == "ivf"  # the index came back too (files, or rebuilt from SQLite)
    assert col.get(mixed_ids(1_000)).metadatas == [{"n": i} for i in range(1_000)]


def test_a_write_during_a_restart_lands_or_fails_clearly(sharded, ray_local):
    sdb, col = sharded
    count = len(col)
    old_pid = sdb.shard_info()[0]["pid"]
    ray_local.kill(sdb.shards[0], no_restart=False)
    ids = [f"late-{i}" for i in range(20)]
    try:
        col.upsert(ids, seeded(20, DIM, seed=13))  # upsert is retried on the restarted actor
    except ShardUnavailableError as exc:
        assert exc.shard == 0
        col.upsert(ids, seeded(20, DIM, seed=13))  # and is safe to repeat
    assert all(col.has(ids)) and len(col) == count + 20
    _wait_for_new_process(sdb, 0, old_pid)


def test_a_shard_that_cannot_come_back_fails_the_call_naming_it(ray_local, tmp_path):
    with ShardedDatabase(tmp_path / "dead", n_shards=2) as sdb:
        col = sdb.create_collection("c", DIM, "l2")
        col.add(list(range(50)), seeded(50, DIM, seed=14))
        ray_local.kill(sdb.shards[1], no_restart=True)
        with pytest.raises(ShardUnavailableError, match="shard 1") as error:
            col.query(seeded(2, DIM, seed=15), k=3)
        assert error.value.shard == 1 and error.value.http_status == 503
