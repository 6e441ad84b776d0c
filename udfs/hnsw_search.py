"""HNSW graph walks: greedy descent, the beam search used by the build, and the query search.

The graph is stored in flat arrays (see ``udfs.hnsw``): level 0 in ``links0[capacity, 2m]`` with
``degree0``, upper levels in rows of ``links_up[rows, m]`` with ``degree_up``, where node ``u`` of
level ``L > 0`` owns rows ``upper_offset[u] .. upper_offset[u] + L - 1``. Distances are the proxies
of ``udfs.metrics`` (smaller is closer).

Query searches add three things to the textbook walk:

- qualification: deleted ids and ids outside the ``allowed`` mask may be walked through but never
  take a result slot; the walk goes on until the beam holds ``ef`` qualifying results, so it
  widens by itself under a filter;
- exact copies: a row reached in the graph also reports its copies (``next_duplicate`` chain);
- two-hop expansion (as in ACORN): under a selective filter, a neighbour that does not qualify
  is not expanded itself; its own neighbours that qualify are examined instead, which finds
  filtered results without paying distance computations for the rows filtered out.

If the walk ends with fewer than ``k`` qualifying results (a filter that leaves only parts of the
graph the walk cannot reach), the remaining qualifying rows are scanned exactly, so a search
always returns ``min(k, qualifying rows)`` results.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from udfs.heaps import (
    max_heap_drain_sorted,
    max_heap_push_bounded,
    min_heap_pop,
    min_heap_push,
)
from udfs.hnsw_distance import row_proxy
from udfs.prefetch import prefetch_row
from udfs.visited import next_epoch


@nb.njit(inline="always", cache=True)
def neighbours(node, level, links0, degree0, links_up, degree_up, upper_offset):
    """Return the neighbour ids of ``node`` at ``level`` as an int32 view."""
    if level == 0:
        return links0[node, : degree0[node]]
    row = upper_offset[node] + level - 1
    return links_up[row, : degree_up[row]]


@nb.njit(fastmath=True, cache=True)
def greedy_descent(
    xb,
    metric,
    q,
    entry,
    entry_proxy,
    top_level,
    stop_level,
    links0,
    degree0,
    links_up,
    degree_up,
    upper_offset,
):
    """Descend greedily from ``entry`` at ``top_level``; return the (node, proxy) reached.

    The walk stops above ``stop_level``: it searches levels ``top_level`` to ``stop_level + 1``.
    """
    node = entry
    best = entry_proxy
    for level in range(top_level, stop_level, -1):
        improved = True
        while improved:
            improved = False
            for neighbour in neighbours(
                node, level, links0, degree0, links_up, degree_up, upper_offset
            ):
                proxy = row_proxy(metric, xb, neighbour, q)
                if proxy < best:
                    best = proxy
                    node = neighbour
                    improved = True
    return node, best


@nb.njit(fastmath=True, cache=True)
def beam_search(
    xb,
    metric,
    q,
    entry_ids,
    entry_proxies,
    n_entries,
    ef,
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
):
    """Find the ``ef`` nearest graph nodes of ``q`` at ``level`` from the given entry points.

    The results are left as a max-heap in ``res_keys``/``res_ids``; returns their count.
    """
    epoch = next_epoch(tags, epochs, tag_row)
    visited = tags[tag_row]
    fresh = np.empty(links0.shape[1], dtype=np.int32)
    n_cand = 0
    n_res = 0
    for i in range(n_entries):
        visited[entry_ids[i]] = epoch
        n_cand = min_heap_push(cand_keys, cand_ids, n_cand, entry_proxies[i], entry_ids[i])
        n_res = max_heap_push_bounded(res_keys, res_ids, n_res, ef, entry_proxies[i], entry_ids[i])
    while n_cand > 0:
        current_proxy = cand_keys[0]
        current = cand_ids[0]
        if n_res >= ef and current_proxy > res_keys[0]:
            break
        n_cand = min_heap_pop(cand_keys, cand_ids, n_cand)
        n_new = 0
        for neighbour in neighbours(
            current, level, links0, degree0, links_up, degree_up, upper_offset
        ):
            if visited[neighbour] != epoch:
                visited[neighbour] = epoch
                fresh[n_new] = neighbour
                n_new += 1
                prefetch_row(xb, neighbour)
        for i in range(n_new):
            proxy = row_proxy(metric, xb, fresh[i], q)
            if n_res < ef or proxy < res_keys[0]:
                n_cand = min_heap_push(cand_keys, cand_ids, n_cand, proxy, fresh[i])
                n_res = max_heap_push_bounded(res_keys, res_ids, n_res, ef, proxy, fresh[i])
    return n_res


@nb.njit(inline="always", cache=True)
def _qualifies(node, deleted, allowed, use_allowed) -> bool:
    return not deleted[node] and (not use_allowed or allowed[node])


@nb.njit(inline="always", cache=True)
def _group_qualifies(node, next_duplicate, deleted, allowed, use_allowed) -> bool:
    """Return True when ``node`` or one of its exact copies qualifies."""
    member = node
    while member >= 0:
        if _qualifies(member, deleted, allowed, use_allowed):
            return True
        member = next_duplicate[member]
    return False


@nb.njit(inline="always", cache=True)
def _offer_group(
    node, proxy, next_duplicate, deleted, allowed, use_allowed, res_keys, res_ids, n_res, ef
):
    """Offer ``node`` and its copies, all at ``proxy``, to the bounded result heap."""
    member = node
    while member >= 0:
        if _qualifies(member, deleted, allowed, use_allowed):
            n_res = max_heap_push_bounded(res_keys, res_ids, n_res, ef, proxy, member)
        member = next_duplicate[member]
    return n_res


@nb.njit(fastmath=True, cache=True)
def search_query(
    xb,
    metric,
    q,
    k,
    ef,
    two_hop,
    entry,
    max_level,
    links0,
    degree0,
    links_up,
    degree_up,
    upper_offset,
    next_duplicate,
    duplicate_of,
    deleted,
    allowed,
    use_allowed,
    n_ids,
    tags,
    epochs,
    tag_row,
    cand_keys,
    cand_ids,
    res_keys,
    res_ids,
):
    """Return (ids int64, proxies float32) of the ``k`` best qualifying rows for ``q``, best first.

    ``ef`` must be at least ``k``, and the caller has checked that at least ``k`` rows qualify
    among the ``n_ids`` ids. ``two_hop`` turns on the expansion through rows that do not qualify.
    """
    entry_proxy = row_proxy(metric, xb, entry, q)
    start, start_proxy = greedy_descent(
        xb,
        metric,
        q,
        entry,
        entry_proxy,
        max_level,
        np.int64(0),
        links0,
        degree0,
        links_up,
        degree_up,
        upper_offset,
    )
    epoch = next_epoch(tags, epochs, tag_row)
    visited = tags[tag_row]
    near = np.empty(links0.shape[1], dtype=np.int32)
    past = np.empty(links0.shape[1], dtype=np.int32)
    visited[start] = epoch
    n_cand = min_heap_push(cand_keys, cand_ids, 0, start_proxy, start)
    n_res = _offer_group(
        start, start_proxy, next_duplicate, deleted, allowed, use_allowed, res_keys, res_ids, 0, ef
    )

    while n_cand > 0:
        current_proxy = cand_keys[0]
        current = cand_ids[0]
        if n_res >= ef and current_proxy > res_keys[0]:
            break
        n_cand = min_heap_pop(cand_keys, cand_ids, n_cand)

        # Sort the new neighbours into those to measure (their rows are prefetched, so the
        # loads overlap) and, under two-hop expansion, those to look past.
        n_near = 0
        n_past = 0
        for neighbour in links0[current, : degree0[current]]:
            if visited[neighbour] == epoch:
                continue
            visited[neighbour] = epoch
            if two_hop and not _group_qualifies(
                neighbour, next_duplicate, deleted, allowed, use_allowed
            ):
                past[n_past] = neighbour
                n_past += 1
            else:
                near[n_near] = neighbour
                n_near += 1
                prefetch_row(xb, neighbour)

        for i in range(n_near):
            neighbour = near[i]
            proxy = row_proxy(metric, xb, neighbour, q)
            if n_res < ef or proxy < res_keys[0]:
                n_cand = min_heap_push(cand_keys, cand_ids, n_cand, proxy, neighbour)
                n_res = _offer_group(
                    neighbour,
                    proxy,
                    next_duplicate,
                    deleted,
                    allowed,
                    use_allowed,
                    res_keys,
                    res_ids,
                    n_res,
                    ef,
                )

        for i in range(n_past):
            for second in links0[past[i], : degree0[past[i]]]:
                if visited[second] == epoch:
                    continue
                if not _group_qualifies(second, next_duplicate, deleted, allowed, use_allowed):
                    continue
                visited[second] = epoch
                proxy = row_proxy(metric, xb, second, q)
                if n_res < ef or proxy < res_keys[0]:
                    n_cand = min_heap_push(cand_keys, cand_ids, n_cand, proxy, second)
                    n_res = _offer_group(
                        second,
                        proxy,
                        next_duplicate,
                        deleted,
                        allowed,
                        use_allowed,
                        res_keys,
                        res_ids,
                        n_res,
                        ef,
                    )

    if n_res < k:
        n_res = _scan_unvisited(
            xb,
            metric,
            q,
            ef,
            duplicate_of,
            deleted,
            allowed,
            use_allowed,
            n_ids,
            visited,
            epoch,
            res_keys,
            res_ids,
            n_res,
        )
    ids, proxies = max_heap_drain_sorted(res_keys, res_ids, n_res)
    return ids[:k], proxies[:k]


@nb.njit(fastmath=True, cache=True)
def _scan_unvisited(
    xb,
    metric,
    q,
    ef,
    duplicate_of,
    deleted,
    allowed,
    use_allowed,
    n_ids,
    visited,
    epoch,
    res_keys,
    res_ids,
    n_res,
):
    """Add every qualifying row whose graph node the walk did not reach, by exact distance."""
    for node in range(n_ids):
        if not _qualifies(node, deleted, allowed, use_allowed):
            continue
        in_graph = node if duplicate_of[node] < 0 else duplicate_of[node]
        if visited[in_graph] == epoch:
            continue
        proxy = row_proxy(metric, xb, node, q)
        n_res = max_heap_push_bounded(res_keys, res_ids, n_res, ef, proxy, np.int32(node))
    return n_res


@nb.njit(nogil=True, cache=True)
def search_share(
    xb,
    metric,
    xq,
    worker,
    n_workers,
    out_ids,
    out_proxies,
    k,
    ef,
    two_hop,
    entry,
    max_level,
    links0,
    degree0,
    links_up,
    degree_up,
    upper_offset,
    next_duplicate,
    duplicate_of,
    deleted,
    allowed,
    use_allowed,
    n_ids,
    tags,
    epochs,
):
    """Search the queries ``xq[worker::n_workers]`` into rows of ``out_ids`` and ``out_proxies``.

    The worker walks with row ``worker`` of ``tags`` and its own heaps, so workers running at the
    same time write no shared scratch. Every query must find ``k`` qualifying rows.
    """
    capacity = tags.shape[1]
    cand_keys = np.empty(capacity, dtype=np.float32)
    cand_ids = np.empty(capacity, dtype=np.int32)
    res_keys = np.empty(ef, dtype=np.float32)
    res_ids = np.empty(ef, dtype=np.int32)
    for i in range(worker, xq.shape[0], n_workers):
        ids, proxies = search_query(
            xb,
            metric,
            xq[i],
            k,
            ef,
            two_hop,
            entry,
            max_level,
            links0,
            degree0,
            links_up,
            degree_up,
            upper_offset,
            next_duplicate,
            duplicate_of,
            deleted,
            allowed,
            use_allowed,
            n_ids,
            tags,
            epochs,
            worker,
            cand_keys,
            cand_ids,
            res_keys,
            res_ids,
        )
        for j in range(k):
            out_ids[i, j] = ids[j]
            out_proxies[i, j] = proxies[j]
