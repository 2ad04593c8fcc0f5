"""HNSW kernels (kernels/graph.py) against NumPy references: distances, the result set's drain, visited epochs,
the neighbour selection heuristic, link pruning, one layer's search, and the invariants of a graph built in parallel."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.kernels import graph as kernels

pytestmark = pytest.mark.unit


def empty_graph(n: int, M: int, levels: np.ndarray | None = None):
    """The graph tuple of n unlinked nodes (all on layer 0 unless levels say otherwise)."""
    levels = np.zeros(n, np.int32) if levels is None else levels.astype(np.int32)
    upper_start = np.full(n, -1, np.int32)
    tall = np.flatnonzero(levels > 0)
    upper_start[tall] = np.concatenate([[0], np.cumsum(levels[tall])[:-1]]).astype(np.int32)
    n_blocks = int(levels.sum())
    return (levels, np.full((n, 2 * M), -1, np.int32), np.zeros(n, np.int32), upper_start,
            np.full((n_blocks, M), -1, np.int32), np.zeros(n_blocks, np.int32))


@pytest.mark.parametrize("is_ip", [True, False])
def test_distances_match_numpy(is_ip, rng):
    x = rng.normal(size=(20, 37)).astype(np.float32)  # an odd dimension: the SIMD loop has a tail
    q = rng.normal(size=37).astype(np.float32)
    for row in (0, 7, 19):
        want = -np.dot(q, x[row]) if is_ip else np.sum((q - x[row]) ** 2)
        assert kernels.raw_distance(q, x, row, is_ip) == pytest.approx(want, rel=1e-5, abs=1e-5)
        want_pair = -np.dot(x[3], x[row]) if is_ip else np.sum((x[3] - x[row]) ** 2)
        assert kernels.pair_distance(x, 3, row, is_ip) == pytest.approx(want_pair, rel=1e-5, abs=1e-5)


def test_drain_sorted_empties_the_result_heap_in_increasing_distance(rng):
    dists = rng.random(30).astype(np.float32)
    keys, nodes = np.empty(30, np.float32), np.empty(30, np.int32)
    size = 0
    for i, d in enumerate(dists):  # W: a max-heap of distances (kernels/heaps.py)
        size = kernels.heap_push(keys, nodes, size, d, i)
    out_d, out_n = np.empty(30, np.float32), np.empty(30, np.int64)
    assert kernels.drain_sorted(keys, nodes, size, out_d, out_n) == 30
    np.testing.assert_array_equal(out_d, np.sort(dists))
    np.testing.assert_array_equal(out_n, np.argsort(dists))


def test_next_epoch_clears_the_tags_when_it_wraps():
    tags = np.full(8, 7, np.uint16)
    assert kernels.next_epoch(tags, 7) == 8 and (tags == 7).all()
    assert kernels.next_epoch(tags, kernels.EPOCH_LIMIT) == 1
    assert (tags == 0).all()


def heuristic_reference(x, base, candidates, m):
    """Algorithm 4 in plain Python (squared L2)."""
    d = lambda a, b: float(np.sum((a - b) ** 2))  # noqa: E731
    order = sorted(candidates, key=lambda c: d(x[c], base))
    kept = []
    for c in order:
        if len(kept) == m:
            break
        if all(d(x[c], x[r]) >= d(x[c], base) for r in kept):
            kept.append(c)
    return kept


def test_select_neighbours_on_a_hand_made_case():
    # base at the origin; 1 sits right behind 0 (closer to 0 than to the base): the heuristic drops it and
    # keeps the nodes that open new directions (2 up, 3 left), though 1 is nearer than 3.
    x = np.array([[1.0, 0.0], [1.5, 0.1], [0.0, 1.2], [-1.8, 0.0], [0.0, 0.0]], np.float32)
    cand = np.array([0, 1, 2, 3], np.int32)
    dists = np.sum(x[:4] ** 2, axis=1).astype(np.float32)  # already in increasing order
    out = np.empty(4, np.int32)
    kept = kernels.select_neighbours(x, cand, dists, 4, 4, False, out)
    assert out[:kept].tolist() == [0, 2, 3]
    assert kernels.select_neighbours(x, cand, dists, 4, 2, False, out) == 2 and out[:2].tolist() == [0, 2]


def test_select_neighbours_matches_the_reference(rng):
    x = rng.normal(size=(60, 8)).astype(np.float32)
    base = x[0]
    cand = np.arange(1, 60, dtype=np.int32)
    d = np.sum((x[1:] - base) ** 2, axis=1).astype(np.float32)
    order = np.argsort(d, kind="stable")
    out = np.empty(59, np.int32)
    kept = kernels.select_neighbours(x, cand[order], d[order], 59, 10, False, out)
    assert out[:kept].tolist() == heuristic_reference(x, base, cand.tolist(), 10)


def test_add_link_appends_then_prunes_with_the_heuristic(rng):
    M = 2  # layer-0 capacity 4
    x = rng.normal(size=(9, 4)).astype(np.float32)
    graph = empty_graph(9, M)
    locks = np.zeros(10, np.int32)
    buf_n, buf_d, buf_o = np.empty(5, np.int32), np.empty(5, np.float32), np.empty(5, np.int32)
    for new in (1, 2, 3, 4):
        kernels.add_link(x, graph, 0, new, 0, False, locks, buf_n, buf_d, buf_o)
    kernels.add_link(x, graph, 0, 2, 0, False, locks, buf_n, buf_d, buf_o)  # already there: no change
    assert graph[1][0].tolist() == [1, 2, 3, 4] and graph[2][0] == 4
    kernels.add_link(x, graph, 0, 5, 0, False, locks, buf_n, buf_d, buf_o)  # full: prune 5 candidates to <= 4
    kept = graph[2][0]
    assert graph[1][0, :kept].tolist() == heuristic_reference(x, x[0], [1, 2, 3, 4, 5], 4)
    assert (graph[1][0, kept:] == -1).all()
    assert (locks == 0).all(), "every lock taken is released"


def test_search_layer_on_a_complete_graph_is_exact(rng):
    n, ef = 40, 7
    x = rng.normal(size=(n, 6)).astype(np.float32)
    q = rng.normal(size=6).astype(np.float32)
    M = n // 2  # capacity 2M = n: every node links to every other one
    graph = empty_graph(n, M)
    for v in range(n):
        others = [u for u in range(n) if u != v]
        graph[1][v, : n - 1] = others
        graph[2][v] = n - 1
    w_keys, w_nodes = np.empty(ef, np.float32), np.empty(ef, np.int32)
    size = kernels.search_layer(
        q, x, graph, 0, np.array([3], np.int32), np.array([kernels.raw_distance(q, x, 3, False)], np.float32), 1,
        ef, False, np.zeros(n, np.uint16), 1, np.empty(0, np.bool_), False, np.empty(0, np.int32), False,
        np.empty(n, np.float32), np.empty(n, np.int32), w_keys, w_nodes, np.empty(2 * M, np.int32))
    want = np.argsort(np.sum((x - q) ** 2, axis=1))[:ef]
    assert size == ef and sorted(w_nodes.tolist()) == sorted(want.tolist())
    np.testing.assert_allclose(np.sort(w_keys), np.sort(np.sum((x[want] - q) ** 2, axis=1)), rtol=1e-5)


def test_search_layer_with_a_mask_walks_through_but_returns_only_allowed(rng):
    n, ef = 40, 5
    x = rng.normal(size=(n, 6)).astype(np.float32)
    q = x[0] + 0.01
    # a path graph 0 - 1 - 2 - ... : the allowed nodes are only reachable through forbidden ones
    graph = empty_graph(n, 1)
    for v in range(n):
        nbrs = [u for u in (v - 1, v + 1) if 0 <= u < n]
        graph[1][v, : len(nbrs)] = nbrs
        graph[2][v] = len(nbrs)
    mask = np.zeros(n, np.bool_)
    mask[[30, 33, 36, 39]] = True  # fewer allowed nodes than ef
    w_keys, w_nodes = np.empty(ef, np.float32), np.empty(ef, np.int32)
    size = kernels.search_layer(
        q, x, graph, 0, np.array([0], np.int32), np.array([kernels.raw_distance(q, x, 0, False)], np.float32), 1,
        ef, False, np.zeros(n, np.uint16), 1, mask, True, np.empty(0, np.int32), False,
        np.empty(n, np.float32), np.empty(n, np.int32), w_keys, w_nodes, np.empty(2, np.int32))
    assert size == 4 and sorted(w_nodes[:size].tolist()) == [30, 33, 36, 39]


def test_parallel_insertion_builds_a_consistent_graph(rng):
    n, M, ef = 3000, 6, 40
    x = rng.normal(size=(n, 12)).astype(np.float32)
    levels = np.floor(-np.log(1.0 - rng.random(n)) / np.log(M)).astype(np.int32)
    graph = empty_graph(n, M, levels)
    entry = np.array([0], np.int32)
    tags = np.zeros((2, n), np.uint16)
    epochs = np.zeros(2, np.int64)
    kernels.insert_batch(x, graph, entry, np.array([1], np.int64), n, M, ef, False, np.zeros(n + 1, np.int32), tags,
                         epochs, np.empty((2, n), np.float32), np.empty((2, n), np.int32))
    assert epochs.sum() >= n - 1, "one search per layer of each inserted node, epochs carried over"
    levels, links0, counts0, upper_start, upper_links, upper_counts = graph
    assert levels[entry[0]] == levels.max(), "the entry point is on the top layer"
    for links, counts in ((links0, counts0), (upper_links, upper_counts)):
        for row in range(len(counts)):
            listed = links[row, : counts[row]]
            assert (links[row, counts[row]:] == -1).all()
            assert len(set(listed.tolist())) == len(listed), "no duplicate link"
            assert ((listed >= 0) & (listed < n)).all()
    assert (counts0 >= 1).all() and not (links0 == np.arange(n)[:, None]).any(), "linked, no self-loops"
    for v in np.flatnonzero(levels > 0):  # upper links only point to nodes that live on that layer
        for level in range(1, levels[v] + 1):
            row = upper_start[v] + level - 1
            assert (levels[upper_links[row, : upper_counts[row]]] >= level).all()
    reached = {int(entry[0])}  # layer 0 is connected from the entry point
    frontier = [int(entry[0])]
    while frontier:
        v = frontier.pop()
        for u in links0[v, : counts0[v]].tolist():
            if u not in reached:
                reached.add(u)
                frontier.append(u)
    assert len(reached) >= 0.99 * n  # pruning may orphan a few nodes, in hnswlib too
