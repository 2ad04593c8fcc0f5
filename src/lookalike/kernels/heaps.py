"""The one heap of every kernel: the bounded max-heap a search keeps its k best in (exact scan, IVF and IVF-PQ
lists, trees, LSH, HNSW's result set), and the priority queue of a walk (HNSW's candidates, the trees' nodes).

``keys[:size]`` is a max-heap (the worst of the kept at the root) and ``items`` move with their keys.  A k-best
heap starts full of +inf and ``offer`` costs one comparison for a candidate that does not belong in the answer,
which is why a scan keeps a heap rather than sorting or partitioning its scores.  As a priority queue
(``heap_push`` / ``heap_pop``) it pops the largest key first: negate the keys to pop the smallest.

The push, pop and replace are inlined into their caller's code (``inline="always"``): the HNSW walk runs them in
its hottest loop, where a call per operation would cost more than the operation.
"""

from __future__ import annotations

from numba import njit

inline = njit(cache=True, inline="always")


@inline
def sift_down(keys, items, i, size) -> None:
    """Restore the max-heap order of keys[:size] below position i; items move with their keys."""
    key, item = keys[i], items[i]
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and keys[child + 1] > keys[child]:
            child += 1
        if keys[child] <= key:
            break
        keys[i] = keys[child]
        items[i] = items[child]
        i = child
    keys[i] = key
    items[i] = item


@inline
def replace_top(keys, items, size, key, item) -> None:
    """Drop the largest of keys[:size] and insert (key, item) in its place (the heap keeps its size)."""
    keys[0] = key
    items[0] = item
    sift_down(keys, items, 0, size)


@njit(cache=True)
def offer(keys, items, key, item) -> None:
    """Keep (key, item) if it beats the worst of the k kept (a full k-best heap): it takes the root's place."""
    if key < keys[0]:
        replace_top(keys, items, keys.shape[0], key, item)


@njit(cache=True)
def heap_sort(keys, items) -> None:
    """Sort keys ascending in place, items alongside (heapsort: Numba's own sorts each add seconds of compilation
    for arrays that are small or already heaps), then equal keys by item, so that a result does not depend on
    the order its candidates were met in."""
    n = keys.shape[0]
    for i in range(n // 2 - 1, -1, -1):
        sift_down(keys, items, i, n)
    for end in range(n - 1, 0, -1):
        keys[0], keys[end] = keys[end], keys[0]
        items[0], items[end] = items[end], items[0]
        sift_down(keys, items, 0, end)
    for i in range(1, n):
        j = i
        while j > 0 and keys[j - 1] == keys[j] and items[j - 1] > items[j]:
            items[j - 1], items[j] = items[j], items[j - 1]
            j -= 1


@inline
def heap_push(keys, items, size, key, item) -> int:
    """Push (key, item) on the max-heap held in keys[:size] / items[:size]; returns the new size."""
    i = size
    while i > 0:
        parent = (i - 1) // 2
        if keys[parent] >= key:
            break
        keys[i] = keys[parent]
        items[i] = items[parent]
        i = parent
    keys[i] = key
    items[i] = item
    return size + 1


@inline
def heap_pop(keys, items, size) -> tuple:
    """Pop the largest; returns (key, item, new size)."""
    top_key, top_item = keys[0], items[0]
    size -= 1
    if size > 0:
        keys[0], items[0] = keys[size], items[size]
        sift_down(keys, items, 0, size)
    return top_key, top_item, size
