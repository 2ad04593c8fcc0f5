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

``grow_trees`` grows a batch of trees in parallel, each into its own slice of preallocated arrays; the caller
trims them and lays the trees end to end (node and leaf ids shifted past the trees before).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .heaps import heap_pop, heap_push, heap_sort, offer

def read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view.  The indexes hand the kernels their stored arrays this way whether they are in memory or
    mapped from disk (where they are read-only anyway): Numba then compiles each kernel once, not once per
    combination of writable and read-only arguments."""
    view = array.view()
    view.flags.writeable = False
    return view


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
#
# Bernhardsson's split is the hyperplane equidistant to two points drawn from the node.  Like Annoy's own code
# (``two_means``), the two points are then moved by a few steps of online 2-means over random points of the node,
# so the plane falls between the node's two main groups instead of through one of them: on clustered data this
# is what makes cells follow clusters (recall@10 at 1000 candidates rose from 0.78 to over 0.9 in our benchmark).

TWO_MEANS_STEPS = 200  # as Annoy
SPLIT_TRIES = 3  # planes drawn before giving up on a node whose points (nearly) all coincide


@njit(cache=True, fastmath=True)
def _load_point(vectors, row, is_l2, out) -> bool:
    """out = the row, scaled to unit length for the angular metrics; False for a zero vector."""
    scale = 1.0
    if not is_l2:
        norm = 0.0
        for d in range(out.shape[0]):
            norm += vectors[row, d] * vectors[row, d]
        if norm == 0.0:
            return False
        scale = 1.0 / np.sqrt(norm)
    for d in range(out.shape[0]):
        out[d] = vectors[row, d] * scale
    return True


@njit(cache=True, fastmath=True)
def two_means(vectors, rows, start, stop, is_l2, state, p, q, point) -> None:
    """Two centroids of rows[start:stop] in ``p`` and ``q``: two distinct random points, then TWO_MEANS_STEPS
    steps that move the nearer centroid (distance weighted by its count, to keep the two sizes balanced)
    to the running mean of the points it won."""
    count = stop - start
    i = random_below(state, count)
    j = random_below(state, count - 1)
    j += j >= i
    _load_point(vectors, rows[start + i], is_l2, p)
    _load_point(vectors, rows[start + j], is_l2, q)
    p_count = 1
    q_count = 1
    for _ in range(TWO_MEANS_STEPS):
        if not _load_point(vectors, rows[start + random_below(state, count)], is_l2, point):
            continue
        to_p = 0.0
        to_q = 0.0
        for d in range(point.shape[0]):
            to_p += (p[d] - point[d]) ** 2
            to_q += (q[d] - point[d]) ** 2
        if p_count * to_p < q_count * to_q:
            for d in range(point.shape[0]):
                p[d] = (p[d] * p_count + point[d]) / (p_count + 1)
            p_count += 1
        elif q_count * to_q < p_count * to_p:
            for d in range(point.shape[0]):
                q[d] = (q[d] * q_count + point[d]) / (q_count + 1)
            q_count += 1


@njit(cache=True, fastmath=True)
def bisecting_plane(p, q, is_l2, normal_out) -> float:
    """Unit normal (into ``normal_out``) and offset of the hyperplane equidistant to p and q.

    l2: the perpendicular bisector, offset -<n, (p+q)/2>.  cosine/dot: the plane through the origin that bisects
    the angle of p and q (Annoy's angular split), offset 0.  If p and q coincide the normal is zero: every
    margin is 0 and the search weighs both sides alike."""
    scale_p = 1.0
    scale_q = 1.0
    if not is_l2:  # directions only
        norm_p = 0.0
        norm_q = 0.0
        for d in range(p.shape[0]):
            norm_p += p[d] * p[d]
            norm_q += q[d] * q[d]
        scale_p = 1.0 / np.sqrt(norm_p) if norm_p > 0 else 1.0
        scale_q = 1.0 / np.sqrt(norm_q) if norm_q > 0 else 1.0
    length = 0.0
    for d in range(p.shape[0]):
        diff = p[d] * scale_p - q[d] * scale_q
        normal_out[d] = diff
        length += diff * diff
    if length == 0.0:
        normal_out[:] = 0.0
        return 0.0
    inv = 1.0 / np.sqrt(length)
    offset = 0.0
    for d in range(p.shape[0]):
        normal_out[d] *= inv
        if is_l2:
            offset -= normal_out[d] * 0.5 * (p[d] + q[d])
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


@njit(cache=True)
def split_node(vectors, rows, start, stop, is_l2, state, plane, scratch) -> tuple:
    """Choose the plane of a node (into ``plane``) and partition its rows; returns (offset, middle).
    A node whose points coincide gets a zero plane and is cut in half by position."""
    offset = 0.0
    middle = start
    for _ in range(SPLIT_TRIES):
        two_means(vectors, rows, start, stop, is_l2, state, scratch[0], scratch[1], scratch[2])
        offset = bisecting_plane(scratch[0], scratch[1], is_l2, plane)
        middle = partition(vectors, rows, start, stop, plane, offset)
        if start < middle < stop:
            return offset, middle
    plane[:] = 0.0
    return 0.0, (start + stop) // 2


# ----------------------------------------------------------------------------------------- building


@njit(cache=True)
def grow_tree(vectors, rows, is_l2, leaf_size, seed, children, planes, offsets, leaf_starts) -> tuple:
    """Grow one tree over ``rows`` (permuted in place) into the given arrays; returns (root, n_internal,
    n_leaves, complete).  ``complete`` is False when the tree needs more internal nodes than ``planes`` holds:
    the caller grows it again with room to spare (the same seed gives the same tree).

    Depth first, left before right, so leaves come out in the order of ``rows`` and leaf j ends where j+1 starts.
    """
    n = rows.shape[0]
    state = np.array([np.uint64(seed)], dtype=np.uint64)
    scratch = np.empty((3, vectors.shape[1]), dtype=np.float32)
    # ranges still to split, with the parent slot to patch: (start, stop, parent, side)
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
            if n_internal == planes.shape[0]:
                return root, n_internal, n_leaves, False
            code = n_internal
            n_internal += 1
            offsets[code], middle = split_node(vectors, rows, start, stop, is_l2, state, planes[code], scratch)
            stack[depth, 0], stack[depth, 1], stack[depth, 2], stack[depth, 3] = middle, stop, code, 1
            stack[depth + 1, 0], stack[depth + 1, 1], stack[depth + 1, 2], stack[depth + 1, 3] = start, middle, code, 0
            depth += 2
        if parent < 0:
            root = code
        else:
            children[parent, side] = code
    leaf_starts[n_leaves] = n
    return root, n_internal, n_leaves, True


@njit(cache=True, parallel=True)
def grow_trees(vectors, rows, is_l2, leaf_size, seeds, children, planes, offsets, leaf_starts, shapes):
    """Grow ``len(seeds)`` trees in parallel over the same rows, tree t into ``children[t]``, ``planes[t]``, ...
    Returns the rows permuted by each tree (n_trees, n); ``shapes[t] = (root, n_internal, n_leaves, complete)``."""
    n_trees = seeds.shape[0]
    leaf_rows = np.empty((n_trees, rows.shape[0]), dtype=np.int32)
    for t in prange(n_trees):
        leaf_rows[t, :] = rows
        root, n_internal, n_leaves, complete = grow_tree(
            vectors, leaf_rows[t], is_l2, leaf_size, seeds[t], children[t], planes[t], offsets[t], leaf_starts[t]
        )
        shapes[t, 0], shapes[t, 1], shapes[t, 2], shapes[t, 3] = root, n_internal, n_leaves, complete
    return leaf_rows


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
#
# Both the forest and the hash tables first gather candidate rows (with repeats: a point sits in every tree and
# every table), then rank them by exact distance.  Repeats are dropped with a bitset of the rows (n / 8 bytes,
# 12.5 KB for 100k rows: it stays in cache), allocated once per thread and cleared after each query by
# walking the candidates, so a query costs O(candidates) whatever n.  A sort (as Annoy does) or a hash set
# cost as much as the distances themselves at a few thousand candidates.


@njit(cache=True)
def new_seen_bits(n_rows):
    """The zeroed bitset ``drop_repeats`` needs for an index of n_rows rows."""
    return np.zeros((n_rows + 63) // 64, dtype=np.uint64)


@njit(cache=True)
def drop_repeats(candidates, seen) -> int:
    """Move the distinct values of ``candidates`` to its front, first occurrences in order; returns how many
    there are.  ``seen`` is a zeroed bitset of the rows (``new_seen_bits``), zeroed again on return."""
    distinct = 0
    for i in range(candidates.shape[0]):
        row = candidates[i]
        bit = np.uint64(1) << np.uint64(row & 63)
        if seen[row >> 6] & bit:
            continue
        seen[row >> 6] |= bit
        candidates[distinct] = row
        distinct += 1
    for i in range(distinct):
        seen[candidates[i] >> 6] = 0
    return distinct


@njit(cache=True, fastmath=True)
def raw_distance(q, x, is_l2) -> float:
    """Squared L2, or -<q,x> (cosine on normalised vectors, dot): smaller is closer."""
    total = np.float32(0.0)
    if is_l2:
        for d in range(q.shape[0]):
            diff = q[d] - x[d]
            total += diff * diff
        return total
    for d in range(q.shape[0]):
        total += q[d] * x[d]
    return -total


@njit(cache=True, fastmath=True)
def rerank(query, candidates, vectors, is_l2, seen, out_raw, out_rows) -> int:
    """Exact k best of the candidate rows (repeats allowed; ``candidates`` is reordered in place), written sorted
    ascending into out_raw / out_rows (k = their length; unfilled slots +inf / -1).  ``seen``: see
    ``drop_repeats``.  Returns the number of distances computed, one per distinct candidate."""
    k = out_raw.shape[0]
    best_raw = np.full(k, np.inf, dtype=np.float32)
    best_rows = np.full(k, -1, dtype=np.int64)
    computed = drop_repeats(candidates, seen)
    for i in range(computed):
        offer(best_raw, best_rows, raw_distance(query, vectors[candidates[i]], is_l2), candidates[i])
    heap_sort(best_raw, best_rows)
    for j in range(k):
        out_raw[j] = best_raw[j]
        out_rows[j] = best_rows[j] if np.isfinite(best_raw[j]) else -1
    return computed


@njit(cache=True)
def ensure_room(buffer, used, extra):
    """``buffer`` if it has room for ``extra`` more items after the first ``used``, else a copy at least twice
    as large (scratch arrays start small and grow as a query needs)."""
    if used + extra <= buffer.shape[0]:
        return buffer
    grown = np.empty(max(2 * buffer.shape[0], used + extra), dtype=buffer.dtype)
    grown[:used] = buffer[:used]
    return grown


@njit(cache=True)
def chunk_bounds(n_items, n_chunks, chunk) -> tuple:
    """[start, stop) of chunk ``chunk`` when n_items are cut into n_chunks contiguous pieces."""
    return chunk * n_items // n_chunks, (chunk + 1) * n_items // n_chunks


# ----------------------------------------------------------------------------------------- search


@njit(cache=True, fastmath=True)
def gather_candidates(query, mask, planes, offsets, children, roots, leaf_starts, leaf_rows, extra_head,
                      extra_next, extra_row, priority, nodes, candidates) -> tuple:
    """Annoy's traversal: one priority queue over the nodes of every tree, keyed by the smallest margin met on
    the way down (how far the query is from leaving that branch), opened best-first.  Rows of the leaves it
    reaches are appended to ``candidates`` (masked rows left out, repeats kept) until it is full.
    Returns (priority, nodes, found): the queue arrays, grown if it needed more room, and the rows written."""
    priority = ensure_room(priority, 0, roots.shape[0])
    nodes = ensure_room(nodes, 0, roots.shape[0])
    size = 0
    for t in range(roots.shape[0]):
        size = heap_push(priority, nodes, size, np.inf, roots[t])
    found = 0
    wanted = candidates.shape[0]
    while size > 0 and found < wanted:
        bound, node, size = heap_pop(priority, nodes, size)
        if node >= 0:
            m = margin(planes[node], offsets[node], query)
            priority = ensure_room(priority, size, 2)
            nodes = ensure_room(nodes, size, 2)
            size = heap_push(priority, nodes, size, min(bound, m), children[node, 1])
            size = heap_push(priority, nodes, size, min(bound, -m), children[node, 0])
            continue
        leaf = -node - 1
        for pos in range(leaf_starts[leaf], leaf_starts[leaf + 1]):
            if found < wanted and mask[leaf_rows[pos]]:
                candidates[found] = leaf_rows[pos]
                found += 1
        slot = extra_head[leaf]
        while slot >= 0 and found < wanted:
            if mask[extra_row[slot]]:
                candidates[found] = extra_row[slot]
                found += 1
            slot = extra_next[slot]
    return priority, nodes, found


@njit(cache=True)
def forest_search_range(queries, first, last, vectors, mask, planes, offsets, children, roots, leaf_starts,
                        leaf_rows, extra_head, extra_next, extra_row, search_k, is_l2, out_rows, out_raw,
                        n_computed) -> None:
    """Search queries [first, last) one after the other, with scratch allocated once.  ``search_k`` counts the
    candidates gathered, repeats included (as Annoy counts them); their distinct rows are re-ranked exactly."""
    priority = np.empty(256, dtype=np.float32)
    nodes = np.empty(256, dtype=np.int32)
    candidates = np.empty(search_k, dtype=np.int64)
    seen = new_seen_bits(vectors.shape[0])
    for qi in range(first, last):
        priority, nodes, found = gather_candidates(
            queries[qi], mask, planes, offsets, children, roots, leaf_starts, leaf_rows, extra_head, extra_next,
            extra_row, priority, nodes, candidates,
        )
        n_computed[qi] = rerank(queries[qi], candidates[:found], vectors, is_l2, seen, out_raw[qi], out_rows[qi])


@njit(cache=True, parallel=True)
def forest_search(queries, vectors, mask, planes, offsets, children, roots, leaf_starts, leaf_rows,
                  extra_head, extra_next, extra_row, search_k, is_l2, out_rows, out_raw, n_computed, n_threads):
    """``forest_search_range`` over a batch, one contiguous chunk of queries per thread."""
    n_chunks = min(queries.shape[0], n_threads)
    for chunk in prange(n_chunks):
        first, last = chunk_bounds(queries.shape[0], n_chunks, chunk)
        forest_search_range(queries, first, last, vectors, mask, planes, offsets, children, roots, leaf_starts,
                            leaf_rows, extra_head, extra_next, extra_row, search_k, is_l2, out_rows, out_raw,
                            n_computed)
