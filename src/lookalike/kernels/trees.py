"""Random-projection trees as flat arrays (the kernels of ``index/rp_forest.py``), and the exact re-ranking of
candidates that the tree and hashing indexes share.

A forest is stored in six arrays, whatever the number of trees:
  * ``planes`` (n_internal, dim) float32 and ``offsets`` (n_internal,): internal node i sends x to its right
    child when ``<planes[i], x> + offsets[i] > 0``, else left.  Normals are unit length, so the margin is the
    signed distance to the hyperplane and margins of different nodes can be compared in one priority queue.
  * ``children`` (n_internal, 2) int32: ``children[i, 0]`` left, ``[i, 1]`` right.  A value >= 0 is an internal
    node, a value < 0 is the leaf ``~value`` (= -value - 1).
  * ``roots`` (n_trees,) int32 in the same encoding (a tree over few points may be a single leaf).
  * ``leaf_starts`` (n_leaves + 1,) int64 and ``leaf_rows``: leaf j holds rows ``leaf_rows[leaf_starts[j]:
    leaf_starts[j + 1]]``.  Building partitions a permutation of the rows in place, like quicksort, so every leaf
    is a contiguous range of it.
Rows added after the build are linked into the leaves they fall into: ``extra_head[leaf]`` is the first slot of
that leaf's list, ``extra_next[slot]`` the next slot (-1 ends the list), ``extra_row[slot]`` the row.

Building runs in two passes so that every array has its exact size: ``grow_trees`` (parallel over trees) records
each split as the pair of rows that defines it, then ``fill_planes`` turns the pairs into hyperplanes.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# ----------------------------------------------------------------------------------------- random numbers
# A tiny generator of our own (SplitMix64): each tree draws from its own seeded stream, so a forest is the same
# whatever the number of threads and whichever thread builds which tree.


@njit(cache=True)
def next_random(state: np.ndarray) -> np.uint64:
    state[0] += np.uint64(0x9E3779B97F4A7C15)
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def random_below(state: np.ndarray, n: int) -> int:
    return int(next_random(state) % np.uint64(n))


# ----------------------------------------------------------------------------------------- splits


@njit(cache=True, fastmath=True)
def bisecting_plane(vectors, p, q, is_l2, normal_out) -> float:
    """Hyperplane equidistant to rows p and q, written into ``normal_out``; returns its offset.

    l2: the perpendicular bisector of p and q.  cosine/dot: the plane through the origin that bisects the angle
    of p and q (Annoy's angular split), so the offset is 0.  A zero normal (p and q coincide) gives margin 0
    for every point: the search then treats both sides alike."""
    dim = vectors.shape[1]
    scale_p = 1.0
    scale_q = 1.0
    if not is_l2:  # compare directions only
        norm_p = 0.0
        norm_q = 0.0
        for d in range(dim):
            norm_p += vectors[p, d] * vectors[p, d]
            norm_q += vectors[q, d] * vectors[q, d]
        scale_p = 1.0 / np.sqrt(norm_p) if norm_p > 0 else 1.0
        scale_q = 1.0 / np.sqrt(norm_q) if norm_q > 0 else 1.0
    length = 0.0
    for d in range(dim):
        diff = vectors[p, d] * scale_p - vectors[q, d] * scale_q
        normal_out[d] = diff
        length += diff * diff
    if length == 0.0:
        normal_out[:] = 0.0
        return 0.0
    inv = 1.0 / np.sqrt(length)
    offset = 0.0
    for d in range(dim):
        normal_out[d] *= inv
        if is_l2:
            offset -= normal_out[d] * 0.5 * (vectors[p, d] + vectors[q, d])
    return offset


@njit(cache=True, fastmath=True)
def margin(plane, offset, x) -> float:
    """Signed distance of x to the hyperplane; > 0 means the right child."""
    total = offset
    for d in range(x.shape[0]):
        total += plane[d] * x[d]
    return total


@njit(cache=True)
def partition(vectors, rows, start, stop, normal, offset) -> int:
    """Reorder rows[start:stop] so that points with margin <= 0 come first; returns where the right side starts."""
    i = start
    j = stop - 1
    while i <= j:
        if margin(normal, offset, vectors[rows[i]]) > 0.0:
            rows[i], rows[j] = rows[j], rows[i]
            j -= 1
        else:
            i += 1
    return i


# ----------------------------------------------------------------------------------------- building

SPLIT_TRIES = 3  # pairs drawn before giving up on a node whose points all coincide


@njit(cache=True)
def grow_tree(vectors, rows, is_l2, leaf_size, seed, children, split_pairs, leaf_starts) -> tuple:
    """Grow one tree over ``rows`` (permuted in place).  Writes the children and the pair of rows that defines
    each split, and the start of each leaf in ``rows``; returns (root, n_internal, n_leaves).

    Depth first, left before right, so leaves come out in the order of ``rows`` and leaf j ends where j+1 starts.
    """
    n = rows.shape[0]
    state = np.array([np.uint64(seed)], dtype=np.uint64)
    normal = np.empty(vectors.shape[1], dtype=np.float32)
    # stack of ranges still to split, with the parent slot to patch: (start, stop, parent, side)
    stack = np.empty((n + 1, 4), dtype=np.int64)
    stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3] = 0, n, -1, 0
    depth = 1
    root = 0
    n_internal = 0
    n_leaves = 0
    while depth > 0:
        depth -= 1
        start, stop, parent, side = stack[depth, 0], stack[depth, 1], stack[depth, 2], stack[depth, 3]
        if stop - start <= leaf_size:
            leaf_starts[n_leaves] = start
            code = -n_leaves - 1
            n_leaves += 1
        else:
            node = n_internal
            n_internal += 1
            middle = start
            p = q = rows[start]
            for _ in range(SPLIT_TRIES):
                i = random_below(state, stop - start)
                j = random_below(state, stop - start - 1)
                j += j >= i  # two distinct positions
                p, q = rows[start + i], rows[start + j]
                offset = bisecting_plane(vectors, p, q, is_l2, normal)
                middle = partition(vectors, rows, start, stop, normal, offset)
                if start < middle < stop:
                    break
            if middle == start or middle == stop:  # every point coincides: split the range in half, by position
                middle = (start + stop) // 2
                q = p  # a zero plane: the search weighs both halves alike
            split_pairs[node, 0] = p
            split_pairs[node, 1] = q
            code = node
            stack[depth, 0], stack[depth, 1], stack[depth, 2], stack[depth, 3] = middle, stop, node, 1
            stack[depth + 1, 0], stack[depth + 1, 1], stack[depth + 1, 2], stack[depth + 1, 3] = start, middle, node, 0
            depth += 2
        if parent < 0:
            root = code
        else:
            children[parent, side] = code
    leaf_starts[n_leaves] = n
    return root, n_internal, n_leaves


@njit(cache=True, parallel=True)
def grow_trees(vectors, rows, is_l2, leaf_size, seeds, children, split_pairs, leaf_starts, shapes):
    """Grow ``len(seeds)`` trees in parallel over the same rows.  Per tree t: ``rows`` is copied into
    ``leaf_rows[t]`` (returned), and ``shapes[t] = (root, n_internal, n_leaves)``."""
    n_trees = seeds.shape[0]
    leaf_rows = np.empty((n_trees, rows.shape[0]), dtype=np.int32)
    for t in prange(n_trees):
        leaf_rows[t, :] = rows
        root, n_internal, n_leaves = grow_tree(
            vectors, leaf_rows[t], is_l2, leaf_size, seeds[t], children[t], split_pairs[t], leaf_starts[t]
        )
        shapes[t, 0], shapes[t, 1], shapes[t, 2] = root, n_internal, n_leaves
    return leaf_rows


@njit(cache=True, parallel=True)
def fill_planes(vectors, split_pairs, is_l2, planes, offsets):
    """Hyperplane of each split from the pair of rows that defined it (the same function the build used)."""
    for node in prange(split_pairs.shape[0]):
        offsets[node] = bisecting_plane(vectors, split_pairs[node, 0], split_pairs[node, 1], is_l2, planes[node])


# ----------------------------------------------------------------------------------------- routing


@njit(cache=True)
def route_to_leaf(x, planes, offsets, children, root) -> int:
    """The leaf a point falls into, following one side at each split."""
    node = root
    while node >= 0:
        node = children[node, 1] if margin(planes[node], offsets[node], x) > 0.0 else children[node, 0]
    return -node - 1


@njit(cache=True, parallel=True)
def route_rows(vectors, rows, planes, offsets, children, roots):
    """(len(rows), n_trees) leaf of each row in each tree."""
    out = np.empty((rows.shape[0], roots.shape[0]), dtype=np.int64)
    for i in prange(rows.shape[0]):
        for t in range(roots.shape[0]):
            out[i, t] = route_to_leaf(vectors[rows[i]], planes, offsets, children, roots[t])
    return out


@njit(cache=True)
def link_into_leaves(leaves, rows, extra_head, extra_next, extra_row, first_slot):
    """Prepend each row to the list of its leaf in every tree; slots from ``first_slot`` on are filled."""
    slot = first_slot
    for i in range(leaves.shape[0]):
        for t in range(leaves.shape[1]):
            leaf = leaves[i, t]
            extra_row[slot] = rows[i]
            extra_next[slot] = extra_head[leaf]
            extra_head[leaf] = slot
            slot += 1


# ----------------------------------------------------------------------------------------- exact re-ranking


@njit(cache=True, fastmath=True)
def raw_distance(q, x, is_l2) -> float:
    """Squared L2, or -<q,x> (cosine on normalised vectors, dot): smaller is closer."""
    total = 0.0
    if is_l2:
        for d in range(q.shape[0]):
            diff = q[d] - x[d]
            total += diff * diff
        return total
    for d in range(q.shape[0]):
        total += q[d] * x[d]
    return -total


@njit(cache=True)
def push_bounded(best_raw, best_rows, dist, row) -> None:
    """Offer (dist, row) to the k best so far, a max-heap on distance (the worst of the k at the root)."""
    if dist >= best_raw[0]:
        return
    k = best_raw.shape[0]
    i = 0
    while True:  # sift the new entry down from the root
        child = 2 * i + 1
        if child >= k:
            break
        if child + 1 < k and best_raw[child + 1] > best_raw[child]:
            child += 1
        if best_raw[child] <= dist:
            break
        best_raw[i] = best_raw[child]
        best_rows[i] = best_rows[child]
        i = child
    best_raw[i] = dist
    best_rows[i] = row


@njit(cache=True)
def write_sorted(best_raw, best_rows, out_raw, out_rows) -> None:
    """Heap -> ascending output row (unfilled slots stay +inf / -1)."""
    order = np.argsort(best_raw, kind="mergesort")
    for j in range(order.shape[0]):
        out_raw[j] = best_raw[order[j]]
        out_rows[j] = best_rows[order[j]] if np.isfinite(best_raw[order[j]]) else -1


@njit(cache=True)
def chunk_bounds(n_items, n_chunks, chunk) -> tuple:
    """[start, stop) of chunk ``chunk`` when n_items are cut into n_chunks contiguous pieces."""
    return chunk * n_items // n_chunks, (chunk + 1) * n_items // n_chunks


# ----------------------------------------------------------------------------------------- search


@njit(cache=True)
def _queue_push(priority, nodes, size, value, node) -> int:
    """Max-heap push; returns the new size."""
    i = size
    while i > 0:
        parent = (i - 1) // 2
        if priority[parent] >= value:
            break
        priority[i] = priority[parent]
        nodes[i] = nodes[parent]
        i = parent
    priority[i] = value
    nodes[i] = node
    return size + 1


@njit(cache=True)
def _queue_pop(priority, nodes, size) -> tuple:
    """Max-heap pop; returns (value, node, new size)."""
    top_value, top_node = priority[0], nodes[0]
    size -= 1
    value, node = priority[size], nodes[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and priority[child + 1] > priority[child]:
            child += 1
        if priority[child] <= value:
            break
        priority[i] = priority[child]
        nodes[i] = nodes[child]
        i = child
    if size > 0:
        priority[i] = value
        nodes[i] = node
    return top_value, top_node, size


@njit(cache=True, fastmath=True)
def _visit_row(row, query, vectors, mask, stamps, stamp, best_raw, best_rows, is_l2) -> int:
    """Re-rank one candidate unless seen already for this query or masked out; returns 1 if its distance
    was computed."""
    if stamps[row] == stamp:
        return 0
    stamps[row] = stamp
    if not mask[row]:
        return 0
    push_bounded(best_raw, best_rows, raw_distance(query, vectors[row], is_l2), row)
    return 1


@njit(cache=True, parallel=True, fastmath=True)
def forest_search(queries, vectors, mask, planes, offsets, children, roots, leaf_starts, leaf_rows,
                  extra_head, extra_next, extra_row, k, search_k, is_l2, n_threads):
    """Annoy's search: one priority queue over the nodes of every tree, keyed by the smallest margin met on
    the way down (how far the query is from leaving that branch), opened best-first until ``search_k``
    distinct live candidates are gathered; they are re-ranked exactly.

    Returns (rows (q,k) int64 padded -1, raw (q,k) float32, distances computed per query (q,) int64)."""
    n_queries = queries.shape[0]
    out_rows = np.full((n_queries, k), -1, dtype=np.int64)
    out_raw = np.full((n_queries, k), np.inf, dtype=np.float32)
    n_computed = np.zeros(n_queries, dtype=np.int64)
    capacity = roots.shape[0] + 2 * children.shape[0] + 1  # every node enters the queue at most once
    n_chunks = min(n_queries, n_threads)  # one chunk of queries per thread, each with its own scratch
    for chunk in prange(n_chunks):
        priority = np.empty(capacity, dtype=np.float32)
        nodes = np.empty(capacity, dtype=np.int32)
        stamps = np.zeros(vectors.shape[0], dtype=np.int32)  # stamps[row] == qi + 1: seen by query qi
        best_raw = np.empty(k, dtype=np.float32)
        best_rows = np.empty(k, dtype=np.int64)
        first, last = chunk_bounds(n_queries, n_chunks, chunk)
        for qi in range(first, last):
            query = queries[qi]
            best_raw[:] = np.inf
            best_rows[:] = -1
            size = 0
            for t in range(roots.shape[0]):
                size = _queue_push(priority, nodes, size, np.inf, roots[t])
            computed = 0
            while size > 0 and computed < search_k:
                bound, node, size = _queue_pop(priority, nodes, size)
                if node >= 0:
                    m = margin(planes[node], offsets[node], query)
                    size = _queue_push(priority, nodes, size, min(bound, m), children[node, 1])
                    size = _queue_push(priority, nodes, size, min(bound, -m), children[node, 0])
                    continue
                leaf = -node - 1
                for pos in range(leaf_starts[leaf], leaf_starts[leaf + 1]):
                    computed += _visit_row(leaf_rows[pos], query, vectors, mask, stamps, qi + 1,
                                           best_raw, best_rows, is_l2)
                slot = extra_head[leaf]
                while slot >= 0:
                    computed += _visit_row(extra_row[slot], query, vectors, mask, stamps, qi + 1,
                                           best_raw, best_rows, is_l2)
                    slot = extra_next[slot]
            n_computed[qi] = computed
            write_sorted(best_raw, best_rows, out_raw[qi], out_rows[qi])
    return out_rows, out_raw, n_computed
