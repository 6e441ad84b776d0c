"""Distance metrics shared by every index kernel.

Indexes work on float32 rows. Each metric has an order-preserving proxy that the kernels compare
while searching; :func:`sql_distances` computes the distance that SQL returns for the results:

==========  =======================  ==========================  =========================
metric      SQL distance             proxy used by kernels       proxy -> distance
==========  =======================  ==========================  =========================
``l2``      sqrt(sum((a - b)^2))     squared L2 (no sqrt)        sqrt(proxy)
``ip``      -sum(a * b)              -sum(a * b)                 unchanged
``cosine``  1 - a.b / (|a| |b|)      1 - a.b on unit rows        unchanged (clamped [0, 2])
``l1``      sum(|a - b|)             sum(|a - b|)                unchanged
==========  =======================  ==========================  =========================

Cosine indexes store L2-normalized rows and normalize each query, so the kernels only take
dot products. Zero vectors have no direction, so they are never indexed under cosine.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# Metric codes passed into numba kernels, which cannot take strings cheaply.
L2 = 0
IP = 1
COSINE = 2
L1 = 3

METRIC_CODES = {"l2": L2, "ip": IP, "cosine": COSINE, "l1": L1}


@nb.njit(inline="always", fastmath=True, cache=True)
def proxy_distance(metric: int, a: np.ndarray, b: np.ndarray) -> np.float32:
    """Return the search proxy of ``metric`` between float32 rows ``a`` and ``b``."""
    acc = np.float32(0.0)
    if metric == L2:
        for i in range(a.shape[0]):
            diff = a[i] - b[i]
            acc += diff * diff
        return acc
    if metric == L1:
        for i in range(a.shape[0]):
            acc += abs(a[i] - b[i])
        return acc
    for i in range(a.shape[0]):
        acc += a[i] * b[i]
    if metric == IP:
        return -acc
    return np.float32(1.0) - acc


@nb.njit(fastmath=True, cache=True)
def brute_force(metric: int, xb: np.ndarray, rows: np.ndarray, q: np.ndarray, k: int):
    """Exact k nearest of ``q`` among ``xb[rows]``: positions into ``rows`` and proxies, best first."""
    n = rows.shape[0]
    d = q.shape[0]
    proxies = np.empty(n, dtype=np.float32)
    # Indexing xb[row, j] directly, not through a row slice, keeps the loop free of
    # per-row reference counting, which made it about twice as slow.
    for i in range(n):
        row = rows[i]
        acc = np.float32(0.0)
        if metric == L2:
            for j in range(d):
                diff = xb[row, j] - q[j]
                acc += diff * diff
        elif metric == L1:
            for j in range(d):
                acc += abs(xb[row, j] - q[j])
        else:
            for j in range(d):
                acc += xb[row, j] * q[j]
            acc = -acc if metric == IP else np.float32(1.0) - acc
        proxies[i] = acc
    k = min(k, n)
    order = np.argsort(proxies, kind="mergesort")[:k]
    return order, proxies[order]


@nb.njit(cache=True)
def sql_distances(metric: int, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Return the distances SQL reports between each prepared row and ``q``, summed in float64.

    A cosine row identical to the query has distance exactly 0, as pgvector promises for a
    vector and itself. Float rounding of the unit vectors would otherwise leave about 1e-7.
    """
    out = np.empty(rows.shape[0], dtype=np.float64)
    for i in range(rows.shape[0]):
        acc = 0.0
        same = True
        for j in range(q.shape[0]):
            a = np.float64(rows[i, j])
            b = np.float64(q[j])
            if metric == L2:
                acc += (a - b) * (a - b)
            elif metric == L1:
                acc += abs(a - b)
            else:
                acc += a * b
                same = same and rows[i, j] == q[j]
        if metric == L2:
            out[i] = np.sqrt(acc)
        elif metric == L1:
            out[i] = acc
        elif metric == IP:
            out[i] = -acc
        elif same:
            out[i] = 0.0
        else:
            out[i] = min(max(1.0 - acc, 0.0), 2.0)
    return out


def prepare_rows(metric: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``x`` as contiguous float32 (unit rows for cosine) and a mask of rows an index may hold.

    A row is indexable when it has no NaN or infinite element and, under cosine, a non-zero norm.
    """
    x = np.asarray(x)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.dtype != np.float32 and x.dtype != np.float64:
        x = x.astype(np.float32)
    out = np.empty(x.shape, dtype=np.float32)
    ids = np.arange(x.shape[0], dtype=np.int64)
    indexable = prepare_rows_into(metric, x, ids, out, ids)
    return out, indexable


def prepare_rows_into(metric: str, x: np.ndarray, src: np.ndarray, out: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Write ``prepare_rows(metric, x[src])`` into ``out[dst]`` and return the indexable mask.

    It makes one pass where numpy would gather, cast and divide, because loading a stored index
    prepares every row of the table. Every path prepares rows with this kernel, so equal vectors
    give equal bits, which the HNSW duplicate table relies on.
    """
    indexable = np.empty(len(src), dtype=np.bool_)
    # One thread: the pass is bound by memory, and two threads measured no faster on 100k x 384
    # (0.057 s either way) while a load competes with kernels loading in another thread.
    _prepare(np.ascontiguousarray(x), src, metric == "cosine", out, dst, indexable)
    return indexable


@nb.njit(cache=True)
def _prepare(x, src, unit, out, dst, indexable):
    for i in range(src.shape[0]):
        indexable[i] = _prepare_row(x, src[i], unit, out, dst[i])


@nb.njit(inline="always")
def _prepare_row(x, source, unit, out, target):
    dims = x.shape[1]
    finite = True
    squares = 0.0
    for j in range(dims):
        value = np.float32(x[source, j])
        finite = finite and np.isfinite(value)
        squares += np.float64(value) * np.float64(value)
    if not unit:
        for j in range(dims):
            out[target, j] = np.float32(x[source, j])
        return finite
    norm = np.sqrt(squares)
    if not (finite and norm > 0.0):
        for j in range(dims):
            out[target, j] = 0.0
        return False
    for j in range(dims):
        out[target, j] = np.float32(np.float64(np.float32(x[source, j])) / norm)
    return True


def warm_up() -> None:
    """Compile the row preparation kernel, which every index method uses.

    It compiles a second version for read-only rows, which numba types apart, because loading an
    index reads its rows straight from the Arrow buffer of a table scan.
    """
    ids = np.arange(2, dtype=np.int64)
    for writeable in (True, False):
        x = np.ones((2, 3), dtype=np.float32)
        x.flags.writeable = writeable
        for unit in (False, True):
            _prepare(x, ids, unit, np.empty((2, 3), dtype=np.float32), ids, np.empty(2, dtype=np.bool_))
