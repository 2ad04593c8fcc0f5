"""kernels/heaps.py, the one heap of every kernel, against NumPy: a priority queue pops the largest key first
(negated keys: the smallest), a bounded heap keeps the k smallest, heap_sort sorts, and items keep their keys."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.kernels import heaps

pytestmark = pytest.mark.unit


def test_heap_pops_in_decreasing_order(rng):
    values = rng.normal(size=200).astype(np.float32)
    keys, items = np.empty(200, np.float32), np.empty(200, np.int32)
    size = 0
    for i, v in enumerate(values):
        size = heaps.heap_push(keys, items, size, v, i)
    popped = []
    while size:
        value, item, size = heaps.heap_pop(keys, items, size)
        assert values[item] == value  # each key kept its item
        popped.append(value)
    np.testing.assert_array_equal(popped, np.sort(values)[::-1])


def test_negated_keys_pop_the_smallest_first(rng):
    """HNSW's candidate queue: the nearest node first."""
    distances = rng.random(100).astype(np.float32)
    keys, items = np.empty(100, np.float32), np.empty(100, np.int32)
    size = 0
    for i, d in enumerate(distances):
        size = heaps.heap_push(keys, items, size, -d, i)
    order = []
    while size:
        _, item, size = heaps.heap_pop(keys, items, size)
        order.append(item)
    np.testing.assert_array_equal(order, np.argsort(distances))


def test_a_bounded_heap_keeps_the_smallest(rng):
    """HNSW's result set W (push until full, then replace the root when nearer) and a scan's ``offer``."""
    values = rng.normal(size=500).astype(np.float32)
    keys, items = np.empty(10, np.float32), np.empty(10, np.int32)
    size = 0
    for i, v in enumerate(values):
        if size < 10:
            size = heaps.heap_push(keys, items, size, v, i)
        elif v < keys[0]:
            heaps.replace_top(keys, items, size, v, i)
    np.testing.assert_array_equal(np.sort(keys), np.sort(values)[:10])
    offered, rows = np.full(10, np.inf, np.float32), np.full(10, -1, np.int32)
    for i, v in enumerate(values):
        heaps.offer(offered, rows, v, i)
    np.testing.assert_array_equal(np.sort(offered), np.sort(values)[:10])
    np.testing.assert_array_equal(values[rows], offered)


def test_heap_sort_matches_numpy(rng):
    drawn = rng.normal(size=301)
    keys, items = drawn.copy(), np.arange(301)
    heaps.heap_sort(keys, items)
    np.testing.assert_array_equal(keys, np.sort(drawn))
    np.testing.assert_array_equal(items, np.argsort(drawn))  # distinct keys: one order


def test_heap_sort_orders_equal_keys_by_item():
    keys, items = np.array([2.0, 1.0, 2.0, 1.0]), np.array([9, 5, 3, 7])
    heaps.heap_sort(keys, items)
    np.testing.assert_array_equal(items, [5, 7, 3, 9])
