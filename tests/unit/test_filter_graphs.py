"""A frequent filter gets a graph of its own points (lookalike.filter_graphs): its answers stay only allowed points,
near the exact filtered answer, find points written after the graph, never return deleted ones, and a renumbering
of the rows drops the graphs."""

from __future__ import annotations

import numpy as np
import pytest

import lookalike
import lookalike.filter_graphs as filter_graphs

DIM = 16
N = 4000


def wait_for_graphs(col):
    col.optimize()  # finishes the background work: the graphs being built too
    assert not col._filter_graphs._building


@pytest.fixture
def col(tmp_path, monkeypatch):
    monkeypatch.setattr(filter_graphs, "MIN_ROWS", 100)
    monkeypatch.setattr(filter_graphs, "WALK_DISTANCES", 0.1)  # small test data: a graph for every filter
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((8, DIM))
    cluster = rng.integers(0, 8, N)
    x = (centers[cluster] + 0.3 * rng.standard_normal((N, DIM))).astype(np.float32)
    db = lookalike.Database(tmp_path / "db")
    col = db.create_collection("c", DIM, "cosine")
    # the category is the cluster: a query near one cluster filtered on another is the walk's worst case
    col.add(list(range(N)), x, [{"cat": f"c{c}"} for c in cluster])
    col.create_index("hnsw", M=12, ef_construction=64)
    col.centers = centers
    yield col
    db.close()


def filtered(col, q, where, **params):
    return col.query(q, k=10, where=where, **params).ids[0].tolist()


def ask_until_graphed(col, q, where):
    """Ask for the filter twice (the second use starts the build) and let the graph finish."""
    for _ in range(2):
        filtered(col, q, where, ef=32)
    wait_for_graphs(col)
    assert repr(where) in col._filter_graphs._graphs


def test_a_frequent_filter_is_answered_from_its_graph(col):
    where = {"cat": "c3"}
    rng = np.random.default_rng(1)  # queries from the data's clusters, most of them far from c3
    q = (col.centers[rng.integers(0, 8, 30)] + 0.3 * rng.standard_normal((30, DIM))).astype(np.float32)
    ask_until_graphed(col, q[0], where)
    allowed = {i for i, m in zip(col.ids(), col.get(col.ids()).metadatas) if m["cat"] == "c3"}
    hits = 0
    for row in q:
        got = filtered(col, row, where, ef=64)
        exact = col.query(row, k=10, where=where, index="flat").ids[0].tolist()
        assert set(got) <= allowed and len(got) == 10
        hits += len(set(got) & set(exact))
    assert hits / (10 * len(q)) >= 0.95


def test_points_written_after_the_graph_are_found_and_deleted_ones_never(col):
    where = {"cat": "c5"}
    q = col.centers[5].astype(np.float32)
    ask_until_graphed(col, q, where)
    col.add(["new-1"], q[None, :], [{"cat": "c5"}])  # exactly the query: the nearest from now on
    col.add(["new-2"], q[None, :], [{"cat": "c0"}])  # as near, but not allowed
    got = filtered(col, q, where, ef=32)
    assert got[0] == "new-1" and "new-2" not in got
    col.delete(["new-1", got[1]])
    after = filtered(col, q, where, ef=32)
    assert "new-1" not in after and got[1] not in after and len(after) == 10


def test_a_renumbering_of_the_rows_drops_the_graphs(col):
    where = {"cat": "c1"}
    q = col.centers[1].astype(np.float32)
    ask_until_graphed(col, q, where)
    before = filtered(col, q, where, ef=32)
    col.create_index("ivf", nlist=16, default=False)  # IVF reorders the log: new row numbers
    assert filtered(col, q, where, ef=32, index="hnsw") == before
    assert repr(where) not in col._filter_graphs._graphs  # dropped with the old numbering, rebuilt on later uses
