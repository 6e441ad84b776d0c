"""HNSW construction kernels: neighbour selection and parallel insertion in waves.

Insertion runs on a pool of Python threads that call ``nogil`` kernels (plain threads compile far
faster than numba's ``prange``). It is deterministic for a given seed, whatever the thread count,
because nodes are inserted in waves of two phases:

1. every node of the wave searches the graph as it was before the wave and writes only its own
   neighbour lists. No old node points to a new node yet, so the graph that the other nodes
   read does not change under them;
2. the reverse links are grouped by the old node that receives them, in (node, sender) order, and
   each group is applied by one thread, so no two threads write the same list.

Nodes of one wave do not link to each other directly; waves are kept small next to the graph
(at most ``1 / WAVE_DIVISOR`` of it, and at most ``MAX_WAVE`` nodes), so later nodes bridge them.
The first nodes of a graph are therefore inserted one at a time.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from udfs.hnsw_distance import row_proxy, rows_proxy
from udfs.hnsw_search import beam_search, greedy_descent, neighbours

WAVE_DIVISOR = 16
MAX_WAVE = 1024


@nb.njit(fastmath=True, cache=True)
def select_neighbours(xb, metric, cand_proxies, cand_ids, n_cand, max_links, out):
    """Choose up to ``max_links`` diverse neighbours from candidates sorted closest first.

    A candidate ``e`` is skipped when an already chosen neighbour ``r`` is closer to it than the
    base node is (``d(e, r) < d(e, base)``): the base reaches ``e`` through ``r``. This keeps
    links pointing in different directions. Writes the chosen ids to ``out``; returns their count.
    """
    n_out = 0
    for i in range(n_cand):
        if n_out >= max_links:
            break
        candidate = cand_ids[i]
        keep = True
        for j in range(n_out):
            if rows_proxy(metric, xb, candidate, out[j]) < cand_proxies[i]:
                keep = False
                break
        if keep:
            out[n_out] = candidate
            n_out += 1
    return n_out


@nb.njit(cache=True)
def _sort_pairs(proxies, ids, n):
    """Sort the first ``n`` (proxy, id) pairs by proxy, then id, in place (insertion sort).

    ``n`` is at most ``ef_construction`` or a neighbour list plus its new reverse links.
    """
    for i in range(1, n):
        key = proxies[i]
        node = ids[i]
        j = i - 1
        while j >= 0 and (proxies[j] > key or (proxies[j] == key and ids[j] > node)):
            proxies[j + 1] = proxies[j]
            ids[j + 1] = ids[j]
            j -= 1
        proxies[j + 1] = key
        ids[j + 1] = node


@nb.njit(fastmath=True, cache=True)
def _link_new_node(
    node,
    xb,
    metric,
    m,
    ef_construction,
    entry,
    max_level,
    levels,
    links0,
    degree0,
    links_up,
    degree_up,
    upper_offset,
    tags,
    epochs,
    tag_row,
    cand_keys,
    cand_ids,
    res_keys,
    res_ids,
    entry_ids,
    entry_proxies,
):
    """Phase 1 for one node: search the frozen graph and write the node's own neighbour lists."""
    q = xb[node]
    node_level = levels[node]
    nearest, nearest_proxy = greedy_descent(
        xb,
        metric,
        q,
        entry,
        row_proxy(metric, xb, entry, q),
        max_level,
        node_level,
        links0,
        degree0,
        links_up,
        degree_up,
        upper_offset,
    )
    entry_ids[0] = nearest
    entry_proxies[0] = nearest_proxy
    n_entries = np.int64(1)
    for level in range(min(node_level, max_level), -1, -1):
        n_found = beam_search(
            xb,
            metric,
            q,
            entry_ids,
            entry_proxies,
            n_entries,
            ef_construction,
            level,
            links0,
            degree0,
            links_up,
            degree_up,
            upper_offset,
            tags,
            epochs,
            tag_row,
            cand_keys,
            cand_ids,
            res_keys,
            res_ids,
        )
        for i in range(n_found):
            entry_proxies[i] = res_keys[i]
            entry_ids[i] = res_ids[i]
        _sort_pairs(entry_proxies, entry_ids, n_found)
        n_entries = n_found
        if level == 0:
            out = links0[node]
            degree0[node] = select_neighbours(xb, metric, entry_proxies, entry_ids, n_found, m, out)
        else:
            row = upper_offset[node] + level - 1
            degree_up[row] = select_neighbours(
                xb, metric, entry_proxies, entry_ids, n_found, m, links_up[row]
            )


@nb.njit(cache=True)
def _collect_reverse_links(
    wave, levels, max_level, links0, degree0, links_up, degree_up, upper_offset, capacity
):
    """List the reverse links of a wave as (receiver key, sender), sorted by key then sender.

    The key is ``level * capacity + receiver``, so each group of equal keys is one neighbour list.
    """
    n_pairs = 0
    for node in wave:
        for level in range(min(levels[node], max_level) + 1):
            n_pairs += neighbours(
                node, level, links0, degree0, links_up, degree_up, upper_offset
            ).shape[0]
    keys = np.empty(n_pairs, dtype=np.int64)
    senders = np.empty(n_pairs, dtype=np.int32)
    position = 0
    for node in wave:
        for level in range(min(levels[node], max_level) + 1):
            for receiver in neighbours(
                node, level, links0, degree0, links_up, degree_up, upper_offset
            ):
                keys[position] = level * capacity + receiver
                senders[position] = node
                position += 1
    # Senders were listed in wave order, which is ascending, and mergesort is stable.
    order = np.argsort(keys, kind="mergesort")
    return keys[order], senders[order]


@nb.njit(fastmath=True, cache=True)
def _add_reverse_links(
    receiver, level, senders, xb, metric, m, links0, degree0, links_up, degree_up, upper_offset
):
    """Append ``senders`` to the list of ``receiver`` at ``level``, pruning it when it overflows."""
    if level == 0:
        row_links = links0[receiver]
        degree = degree0[receiver]
        max_links = 2 * m
    else:
        row = upper_offset[receiver] + level - 1
        row_links = links_up[row]
        degree = degree_up[row]
        max_links = m
    total = degree + senders.shape[0]
    if total <= max_links:
        for i in range(senders.shape[0]):
            row_links[degree + i] = senders[i]
        new_degree = total
    else:
        cand_ids = np.empty(total, dtype=np.int32)
        cand_proxies = np.empty(total, dtype=np.float32)
        for i in range(degree):
            cand_ids[i] = row_links[i]
        for i in range(senders.shape[0]):
            cand_ids[degree + i] = senders[i]
        for i in range(total):
            cand_proxies[i] = rows_proxy(metric, xb, cand_ids[i], receiver)
        _sort_pairs(cand_proxies, cand_ids, total)
        new_degree = select_neighbours(
            xb, metric, cand_proxies, cand_ids, total, max_links, row_links
        )
    if level == 0:
        degree0[receiver] = new_degree
    else:
        degree_up[upper_offset[receiver] + level - 1] = new_degree


@nb.njit(nogil=True, cache=True)
def link_wave_share(
    wave,
    worker,
    n_workers,
    xb,
    metric,
    m,
    ef_construction,
    entry,
    max_level,
    levels,
    links0,
    degree0,
    links_up,
    degree_up,
    upper_offset,
    tags,
    epochs,
):
    """Phase 1 for the nodes ``wave[worker::n_workers]``, using row ``worker`` of ``tags``.

    Each node writes only its own lists and reads only nodes older than the wave.
    """
    capacity = links0.shape[0]
    cand_keys = np.empty(capacity, dtype=np.float32)
    cand_ids = np.empty(capacity, dtype=np.int32)
    res_keys = np.empty(ef_construction, dtype=np.float32)
    res_ids = np.empty(ef_construction, dtype=np.int32)
    entry_ids = np.empty(ef_construction, dtype=np.int32)
    entry_proxies = np.empty(ef_construction, dtype=np.float32)
    for i in range(worker, wave.shape[0], n_workers):
        _link_new_node(
            wave[i],
            xb,
            metric,
            m,
            ef_construction,
            entry,
            max_level,
            levels,
            links0,
            degree0,
            links_up,
            degree_up,
            upper_offset,
            tags,
            epochs,
            worker,
            cand_keys,
            cand_ids,
            res_keys,
            res_ids,
            entry_ids,
            entry_proxies,
        )


@nb.njit(nogil=True, cache=True)
def reverse_link_share(
    worker,
    n_workers,
    keys,
    senders,
    group_starts,
    n_groups,
    xb,
    metric,
    m,
    links0,
    degree0,
    links_up,
    degree_up,
    upper_offset,
):
    """Phase 2 for groups ``worker::n_workers``; each group of equal keys is one receiving list."""
    capacity = links0.shape[0]
    for g in range(worker, n_groups, n_workers):
        start = group_starts[g]
        key = keys[start]
        _add_reverse_links(
            key % capacity,
            key // capacity,
            senders[start : group_starts[g + 1]],
            xb,
            metric,
            m,
            links0,
            degree0,
            links_up,
            degree_up,
            upper_offset,
        )


@nb.njit(cache=True)
def _group_reverse_links(
    wave, levels, max_level, links0, degree0, links_up, degree_up, upper_offset
):
    """Return (keys, senders, group starts, group count) of the reverse links of a wave."""
    keys, senders = _collect_reverse_links(
        wave, levels, max_level, links0, degree0, links_up, degree_up, upper_offset, links0.shape[0]
    )
    n_pairs = keys.shape[0]
    n_groups = 0
    group_starts = np.empty(n_pairs + 1, dtype=np.int64)
    for i in range(n_pairs):
        if i == 0 or keys[i] != keys[i - 1]:
            group_starts[n_groups] = i
            n_groups += 1
    group_starts[n_groups] = n_pairs
    return keys, senders, group_starts, n_groups


def insert_wave(
    pool,
    wave,
    xb,
    metric,
    m,
    ef_construction,
    entry,
    max_level,
    levels,
    links0,
    degree0,
    links_up,
    degree_up,
    upper_offset,
    tags,
    epochs,
):
    """Insert the nodes of ``wave`` (ascending ids) into a non-empty graph.

    Returns the new (entry, max_level).

    ``pool`` is a thread pool (or None for one thread) with one worker per row of ``tags``; the
    kernels release the GIL. Nodes and receiving lists are dealt round-robin to the workers.
    """
    graph = (links0, degree0, links_up, degree_up, upper_offset)
    n_workers = tags.shape[0]
    run_shares(
        pool,
        n_workers,
        lambda worker: link_wave_share(
            wave,
            worker,
            n_workers,
            xb,
            metric,
            m,
            ef_construction,
            entry,
            max_level,
            levels,
            *graph,
            tags,
            epochs,
        ),
    )
    keys, senders, group_starts, n_groups = _group_reverse_links(wave, levels, max_level, *graph)
    run_shares(
        pool,
        n_workers,
        lambda worker: reverse_link_share(
            worker,
            n_workers,
            keys,
            senders,
            group_starts,
            n_groups,
            xb,
            metric,
            m,
            *graph,
        ),
    )

    wave_levels = levels[wave]
    top = int(np.argmax(wave_levels))
    if wave_levels[top] > max_level:
        return int(wave[top]), int(wave_levels[top])
    return entry, max_level


def run_shares(pool, n_workers, share) -> None:
    """Call ``share(worker)`` for each worker, on ``pool`` when there is more than one."""
    if pool is None or n_workers == 1:
        share(0)
        return
    for future in [pool.submit(share, worker) for worker in range(n_workers)]:
        future.result()
