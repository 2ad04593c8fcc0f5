"""HNSW graph kernels (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using
Hierarchical Navigable Small World graphs", 2016/2018): search-layer (Algorithm 2), the neighbour-selection
heuristic (Algorithm 4), insertion (Algorithm 1) and k-NN search (Algorithm 5), over flat arrays.

The graph is a tuple of arrays, ``graph = (levels, links0, counts0, upper_start, upper_links, upper_counts)``:
  * ``levels[v]``: the top layer of node v;
  * ``links0[v, :counts0[v]]``: the neighbours of v on layer 0 (capacity 2M, padded with -1);
  * layers >= 1 are compact: only nodes that reach them own a block.  The neighbours of v on layer l >= 1 are
    ``upper_links[b, :upper_counts[b]]`` with ``b = upper_start[v] + l - 1`` (capacity M).
Distances are raw ("ip": -<q,x>; "l2": squared), smaller is closer.  Heaps are pairs of arrays (float32 keys,
int32 nodes), the max-heaps of kernels/heaps.py: the result set W keyed by distance (its root the farthest kept),
the candidates C by negated distance (its root the nearest).
The visited set is an array of uint16 tags with an epoch: a node is visited when its tag equals the epoch, so
starting a new search is one increment, not a clear.

Parallel insertion works as in hnswlib: workers take the next node from an atomic counter and insert it while
the graph changes under them.  Each node has a spin lock that guards its neighbour lists; a worker holds at
most one node lock at a time, and a node that raises the top layer holds a global lock for its whole insertion,
so no cycle of waits (deadlock) can form.  Queries run without locks: the graph does not change during search.

Kernels that neither allocate nor return arrays are compiled without reference counting (``_nrt=False``):
otherwise numba increments and decrements the shared count of every array argument at each call, an atomic
operation that the threads of a parallel build fight over.  They take their scratch from the caller.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .answers import ZERO_QUERY, finish_answer, query_copy, start_answer
from .heaps import heap_pop, heap_push, replace_top
from .prefetch import prefetch, prefetch_row

#: LLVM fast-math flags that let the distance loops vectorise (reassociation); not "nnan"/"ninf", because the
#: searches compare against +inf (an empty result set) and must keep doing so correctly
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
EPOCH_LIMIT = 65_535  # uint16 tags: after this many searches the tags are cleared and the epoch restarts at 1
SPINS_BEFORE_YIELD = 64  # a lock holder may have been descheduled: stop burning its CPU and let it run

kernel = njit(fastmath=FASTMATH, cache=True, _nrt=False)  # no allocation, no reference counting (see above)
inline = njit(fastmath=FASTMATH, cache=True, inline="always")  # small helpers of the hot loops


# ----------------------------------------------------------------------------------------------- atomics
def _element_pointer(context, builder, signature, args, n_indices=1):
    """Pointer to array[args[1], ..., args[n_indices]] of array args[0]; missing trailing indices are 0."""
    array_type = signature.args[0]
    ary = context.make_array(array_type)(context, builder, args[0])
    indices = [context.cast(builder, args[i], signature.args[i], types.intp) for i in range(1, n_indices + 1)]
    indices += [context.get_constant(types.intp, 0)] * (array_type.ndim - n_indices)
    return cgutils.get_item_pointer(context, builder, array_type, ary, indices)


@intrinsic
def _compare_and_swap(typingctx, array, index, expected, new):
    """array[index] = new if it equals expected, atomically; returns the value it held."""
    sig = array.dtype(array, index, array.dtype, array.dtype)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature, args)
        return builder.extract_value(builder.cmpxchg(ptr, args[2], args[3], "acquire", "monotonic"), 0)

    return sig, codegen


@intrinsic
def _store_release(typingctx, array, index, value):
    """array[index] = value, after every earlier write of this thread is visible to other threads."""
    sig = types.void(array, index, array.dtype)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature, args)
        builder.store_atomic(args[2], ptr, "release", signature.args[0].dtype.bitwidth // 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _load_acquire(typingctx, array, index):
    """array[index], read atomically (a value another thread publishes with _store_release)."""
    sig = array.dtype(array, index)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature, args)
        return builder.load_atomic(ptr, "acquire", signature.args[0].dtype.bitwidth // 8)

    return sig, codegen


@intrinsic
def _fetch_add(typingctx, array, index, value):
    """Atomically add value to array[index]; returns the value it held before."""
    sig = array.dtype(array, index, array.dtype)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature, args)
        return builder.atomic_rmw("add", ptr, args[2], "acq_rel")

    return sig, codegen


@intrinsic
def _yield_cpu(typingctx):
    """sched_yield(2): give the core to another thread (the one holding the lock we wait for)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


@inline
def spin_lock(locks, i):
    spins = 0
    while _compare_and_swap(locks, i, np.int32(0), np.int32(1)) != 0:
        spins += 1
        if spins >= SPINS_BEFORE_YIELD:
            _yield_cpu()
            spins = 0


@inline
def spin_unlock(locks, i):
    _store_release(locks, i, np.int32(0))


# ----------------------------------------------------------------------------------------------- distances
@inline
def raw_distance(q, vectors, row, is_ip):
    """Raw distance from q to vectors[row]: -<q,x> when is_ip, else ||q-x||^2 (float32 accumulation, SIMD).
    The row is indexed in place: no array view, so no reference counting in the hot loop."""
    acc = np.float32(0.0)
    if is_ip:
        for j in range(q.shape[0]):
            acc += q[j] * vectors[row, j]
        return -acc
    for j in range(q.shape[0]):
        diff = q[j] - vectors[row, j]
        acc += diff * diff
    return acc


@inline
def pair_distance(vectors, a, b, is_ip):
    """Raw distance between rows a and b of vectors."""
    acc = np.float32(0.0)
    if is_ip:
        for j in range(vectors.shape[1]):
            acc += vectors[a, j] * vectors[b, j]
        return -acc
    for j in range(vectors.shape[1]):
        diff = vectors[a, j] - vectors[b, j]
        acc += diff * diff
    return acc


# ----------------------------------------------------------------------------------------------- results
@kernel
def drain_sorted(w_keys, w_nodes, w_size, out_dists, out_nodes):
    """Empty the result max-heap W into out_* sorted by increasing distance; returns its size."""
    n = w_size
    while w_size > 0:
        out_dists[w_size - 1], out_nodes[w_size - 1], w_size = heap_pop(w_keys, w_nodes, w_size)
    return n


@kernel
def next_epoch(tags, epoch):
    """The epoch of a new search: everything tagged with an older one counts as unvisited."""
    if epoch >= EPOCH_LIMIT:
        tags[:] = 0
        return 1
    return epoch + 1


# ----------------------------------------------------------------------------------------------- layers
@kernel
def greedy_closest(q, vectors, graph, level, node, dist, is_ip, locks, use_locks):
    """Walk layer ``level`` from node to a local minimum of the distance to q (search-layer with ef = 1)."""
    upper_start, upper_links, upper_counts = graph[3], graph[4], graph[5]
    n_nodes = graph[0].shape[0]
    improved = True
    while improved:
        improved = False
        row = upper_start[node] + level - 1
        if use_locks:
            spin_lock(locks, node)
        best = node
        for j in range(upper_counts[row]):
            e = upper_links[row, j]
            if e < 0 or e >= n_nodes:  # a list being rewritten by a concurrent insertion, or a node added since
                continue
            d = raw_distance(q, vectors, e, is_ip)
            if d < dist:
                dist = d
                best = e
        if use_locks:
            spin_unlock(locks, node)
        if best != node:
            node = best
            improved = True
    return node, dist


@kernel
def search_layer(q, vectors, graph, level, entry_nodes, entry_dists, n_entry, ef, is_ip, tags, epoch,
                 mask, use_mask, locks, use_locks, c_keys, c_nodes, w_keys, w_nodes, fresh):
    """Algorithm 2: the ef nearest neighbours of q on one layer, starting from the entry points.

    The candidates C live in (c_keys = -distance, c_nodes), whose length must be at least the number of nodes: a
    node enters C at most once (the visited tags see to it), so C never overflows and never reallocates.
    Returns the size of W, left in (w_keys = distance, w_nodes) as a max-heap.  With ``use_mask`` the walk goes
    through every node but only nodes with mask True enter W, and the search does not stop before W holds ef
    of them (a filter or tombstones must not leave the result short).  ``use_locks``: the graph may change
    under us (parallel build), so each neighbour list is copied under its node's lock.  A search without the
    locks may run beside an insertion (the collection's indexer): it reads lists as they are, and skips nodes
    past the ones it was given (``graph[0]``'s length)."""
    adjacency = graph[1] if level == 0 else graph[4]
    upper_start = graph[3]
    n_nodes = graph[0].shape[0]  # nodes this search sees: an insertion running beside it may link newer ones
    c_size = 0
    w_size = 0
    for i in range(n_entry):
        e = entry_nodes[i]
        tags[e] = epoch
        c_size = heap_push(c_keys, c_nodes, c_size, -entry_dists[i], e)
        if not use_mask or mask[e]:
            if w_size < ef:
                w_size = heap_push(w_keys, w_nodes, w_size, entry_dists[i], e)
            elif entry_dists[i] < w_keys[0]:
                replace_top(w_keys, w_nodes, w_size, entry_dists[i], e)
    while c_size > 0:
        worst = w_keys[0] if w_size > 0 else np.inf
        if -c_keys[0] > worst and (w_size == ef or not use_mask):
            break  # every node left in C is farther than everything in W: W cannot improve
        _, node, c_size = heap_pop(c_keys, c_nodes, c_size)
        if level == 0 and c_size > 0:  # the list expanded next, most likely: start loading it
            prefetch(adjacency, c_nodes[0], 0)
            prefetch(adjacency, c_nodes[0], adjacency.shape[1] - 1)
        row = node if level == 0 else upper_start[node] + level - 1  # layer 0: links0; above: upper
        # first pass: keep the unvisited neighbours and start loading their vectors.  Entries past a list's
        # count are -1, so the list ends at the first -1: reading the count would cost one more cache miss.
        if use_locks:
            spin_lock(locks, node)
        n_fresh = 0
        for j in range(adjacency.shape[1]):
            e = adjacency[row, j]
            if e < 0:
                break
            if e >= n_nodes:
                continue
            if tags[e] != epoch:
                tags[e] = epoch
                fresh[n_fresh] = e
                n_fresh += 1
                prefetch_row(vectors, e)
        if use_locks:
            spin_unlock(locks, node)
        # second pass: distances
        for j in range(n_fresh):
            e = fresh[j]
            d = raw_distance(q, vectors, e, is_ip)
            if w_size < ef or d < w_keys[0]:
                c_size = heap_push(c_keys, c_nodes, c_size, -d, e)
                if not use_mask or mask[e]:
                    if w_size < ef:
                        w_size = heap_push(w_keys, w_nodes, w_size, d, e)
                    else:
                        replace_top(w_keys, w_nodes, w_size, d, e)
    return w_size


# ----------------------------------------------------------------------------------------------- construction
@kernel
def select_neighbours(vectors, cand_nodes, cand_dists, n_cand, m, is_ip, out_nodes):
    """Algorithm 4, the heuristic, with both its options off (no candidate extension, pruned candidates not
    kept to fill up), as hnswlib runs it.

    Candidates come sorted by increasing distance to the base element.  A candidate is kept only if it is
    closer to the base element than to every neighbour kept so far: otherwise a kept neighbour already leads
    towards it, and the link would be redundant.  This spreads the links over directions, which keeps
    clusters connected to each other.  Returns the number kept (at most m), written to out_nodes."""
    n_out = 0
    for i in range(n_cand):
        if n_out >= m:
            break
        e = cand_nodes[i]
        keep = True
        for j in range(n_out):
            if pair_distance(vectors, e, out_nodes[j], is_ip) < cand_dists[i]:
                keep = False
                break
        if keep:
            out_nodes[n_out] = e
            n_out += 1
    return n_out


@kernel
def _sort_by_distance(nodes, dists, n):
    """Insertion sort of the first n (dist, node) pairs (short lists: at most 2M + 1)."""
    for i in range(1, n):
        d = dists[i]
        v = nodes[i]
        j = i - 1
        while j >= 0 and dists[j] > d:
            dists[j + 1] = dists[j]
            nodes[j + 1] = nodes[j]
            j -= 1
        dists[j + 1] = d
        nodes[j + 1] = v


@kernel
def add_link(vectors, graph, owner, new, level, is_ip, locks, buf_nodes, buf_dists, buf_out):
    """Add the edge owner -> new on a layer.  A full list is shrunk back to capacity with the heuristic over
    its old neighbours plus the new one (which may itself be dropped), as the paper's Algorithm 1 does."""
    if level == 0:
        adjacency, counts = graph[1], graph[2]
    else:
        adjacency, counts = graph[4], graph[5]
    row = owner if level == 0 else graph[3][owner] + level - 1
    capacity = adjacency.shape[1]
    spin_lock(locks, owner)
    n = counts[row]
    for j in range(n):
        if adjacency[row, j] == new:
            spin_unlock(locks, owner)
            return
    if n < capacity:
        adjacency[row, n] = new
        counts[row] = n + 1
    else:
        for j in range(n):
            buf_nodes[j] = adjacency[row, j]
            buf_dists[j] = pair_distance(vectors, owner, buf_nodes[j], is_ip)
        buf_nodes[n] = new
        buf_dists[n] = pair_distance(vectors, owner, new, is_ip)
        _sort_by_distance(buf_nodes, buf_dists, n + 1)
        kept = select_neighbours(vectors, buf_nodes, buf_dists, n + 1, capacity, is_ip, buf_out)
        for j in range(capacity):
            adjacency[row, j] = buf_out[j] if j < kept else -1
        counts[row] = kept
    spin_unlock(locks, owner)


@kernel
def insert_node(c, vectors, graph, entry, M, ef_construction, is_ip, locks, tags, epoch, scratch):
    """Algorithm 1: insert node c (its vector and level are already stored).  Returns the last epoch used.

    ``entry[0]`` is the entry point (a node on the top layer); ``locks[-1]`` is the global lock a node that
    raises the top layer holds while it is inserted.  ``scratch`` is the worker's (see insert_batch)."""
    c_keys, c_nodes, w_keys, w_nodes, fresh, found_nodes, found_dists, selected, buf_nodes, buf_dists, buf_out, \
        no_mask = scratch
    levels = graph[0]
    q = vectors[c]
    level_c = levels[c]
    global_lock = len(locks) - 1
    ep = _load_acquire(entry, 0)
    holds_global = False
    if level_c > levels[ep]:
        spin_lock(locks, global_lock)
        holds_global = True
        ep = _load_acquire(entry, 0)
        if level_c <= levels[ep]:  # another worker raised the top layer meanwhile
            spin_unlock(locks, global_lock)
            holds_global = False
    top = levels[ep]
    dist = raw_distance(q, vectors, ep, is_ip)
    for level in range(top, level_c, -1):  # phase 1: greedy descent to the layers c lives on
        ep, dist = greedy_closest(q, vectors, graph, level, ep, dist, is_ip, locks, True)
    found_nodes[0] = ep
    found_dists[0] = dist
    n_found = 1
    for level in range(min(top, level_c), -1, -1):  # phase 2: search and connect on each of c's layers
        epoch = next_epoch(tags, epoch)
        # c itself counts as visited: another worker may already have linked it (it found c on a layer above,
        # where c is reachable), and c must not become its own neighbour
        tags[c] = epoch
        w_size = search_layer(q, vectors, graph, level, found_nodes, found_dists, n_found, ef_construction, is_ip,
                              tags, epoch, no_mask, False, locks, True, c_keys, c_nodes, w_keys, w_nodes, fresh)
        # W, sorted, feeds the heuristic and is the entry set of the layer below (paper: ep <- W)
        n_found = drain_sorted(w_keys, w_nodes, w_size, found_dists, found_nodes)
        n_selected = select_neighbours(vectors, found_nodes, found_dists, n_found, M, is_ip, selected)
        for j in range(n_selected):
            add_link(vectors, graph, c, selected[j], level, is_ip, locks, buf_nodes, buf_dists, buf_out)
        for j in range(n_selected):
            add_link(vectors, graph, selected[j], c, level, is_ip, locks, buf_nodes, buf_dists, buf_out)
    if holds_global:
        _store_release(entry, 0, np.int32(c))
        spin_unlock(locks, global_lock)
    return epoch


# nogil: the collection holds the index exclusively while it inserts (so its scratch is free), and the other
# threads of the process (the event loop, a write, searches of other collections) go on meanwhile
@njit(parallel=True, fastmath=FASTMATH, cache=True, nogil=True)
def insert_batch(vectors, graph, entry, next_node, stop, M, ef_construction, is_ip, locks, tags, epochs, c_keys,
                 c_nodes):
    """Insert nodes next_node[0] .. stop-1 with one worker per row of the scratch: ``tags`` / ``epochs``
    (visited set), ``c_keys`` / ``c_nodes`` (candidate heap), rows at least as long as the graph.

    Workers take nodes in order from the atomic counter next_node[0], as hnswlib's threads do, so the graph
    grows in insertion order whatever the number of workers.  ``entry[0]`` must already be a node."""
    n_workers = tags.shape[0]
    two_m = graph[1].shape[1]
    for w in prange(n_workers):
        scratch = (c_keys[w], c_nodes[w],
                   np.empty(ef_construction, dtype=np.float32), np.empty(ef_construction, dtype=np.int32),  # W
                   np.empty(two_m, dtype=np.int32),  # fresh neighbours of the node being expanded
                   np.empty(ef_construction, dtype=np.int32), np.empty(ef_construction, dtype=np.float32),  # W sorted
                   np.empty(M, dtype=np.int32),  # selected neighbours
                   np.empty(two_m + 1, dtype=np.int32), np.empty(two_m + 1, dtype=np.float32),  # list to prune
                   np.empty(two_m + 1, dtype=np.int32),  # pruned list
                   np.empty(0, dtype=np.bool_))  # no mask
        epoch = epochs[w]
        while True:
            c = _fetch_add(next_node, 0, np.int64(1))
            if c >= stop:
                break
            epoch = insert_node(c, vectors, graph, entry, M, ef_construction, is_ip, locks, tags[w], epoch, scratch)
        epochs[w] = epoch


# ----------------------------------------------------------------------------------------------- k-NN search
@kernel
def search_query(q, vectors, graph, entry, k, ef, is_ip, mask, use_mask, tags, epoch, scratch, out_rows, out_raw):
    """Algorithm 5: greedy descent through the upper layers, then search-layer with ef on layer 0.  Writes the
    k best into out_rows / out_raw (left padded as they are: -1 / +inf) and returns the epoch it used."""
    c_keys, c_nodes, w_keys, w_nodes, fresh, start_nodes, start_dists, no_locks = scratch
    levels = graph[0]
    ep = entry
    dist = raw_distance(q, vectors, ep, is_ip)
    for level in range(levels[ep], 0, -1):
        ep, dist = greedy_closest(q, vectors, graph, level, ep, dist, is_ip, no_locks, False)
    epoch = next_epoch(tags, epoch)
    start_nodes[0] = ep
    start_dists[0] = dist
    w_size = search_layer(q, vectors, graph, 0, start_nodes, start_dists, 1, ef, is_ip, tags, epoch, mask,
                          use_mask, no_locks, False, c_keys, c_nodes, w_keys, w_nodes, fresh)
    while w_size > k:  # drop the worst until k remain, then drain in order
        _, _, w_size = heap_pop(w_keys, w_nodes, w_size)
    drain_sorted(w_keys, w_nodes, w_size, out_raw, out_rows)
    return epoch


@njit(cache=True)
def _query_scratch(c_keys, c_nodes, ef, max_degree):
    return (c_keys, c_nodes, np.empty(ef, dtype=np.float32), np.empty(ef, dtype=np.int32),
            np.empty(max_degree, dtype=np.int32), np.empty(1, dtype=np.int32), np.empty(1, dtype=np.float32),
            np.empty(0, dtype=np.int32))


@njit(fastmath=FASTMATH, cache=True)  # holds the GIL: searches of one index share its scratch (see Workspace)
def search_one(q, vectors, graph, entry, k, ef, is_ip, mask, use_mask, tags, epochs, c_keys, c_nodes,
               normalize=False):
    """One query, no thread pool: the low-overhead path for single searches.  Uses row 0 of the scratch.

    ``normalize``: scale the query to unit length first (cosine), saving the caller a round of NumPy calls;
    a query of norm 0 (or one whose squares underflow to 0) is not searched, and out_rows[0, 0] is -2."""
    out_rows = np.full((1, k), -1, dtype=np.int64)
    out_raw = np.full((1, k), np.inf, dtype=np.float32)
    query, status = query_copy(q, normalize)
    if status == ZERO_QUERY:
        out_rows[0, 0] = ZERO_QUERY
        return out_rows, out_raw
    scratch = _query_scratch(c_keys[0], c_nodes[0], ef, graph[1].shape[1])
    epochs[0] = search_query(query, vectors, graph, entry, k, ef, is_ip, mask, use_mask, tags[0], epochs[0], scratch,
                             out_rows[0], out_raw[0])
    return out_rows, out_raw


@njit(fastmath=FASTMATH, cache=True)  # holds the GIL, as search_one
def answer_one(q, vectors, labels, graph, entry, k, ef, is_ip, tags, epochs, c_keys, c_nodes, normalize, final):
    """``search_one`` without a mask, answered as the user gets it: the labels of the hits (-1 padded) and their
    distances as ``metrics.finalize`` makes them (+inf padded), computed here instead of by three NumPy calls.
    ``final`` is one of kernels/answers.py's codes.  A query that is not searched gives ids[0, 0] = ZERO_QUERY or
    NON_FINITE_QUERY: the caller's general path raises the error."""
    query, ids, distances, rows, raw = start_answer(q, k, normalize)
    if ids[0, 0] < -1:  # not to be searched
        return ids, distances
    scratch = _query_scratch(c_keys[0], c_nodes[0], ef, graph[1].shape[1])
    epochs[0] = search_query(query, vectors, graph, entry, k, ef, is_ip, _NO_ROWS_MASK, False, tags[0], epochs[0],
                             scratch, rows, raw)
    finish_answer(rows, raw, labels, final, ids, distances)
    return ids, distances


_NO_ROWS_MASK = np.empty(0, dtype=np.bool_)


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def search_many(queries, vectors, graph, entry, k, ef, is_ip, mask, use_mask, tags, epochs, c_keys, c_nodes):
    """A batch of queries: worker w answers queries w, w + W, w + 2W, ... with row w of the scratch."""
    nq = queries.shape[0]
    n_workers = min(tags.shape[0], nq)
    out_rows = np.full((nq, k), -1, dtype=np.int64)
    out_raw = np.full((nq, k), np.inf, dtype=np.float32)
    for w in prange(n_workers):
        scratch = _query_scratch(c_keys[w], c_nodes[w], ef, graph[1].shape[1])
        epoch = epochs[w]
        for i in range(w, nq, n_workers):
            epoch = search_query(queries[i], vectors, graph, entry, k, ef, is_ip, mask, use_mask, tags[w], epoch,
                                 scratch, out_rows[i], out_raw[i])
        epochs[w] = epoch
    return out_rows, out_raw


@njit(cache=True)
def link_stars(rows, links0, counts0):
    """For each row of ``rows`` (a sample query's nearest nodes, nearest first, -1 padded): link its first node
    and each other node both ways on layer 0 where the node's list has room and lacks the link.  Returns the
    number of links added (HNSWIndex.add_query_edges)."""
    added = 0
    for i in range(rows.shape[0]):
        hub = rows[i, 0]
        if hub < 0:
            continue
        for j in range(1, rows.shape[1]):
            other = rows[i, j]
            if other < 0 or other == hub:
                continue
            added += _link_if_room(links0, counts0, hub, other)
            added += _link_if_room(links0, counts0, other, hub)
    return added


@njit(cache=True)
def _link_if_room(links0, counts0, a, b):
    count = counts0[a]
    if count >= links0.shape[1]:
        return 0
    for slot in range(count):
        if links0[a, slot] == b:
            return 0
    links0[a, count] = b
    counts0[a] = count + 1
    return 1
