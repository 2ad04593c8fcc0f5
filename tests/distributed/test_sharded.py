"""ShardedDatabase against one machine: the same answers, the same errors, writes routed to owner shards."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike import Database
from lookalike.distributed import ShardedDatabase, ShardLayoutError
from lookalike.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    DimensionMismatchError,
    DuplicateIdError,
    IdNotFoundError,
    IndexNotBuiltError,
    InvalidParameterError,
    ZeroVectorError,
)

from .conftest import mixed_ids, seeded

N, DIM, SHARDS = 3_000, 24, 3


@pytest.fixture(scope="module")
def twins(ray_local, tmp_path_factory):
    """The same points in a 3-shard database and in one local database, for cosine and l2."""
    root = tmp_path_factory.mktemp("sharded")
    sdb = ShardedDatabase(root / "sharded", n_shards=SHARDS)
    local = Database(root / "local")
    x = seeded(N, DIM, seed=7)
    ids = mixed_ids(N)
    metas = [{"group": i % 5, "name": f"p{i}"} for i in range(N)]
    for metric in ("cosine", "l2"):
        for db in (sdb, local):
            db.create_collection(metric, DIM, metric).add(ids, x, metas)
    yield sdb, local, x
    sdb.close()
    local.close()


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_sharded_flat_equals_single_node(twins, metric):
    sdb, local, x = twins
    queries = seeded(40, DIM, seed=99)
    got = sdb.get_collection(metric).query(queries, k=15)
    want = local.get_collection(metric).query(queries, k=15)
    assert got.ids.tolist() == want.ids.tolist()
    np.testing.assert_allclose(got.distances, want.distances, rtol=1e-6, atol=1e-6)
    assert got.metadatas == want.metadatas
    np.testing.assert_allclose(got.similarities, want.similarities, rtol=1e-6, atol=1e-6)


def test_filters_apply_on_every_shard(twins):
    sdb, local, _ = twins
    queries = seeded(10, DIM, seed=5)
    where = {"group": 3}
    got = sdb.get_collection("l2").query(queries, k=8, where=where)
    want = local.get_collection("l2").query(queries, k=8, where=where)
    assert got.ids.tolist() == want.ids.tolist()
    assert all(m["group"] == 3 for row in got.metadatas for m in row)


def test_k_larger_than_the_collection_pads_like_one_machine(twins):
    sdb, _, _ = twins
    col = sdb.create_collection("few", 4, "l2")
    col.add([1, "1", 2], np.eye(3, 4, dtype=np.float32))
    result = col.query(np.zeros(4, dtype=np.float32), k=5)
    assert sorted(map(str, result.ids[0, :3])) == ["1", "1", "2"]
    assert result.ids[0, 3:].tolist() == [None, None]
    assert np.isinf(result.distances[0, 3:]).all()
    assert result.metadatas[0][3:] == [None, None]


def test_sharded_ivf_recall_is_at_least_single_node_at_same_nprobe(twins):
    sdb, local, _ = twins
    queries = seeded(60, DIM, seed=3)
    sharded, single = sdb.get_collection("cosine"), local.get_collection("cosine")
    report = sharded.create_index("ivf", nlist=16)
    single.create_index("ivf", nlist=16)
    assert report["count"] == N and len(report["shard_build_s"]) == SHARDS
    got = sharded.query(queries, k=10, nprobe=2, with_recall=True)
    want = single.query(queries, k=10, nprobe=2, with_recall=True)
    assert got.stats["index"] == "ivf"
    assert got.recall.mean() >= want.recall.mean()
    assert got.recall.mean() < 1.0  # approximate: the recall is measured, not assumed
    online = sharded.create_index("ivf", nlist=16, online=True)  # built aside, then loaded by the shards
    assert online["count"] == N
    rebuilt = sharded.query(queries, k=10, nprobe=2)
    assert rebuilt.ids.tolist() == got.ids.tolist()  # same seed, same points: the same index
    exact = sharded.query(queries, k=10, index="flat", with_recall=True)
    assert (exact.recall == 1.0).all() and exact.true_knn.all()
    assert sharded.info()["indexes"].keys() == {"flat", "ivf"}


def test_lookalike_errors_cross_the_actor_boundary_as_themselves(twins):
    sdb, _, _ = twins
    col = sdb.get_collection("l2")
    with pytest.raises(DimensionMismatchError):
        col.query(np.zeros((1, DIM + 1), dtype=np.float32))
    with pytest.raises(IdNotFoundError) as missing:
        col.get([0, "no-such-id"])
    assert type(missing.value) is IdNotFoundError
    assert any("raised by shard" in note for note in missing.value.__notes__)
    with pytest.raises(IndexNotBuiltError):
        col.query(np.ones(DIM, dtype=np.float32), k=3, index="hnsw")
    with pytest.raises(InvalidParameterError):
        col.create_index("ivf", nlist=0)
    with pytest.raises(ZeroVectorError):
        sdb.get_collection("cosine").add(["zero"], np.zeros((1, DIM), dtype=np.float32))


def test_get_has_and_len_follow_the_owner_shards(twins):
    sdb, local, x = twins
    col = sdb.get_collection("l2")
    ask = [8, "7", 10, "9", 2998]
    points = col.get(ask)
    assert points.ids == ask
    np.testing.assert_array_equal(points.vectors, local.get_collection("l2").get(ask).vectors)
    assert col.has([8, "8", "no"]) == [True, False, False]
    assert len(col) == N and sum(col.shard_counts()) == N and min(col.shard_counts()) > 0
    assert sorted(map(str, col.ids())) == sorted(map(str, mixed_ids(N)))


def test_writes_are_routed_to_the_owner_shard(twins):
    sdb, _, _ = twins
    col = sdb.create_collection("w", 4, "l2")
    ids = mixed_ids(60)
    col.add(ids, seeded(60, 4, seed=1), [{"v": 1}] * 60)
    owners = col.owner_shards(ids)
    assert col.shard_counts() == np.bincount(owners, minlength=3).tolist()

    col.upsert([0, "1"], np.full((2, 4), 9.0, dtype=np.float32), [{"v": 2}, {"v": 2}])
    assert len(col) == 60  # replaced where they live, not added elsewhere
    again = col.get([0, "1"])
    assert (again.vectors == 9.0).all() and again.metadatas == [{"v": 2}, {"v": 2}]

    with pytest.raises(DuplicateIdError):
        col.add(["new-a", 4, "new-b"], seeded(3, 4, seed=2))
    assert col.has(["new-a", "new-b"]) == [False, False]  # nothing written on any shard

    with pytest.raises(IdNotFoundError):
        col.delete([2, "missing"])
    assert col.has([2]) == [True]  # nothing deleted
    assert col.delete([2, "3"]) == 2
    assert col.has([2, "3"]) == [False, False]
    assert col.delete(where={"v": 2}) == 2
    assert len(col) == 56
    assert col.shard_counts() == np.bincount(col.owner_shards(col.ids()), minlength=3).tolist()


def test_collections_reopen_with_the_same_answers(ray_local, tmp_path):
    path = tmp_path / "reopen"
    queries = seeded(5, 8, seed=4)
    with ShardedDatabase(path, n_shards=2) as sdb:
        col = sdb.create_collection("items", 8, "cosine")
        col.add(mixed_ids(500), seeded(500, 8, seed=8))
        col.create_index("ivf", nlist=4)
        before = col.query(queries, k=5, nprobe=2)
        with pytest.raises(CollectionExistsError):
            sdb.create_collection("items", 8, "cosine")
        assert sdb.get_or_create_collection("items", 8, "cosine").dim == 8
        sdb.create_collection("gone", 8, "l2")
        sdb.drop_collection("gone")
        assert sdb.list_collections() == ["items"]
    with pytest.raises(ShardLayoutError, match="holds 2 shards"):
        ShardedDatabase(path, n_shards=3)
    with ShardedDatabase(path) as sdb:
        assert sdb.n_shards == 2
        col = sdb.get_collection("items")
        after = col.query(queries, k=5, nprobe=2)
        assert after.ids.tolist() == before.ids.tolist()
        np.testing.assert_array_equal(after.distances, before.distances)
        assert col.default_index == "ivf"
        with pytest.raises(CollectionNotFoundError):
            sdb.get_collection("gone")
