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

Distances are measured per expansion, not per neighbour: the rows of all new neighbours are
prefetched, then measured eight at a time (``batch_proxies``), so their memory loads overlap.

If the walk ends with fewer than ``k`` qualifying results (a filter that leaves only parts of the
graph the walk cannot reach), the remaining qualifying rows are scanned exactly, so a search
always returns ``min(k, qualifying rows)`` results.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from udfs.heaps import (
    max_heap_drain_into,
    max_heap_drain_sorted,
    max_heap_push_bounded,
    min_heap_pop,
    min_heap_push,
)
from udfs.hnsw_distance import BATCH, batch_proxies, row_proxy
from udfs.prefetch import prefetch_row, prefetch_row_to_l2
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
    fresh, proxies = _batch_buffers(links0.shape[1])
    return _descend(
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
        fresh,
        proxies,
    )


@nb.njit(inline="always", cache=True)
def _batch_buffers(width):
    """Return (ids, proxies) scratch for ``batch_proxies`` over up to ``width`` rows."""
    return np.empty(width + BATCH, dtype=np.int32), np.empty(width + BATCH, dtype=np.float32)


@nb.njit(fastmath=True, cache=True)
def _descend(
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
    fresh,
    proxies,
):
    """Descend as ``greedy_descent`` does, in scratch of ``links0.shape[1] + BATCH`` entries.

    Each node's neighbours are measured in one batch, then scanned in list order, so the node
    kept is the first with the smallest proxy, as when measuring one neighbour at a time.
    """
    node = entry
    best = entry_proxy
    for level in range(top_level, stop_level, -1):
        improved = True
        while improved:
            improved = False
            links = neighbours(node, level, links0, degree0, links_up, degree_up, upper_offset)
            n_links = links.shape[0]
            for j in range(n_links):
                fresh[j] = links[j]
                prefetch_row_to_l2(xb, links[j])
            batch_proxies(metric, xb, fresh, n_links, q, proxies)
            for j in range(n_links):
                if proxies[j] < best:
                    best = proxies[j]
                    node = fresh[j]
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
    fresh, proxies = _batch_buffers(links0.shape[1])
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
                prefetch_row_to_l2(xb, neighbour)
        batch_proxies(metric, xb, fresh, n_new, q, proxies)
        for i in range(n_new):
            proxy = proxies[i]
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
    fresh, proxies, past = _walk_buffers(links0.shape[1])
    n_res = _walk(
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
        fresh,
        proxies,
        past,
    )
    ids, found = max_heap_drain_sorted(res_keys, res_ids, n_res)
    return ids[:k], found[:k]


@nb.njit(inline="always", cache=True)
def _walk_buffers(width):
    """Return (fresh ids, their proxies, two-hop waypoints) scratch for ``_walk``.

    One expansion measures at most ``width`` neighbours plus, under two-hop expansion,
    ``width`` neighbours of each of ``width`` waypoints.
    """
    fresh, proxies = _batch_buffers(width + width * width)
    return fresh, proxies, np.empty(width, dtype=np.int32)


@nb.njit(fastmath=True, cache=True)
def _walk(
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
    fresh,
    proxies,
    past,
):
    """Run one query search, leaving its results as a max-heap in ``res_keys``/``res_ids``.

    Returns the number of results (at least ``k``). ``fresh``, ``proxies`` and ``past`` are the
    scratch of ``_walk_buffers``.
    """
    entry_proxy = row_proxy(metric, xb, entry, q)
    start, start_proxy = _descend(
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
        fresh,
        proxies,
    )
    epoch = next_epoch(tags, epochs, tag_row)
    visited = tags[tag_row]
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
        if n_cand > 0:
            # The best remaining candidate is expanded next unless a neighbour found now beats
            # it, so its neighbour list is fetched while this expansion runs.
            prefetch_row(links0, cand_ids[0])

        # Gather every row this expansion measures: the new neighbours, then under two-hop
        # expansion the qualifying new neighbours of each neighbour that does not qualify.
        # They are offered to the heaps afterwards in that same order, so measuring them in
        # one batch gives the same results as measuring them one at a time.
        n_fresh = 0
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
                fresh[n_fresh] = neighbour
                n_fresh += 1
                prefetch_row_to_l2(xb, neighbour)
        for i in range(n_past):
            for second in links0[past[i], : degree0[past[i]]]:
                if visited[second] == epoch:
                    continue
                if not _group_qualifies(second, next_duplicate, deleted, allowed, use_allowed):
                    continue
                visited[second] = epoch
                fresh[n_fresh] = second
                n_fresh += 1
                prefetch_row_to_l2(xb, second)

        batch_proxies(metric, xb, fresh, n_fresh, q, proxies)
        for i in range(n_fresh):
            proxy = proxies[i]
            if n_res < ef or proxy < res_keys[0]:
                n_cand = min_heap_push(cand_keys, cand_ids, n_cand, proxy, fresh[i])
                n_res = _offer_group(
                    fresh[i],
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
    return n_res


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
    fresh, proxies, past = _walk_buffers(links0.shape[1])
    for i in range(worker, xq.shape[0], n_workers):
        n_res = _walk(
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
            fresh,
            proxies,
            past,
        )
        max_heap_drain_into(res_keys, res_ids, n_res, out_ids[i], out_proxies[i])
