"""reshard: the points move to the new layout with their metadata, none lost, indexes rebuilt, manifest swapped."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.distributed import ShardedDatabase, reshard
from lookalike.distributed.layout import read_layout

from .conftest import mixed_ids, seeded

N, DIM = 2_000, 12


def _snapshot(col):
    ids = sorted(col.ids(), key=lambda i: (isinstance(i, str), i))
    points = col.get(ids)
    return ids, points.vectors, points.metadatas


@pytest.mark.persistence
def test_reshard_keeps_every_point(ray_local, tmp_path):
    path = tmp_path / "db"
    queries = seeded(10, DIM, seed=21)
    with ShardedDatabase(path, n_shards=2) as sdb:
        col = sdb.create_collection("items", DIM, "cosine")
        col.add(mixed_ids(N), seeded(N, DIM, seed=20), [{"i": i} for i in range(N)])
        col.create_index("ivf", nlist=8)
        sdb.create_collection("empty", 4, "l2")
        before = _snapshot(col)
        exact = col.query(queries, k=10, index="flat")

    report = reshard(path, 3)
    assert (report.old_shards, report.new_shards) == (2, 3)
    assert report.moved == {"empty": 0, "items": N} and report.rebuilt["items"] == ["ivf"]
    layout = read_layout(path)
    assert layout.n_shards == 3 and layout.generation == 1
    assert sorted(p.name for p in path.iterdir() if p.is_dir()) == layout.shards  # old directories removed

    with ShardedDatabase(path) as sdb:
        col = sdb.get_collection("items")
        after = _snapshot(col)
        assert after[0] == before[0]
        np.testing.assert_allclose(after[1], before[1], rtol=1e-6)  # cosine: unit vector x its length
        assert after[2] == before[2]
        assert col.shard_counts() == np.bincount(col.owner_shards(after[0]), minlength=3).tolist()
        assert col.default_index == "ivf"
        again = col.query(queries, k=10, index="flat")
        assert again.ids.tolist() == exact.ids.tolist()  # exact answers do not depend on the layout
        np.testing.assert_allclose(again.distances, exact.distances, rtol=1e-6, atol=1e-6)
        assert sdb.list_collections() == ["empty", "items"]
