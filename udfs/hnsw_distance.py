"""Proxy distances between stored rows and queries, indexed without taking row views.

These are the proxies of ``udfs.metrics.proxy_distance`` (same formulas, same metric codes), but
they read ``xb[row, i]`` directly: a row view ``xb[row]`` would update a reference count twice
per distance, which costs as much as the distance itself in a graph walk. The kernels that call
them are compiled with ``fastmath`` so the float32 sums vectorize.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from udfs.metrics import IP, L1, L2


@nb.njit(inline="always", fastmath=True, cache=True)
def row_proxy(metric, xb, row, q) -> np.float32:
    """Return the proxy of ``metric`` between ``xb[row]`` and the float32 vector ``q``."""
    acc = np.float32(0.0)
    if metric == L2:
        for i in range(q.shape[0]):
            diff = xb[row, i] - q[i]
            acc += diff * diff
        return acc
    if metric == L1:
        for i in range(q.shape[0]):
            acc += abs(xb[row, i] - q[i])
        return acc
    for i in range(q.shape[0]):
        acc += xb[row, i] * q[i]
    if metric == IP:
        return -acc
    return np.float32(1.0) - acc


@nb.njit(inline="always", fastmath=True, cache=True)
def rows_proxy(metric, xb, a, b) -> np.float32:
    """Return the proxy of ``metric`` between stored rows ``xb[a]`` and ``xb[b]``."""
    acc = np.float32(0.0)
    if metric == L2:
        for i in range(xb.shape[1]):
            diff = xb[a, i] - xb[b, i]
            acc += diff * diff
        return acc
    if metric == L1:
        for i in range(xb.shape[1]):
            acc += abs(xb[a, i] - xb[b, i])
        return acc
    for i in range(xb.shape[1]):
        acc += xb[a, i] * xb[b, i]
    if metric == IP:
        return -acc
    return np.float32(1.0) - acc
