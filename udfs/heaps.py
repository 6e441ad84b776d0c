"""Binary heaps of (float32 proxy, int32 id) pairs kept in caller-owned arrays.

The graph kernels keep two heaps per search: a min-heap of candidates still to expand and a
max-heap of the best results so far, bounded by the beam width. Each function takes the arrays
and the current size and returns the new size, so the kernels allocate their scratch once.
Ties between equal proxies are broken by the smaller id, which keeps results deterministic.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(inline="always", cache=True)
def _before(key_a, id_a, key_b, id_b) -> bool:
    """Return True when pair a sorts before pair b (smaller proxy, then smaller id)."""
    return key_a < key_b or (key_a == key_b and id_a < id_b)


@nb.njit(inline="always", cache=True)
def min_heap_push(keys: np.ndarray, ids: np.ndarray, size: int, key, node) -> int:
    """Push (key, node) onto the min-heap of ``size`` items and return the new size."""
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if not _before(key, node, keys[parent], ids[parent]):
            break
        keys[i] = keys[parent]
        ids[i] = ids[parent]
        i = parent
    keys[i] = key
    ids[i] = node
    return size + 1


@nb.njit(inline="always", cache=True)
def min_heap_pop(keys: np.ndarray, ids: np.ndarray, size: int) -> int:
    """Remove the smallest item, found at ``keys[0]`` and ``ids[0]``; return the new size."""
    size -= 1
    key = keys[size]
    node = ids[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and _before(keys[child + 1], ids[child + 1], keys[child], ids[child]):
            child += 1
        if not _before(keys[child], ids[child], key, node):
            break
        keys[i] = keys[child]
        ids[i] = ids[child]
        i = child
    if size > 0:
        keys[i] = key
        ids[i] = node
    return size


@nb.njit(inline="always", cache=True)
def max_heap_push(keys: np.ndarray, ids: np.ndarray, size: int, key, node) -> int:
    """Push (key, node) onto the max-heap of ``size`` items and return the new size."""
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if not _before(keys[parent], ids[parent], key, node):
            break
        keys[i] = keys[parent]
        ids[i] = ids[parent]
        i = parent
    keys[i] = key
    ids[i] = node
    return size + 1


@nb.njit(inline="always", cache=True)
def _max_heap_sift_down(keys: np.ndarray, ids: np.ndarray, size: int, key, node) -> None:
    """Place (key, node) at the root of a max-heap of ``size`` items and restore the heap order."""
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and _before(keys[child], ids[child], keys[child + 1], ids[child + 1]):
            child += 1
        if not _before(key, node, keys[child], ids[child]):
            break
        keys[i] = keys[child]
        ids[i] = ids[child]
        i = child
    keys[i] = key
    ids[i] = node


@nb.njit(inline="always", cache=True)
def max_heap_pop(keys: np.ndarray, ids: np.ndarray, size: int) -> int:
    """Remove the largest item, found at ``keys[0]`` and ``ids[0]``; return the new size."""
    size -= 1
    if size > 0:
        _max_heap_sift_down(keys, ids, size, keys[size], ids[size])
    return size


@nb.njit(inline="always", cache=True)
def max_heap_push_bounded(keys: np.ndarray, ids: np.ndarray, size: int, capacity: int, key, node):
    """Push (key, node) onto a max-heap of the ``capacity`` smallest items; return the size."""
    if size < capacity:
        return max_heap_push(keys, ids, size, key, node)
    if not _before(key, node, keys[0], ids[0]):
        return size
    _max_heap_sift_down(keys, ids, size, key, node)
    return size


@nb.njit(cache=True)
def max_heap_drain_sorted(keys: np.ndarray, ids: np.ndarray, size: int):
    """Empty the max-heap into (ids int64, proxies float32) ordered best first."""
    out_ids = np.empty(size, dtype=np.int64)
    out_keys = np.empty(size, dtype=np.float32)
    max_heap_drain_into(keys, ids, size, out_ids, out_keys)
    return out_ids, out_keys


@nb.njit(inline="always", cache=True)
def max_heap_drain_into(keys: np.ndarray, ids: np.ndarray, size: int, out_ids, out_keys) -> None:
    """Empty the max-heap, writing its best ``len(out_ids)`` items to the outputs, best first.

    Writing into caller-owned rows lets a batch of searches drain without an allocation each.
    """
    for position in range(size - 1, -1, -1):
        if position < out_ids.shape[0]:
            out_ids[position] = ids[0]
            out_keys[position] = keys[0]
        size = max_heap_pop(keys, ids, size)
