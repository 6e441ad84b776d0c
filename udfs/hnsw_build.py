"""HNSW construction kernels: neighbour selection and parallel insertion in waves.

Parallel insertion is deterministic for a given seed, whatever the thread count, because nodes
are inserted in waves of two phases:

1. every node of the wave searches the graph as it was before the wave and writes only its own
   neighbour lists; no old node points to a new node yet, so the graph the others read does
   not change under them;
2. the reverse links are grouped by the old node that receives them, in (node, sender) order, and
   each group is applied by one thread, so no two threads write the same list.

Nodes of one wave do not link to each other directly; waves are kept small next to the graph
(at most ``1 / WAVE_DIVISOR`` of it, and at most ``MAX_WAVE`` nodes), so later nodes bridge them.
The first nodes of a graph are therefore inserted one at a time.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from udfs.hnsw_search import beam_search, greedy_descent, neighbours
from udfs.hnsw_distance import row_proxy, rows_proxy

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
    """Sort the first ``n`` (proxy, id) pairs by proxy, then id, in place."""
    order = np.argsort(proxies[:n], kind="mergesort")
    sorted_proxies = proxies[:n][order]
    sorted_ids = ids[:n][order]
    # Stable sort keeps heap order among equal proxies; order those by id for determinism.
    start = 0
    while start < n:
        end = start + 1
        while end < n and sorted_proxies[end] == sorted_proxies[start]:
            end += 1
        if end - start > 1:
            sorted_ids[start:end] = np.sort(sorted_ids[start:end])
        start = end
    proxies[:n] = sorted_proxies
    ids[:n] = sorted_ids


@nb.njit(fastmath=True, cache=True)
def _link_new_node(
    node, xb, metric, m, ef_construction, entry, max_level, levels,
    links0, degree0, links_up, degree_up, upper_offset,
    tags, epochs, tag_row, cand_keys, cand_ids, res_keys, res_ids, entry_ids, entry_proxies,
):
    """Phase 1 for one node: search the frozen graph and write the node's own neighbour lists."""
    q = xb[node]
    node_level = levels[node]
    nearest, nearest_proxy = greedy_descent(
        xb, metric, q, entry, row_proxy(metric, xb, entry, q), max_level, node_level,
        links0, degree0, links_up, degree_up, upper_offset,
    )
    entry_ids[0] = nearest
    entry_proxies[0] = nearest_proxy
    n_entries = 1
    for level in range(min(node_level, max_level), -1, -1):
        n_found = beam_search(
            xb, metric, q, entry_ids, entry_proxies, n_entries, ef_construction, level,
            links0, degree0, links_up, degree_up, upper_offset,
            tags, epochs, tag_row, cand_keys, cand_ids, res_keys, res_ids,
        )
        entry_proxies[:n_found] = res_keys[:n_found]
        entry_ids[:n_found] = res_ids[:n_found]
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
def _collect_reverse_links(wave, levels, max_level, links0, degree0, links_up, degree_up, upper_offset, capacity):
    """List the reverse links of a wave as (receiver key, sender), sorted by key then sender.

    The key is ``level * capacity + receiver``, so each group of equal keys is one neighbour list.
    """
    n_pairs = 0
    for node in wave:
        for level in range(min(levels[node], max_level) + 1):
            n_pairs += neighbours(node, level, links0, degree0, links_up, degree_up, upper_offset).shape[0]
    keys = np.empty(n_pairs, dtype=np.int64)
    senders = np.empty(n_pairs, dtype=np.int32)
    position = 0
    for node in wave:
        for level in range(min(levels[node], max_level) + 1):
            for receiver in neighbours(node, level, links0, degree0, links_up, degree_up, upper_offset):
                keys[position] = level * capacity + receiver
                senders[position] = node
                position += 1
    # Senders were listed in wave order, which is ascending, and mergesort is stable.
    order = np.argsort(keys, kind="mergesort")
    return keys[order], senders[order]


@nb.njit(fastmath=True, cache=True)
def _add_reverse_links(receiver, level, senders, xb, metric, m, links0, degree0, links_up, degree_up, upper_offset):
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
        row_links[degree:total] = senders
        new_degree = total
    else:
        cand_ids = np.empty(total, dtype=np.int32)
        cand_proxies = np.empty(total, dtype=np.float32)
        cand_ids[:degree] = row_links[:degree]
        cand_ids[degree:] = senders
        for i in range(total):
            cand_proxies[i] = rows_proxy(metric, xb, cand_ids[i], receiver)
        _sort_pairs(cand_proxies, cand_ids, total)
        new_degree = select_neighbours(xb, metric, cand_proxies, cand_ids, total, max_links, row_links)
    if level == 0:
        degree0[receiver] = new_degree
    else:
        degree_up[upper_offset[receiver] + level - 1] = new_degree


@nb.njit(parallel=True, cache=True)
def insert_wave(
    wave, xb, metric, m, ef_construction, entry, max_level, levels,
    links0, degree0, links_up, degree_up, upper_offset, tags, epochs,
):
    """Insert the nodes of ``wave`` (ascending ids) into a non-empty graph; return (entry, max_level)."""
    n_workers = tags.shape[0]
    capacity = links0.shape[0]
    cand_keys = np.empty((n_workers, capacity), dtype=np.float32)
    cand_ids = np.empty((n_workers, capacity), dtype=np.int32)
    res_keys = np.empty((n_workers, ef_construction), dtype=np.float32)
    res_ids = np.empty((n_workers, ef_construction), dtype=np.int32)
    entry_ids = np.empty((n_workers, ef_construction), dtype=np.int32)
    entry_proxies = np.empty((n_workers, ef_construction), dtype=np.float32)

    # Phase 1: each node writes only its own lists and reads only nodes older than the wave.
    # Nodes are dealt round-robin to one worker per row of ``tags``; a worker owns its scratch.
    for worker in nb.prange(n_workers):
        for i in range(worker, wave.shape[0], n_workers):
            _link_new_node(
                wave[i], xb, metric, m, ef_construction, entry, max_level, levels,
                links0, degree0, links_up, degree_up, upper_offset,
                tags, epochs, worker, cand_keys[worker], cand_ids[worker],
                res_keys[worker], res_ids[worker], entry_ids[worker], entry_proxies[worker],
            )

    # Phase 2: one thread per receiving list.
    keys, senders = _collect_reverse_links(
        wave, levels, max_level, links0, degree0, links_up, degree_up, upper_offset, capacity
    )
    n_pairs = keys.shape[0]
    n_groups = 0
    group_starts = np.empty(n_pairs + 1, dtype=np.int64)
    for i in range(n_pairs):
        if i == 0 or keys[i] != keys[i - 1]:
            group_starts[n_groups] = i
            n_groups += 1
    group_starts[n_groups] = n_pairs
    for g in nb.prange(n_groups):
        start = group_starts[g]
        key = keys[start]
        _add_reverse_links(
            key % capacity, key // capacity, senders[start : group_starts[g + 1]],
            xb, metric, m, links0, degree0, links_up, degree_up, upper_offset,
        )

    for node in wave:
        if levels[node] > max_level:
            max_level = levels[node]
            entry = node
    return entry, max_level
