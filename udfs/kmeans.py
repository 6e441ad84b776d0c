"""k-means clustering for IVF coarse quantizers, PQ codebooks and users (``vsql.kmeans``).

Lloyd's algorithm on float32 rows, in two flavours:

* ``l2``: centroids are cluster means, a row goes to the centroid with the smallest
  ``|x - c|^2 = |x|^2 - 2 x.c + |c|^2``.
* ``ip`` and ``cosine``: spherical k-means. Centroids are unit-norm cluster means and a row goes to
  the centroid with the largest ``x.c``. Under cosine the rows are expected to be unit rows
  (``udfs.metrics.prepare_rows``); under ip they are used as given.

Every step is a numba kernel that runs on ``numba.get_num_threads()`` threads. The assignment
step computes the ``x.c`` products in register tiles of 4 rows by 4 centroids (``_dot_tile``).
On one thread this measured within about 15% of OpenBLAS's sgemm, and unlike numpy's BLAS calls
it follows numba's thread count and shares no cores with a second thread pool.
"""

from __future__ import annotations

import logging

import numba as nb
import numpy as np

from vsql.errors import DataError, NotSupportedError, ProgrammingError

logger = logging.getLogger("vsql.kmeans")

# Rows per parallel task in the assignment step: enough work to hide the task start, small
# enough that two threads share the rows evenly.
_CHUNK_ROWS = 256

# Below this many dimensions a 4x4 tile of dot products is too short to pay off (PQ sub-vectors
# have 4 to 16), so the scores of all centroids are accumulated over contiguous centroids.
_MAX_DIM_SMALL = 32

# k-means++ seeding runs on at most this many rows per centroid (see _seed_centroids).
_SEED_ROWS_PER_CENTROID = 16

_METRICS = ("l2", "ip", "cosine")


def kmeans(
    x: np.ndarray,
    k: int,
    *,
    metric: str = "l2",
    n_iter: int = 20,
    seed: int = 0,
    sample_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the rows of ``x`` into ``k`` groups: returns ``(centroids, assignment)``.

    ``centroids`` is float32[k, d] and ``assignment`` int64[n], the centroid number of each row.

    Seeding is k-means++ on a random sample of at most 16 rows per centroid (``_seed_centroids``
    says why). At most ``n_iter`` Lloyd iterations follow, on ``x`` or, when ``sample_size`` is
    smaller than ``n``, on a random sample of that many rows. The returned assignment covers
    every row of ``x`` and matches the returned centroids.

    A cluster that becomes empty is re-seeded with the row farthest from its centroid (ties go to
    the lower row number). With duplicate rows or ``k`` larger than the number of distinct rows,
    some centroids are duplicates and their clusters stay empty; no centroid is ever NaN.

    The result is deterministic for a given ``seed`` and numba thread count.

    >>> centroids, assignment = kmeans(np.random.rand(1000, 8).astype(np.float32), 4, seed=1)
    """
    x = _check_rows(x)
    spherical = _is_spherical(metric)
    centroids = train_centroids(
        x, k, spherical=spherical, n_iter=n_iter, seed=seed, sample_size=sample_size
    )
    assignment, _ = assign(x, centroids, spherical)
    return centroids, assignment


def train_centroids(
    x: np.ndarray,
    k: int,
    *,
    spherical: bool,
    n_iter: int,
    seed: int,
    sample_size: int | None = None,
) -> np.ndarray:
    """Train k-means centroids on float32 rows ``x`` (no final assignment of every row)."""
    if k < 1:
        raise ProgrammingError(f"number of clusters must be at least 1, not {k}")
    if x.shape[0] == 0:
        raise DataError("cannot cluster zero rows")
    if n_iter < 0:
        raise ProgrammingError(f"number of iterations must be at least 0, not {n_iter}")
    rng = np.random.default_rng(seed)
    # The kernels read the training rows through ``rows`` rather than from a copy of the sample,
    # because on large tables the copy took longer than a Lloyd iteration (page faults, mostly).
    rows = np.arange(x.shape[0], dtype=np.int64)
    if sample_size is not None and sample_size < x.shape[0]:
        if sample_size < 1:
            raise ProgrammingError(f"sample size must be at least 1, not {sample_size}")
        rows = np.sort(rng.choice(x.shape[0], size=sample_size, replace=False))

    centroids = _seed_centroids(x, rows, k, spherical, rng)
    previous = np.full(rows.shape[0], -1, dtype=np.int64)
    for iteration in range(n_iter):
        labels, proxies = _assign_rows(x, rows, centroids, spherical)
        counts = _update_centroids(x, rows, labels, centroids, spherical, nb.get_num_threads())
        n_empty = _reseed_empty(x, centroids, counts, proxies, spherical, rows)
        if n_empty == 0 and np.array_equal(labels, previous):
            logger.debug("k-means converged after %d iterations", iteration + 1)
            break
        previous = labels
    return centroids


def assign(
    x: np.ndarray, centroids: np.ndarray, spherical: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Return each row's nearest centroid and proxy (squared L2, or ``-x.c`` if spherical)."""
    return _assign_rows(x, np.arange(x.shape[0], dtype=np.int64), centroids, spherical)


def _assign_rows(
    x: np.ndarray, rows: np.ndarray, centroids: np.ndarray, spherical: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Return what ``assign`` returns for the rows ``x[rows]``, in the order of ``rows``."""
    n = rows.shape[0]
    labels = np.empty(n, dtype=np.int64)
    proxies = np.empty(n, dtype=np.float32)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    centroid_norms = np.einsum("ij,ij->i", centroids, centroids).astype(np.float32)
    if x.shape[1] <= _MAX_DIM_SMALL:
        centroids_t = np.ascontiguousarray(centroids.T)[None]
        _best_centroids_small(x, rows, centroids_t, centroid_norms, spherical, labels, proxies)
    else:
        _best_centroids(x, rows, centroids, centroid_norms, spherical, labels, proxies)
    return labels, proxies


def inner_products(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return ``x @ y.T`` as float32[len(x), len(y)], computed on numba's threads."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.float32)
    out = np.empty((x.shape[0], y.shape[0]), dtype=np.float32)
    _inner_products(x, np.arange(x.shape[0], dtype=np.int64), y, out)
    return out


def warm_up() -> None:
    """Compile this module's kernels on tiny data, so that the first real call does not wait."""
    rng = np.random.default_rng(0)
    # Narrow rows (PQ sub-vectors) and wide rows (IVF) take different assignment kernels.
    for dim in (4, _MAX_DIM_SMALL + 1):
        x = rng.random((64, dim), dtype=np.float32)
        for metric in _METRICS:
            kmeans(x, 3, metric=metric, n_iter=2)


def _check_rows(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(f"expected a 2-dimensional array of rows, not {x.ndim} dimensions")
    if not np.isfinite(x).all():
        raise DataError("rows to cluster must not contain NaN or infinite values")
    return x


def _is_spherical(metric: str) -> bool:
    if metric == "l1":
        raise NotSupportedError("k-means does not support metric l1: use l2, ip or cosine")
    if metric not in _METRICS:
        raise ProgrammingError(f"unknown metric {metric!r}: expected l2, ip or cosine")
    return metric != "l2"


def _seed_centroids(
    x: np.ndarray, rows: np.ndarray, k: int, spherical: bool, rng: np.random.Generator
) -> np.ndarray:
    """Pick ``k`` initial centroids by k-means++ on a random sample of at most 16 rows per centroid.

    Full k-means++ makes ``k`` sequential passes over all rows, which costs as much as one Lloyd
    iteration but cannot use a matrix product. Sampling 16 rows per centroid keeps the D^2
    spreading (every dense region of the data has rows in the sample) for a small fraction of the
    cost, and the Lloyd iterations that follow run on all training rows ``x[rows]``.
    """
    n = rows.shape[0]
    n_seed = min(n, _SEED_ROWS_PER_CENTROID * k)
    if n_seed < n:
        candidates = x[rows[np.sort(rng.choice(n, size=n_seed, replace=False))]]
    else:
        candidates = x[rows]
    uniforms = rng.random(k)
    chosen = _kmeans_plus_plus(candidates, uniforms)
    centroids = np.ascontiguousarray(candidates[chosen])
    if spherical:
        _normalize_rows(centroids)
    return centroids


@nb.njit(cache=True, fastmath=True)
def _kmeans_plus_plus(x: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Return row numbers of ``len(uniforms)`` seeds drawn by D^2 sampling on squared L2.

    When every row coincides with a chosen seed (duplicates, k above the number of distinct rows)
    the remaining seeds are drawn uniformly, so they repeat existing rows.
    """
    n, d = x.shape
    k = uniforms.shape[0]
    chosen = np.empty(k, dtype=np.int64)
    nearest = np.empty(n, dtype=np.float32)
    chosen[0] = min(np.int64(uniforms[0] * n), n - 1)
    for c in range(1, k):
        last = chosen[c - 1]
        total = 0.0
        for i in range(n):
            acc = np.float32(0.0)
            for j in range(d):
                diff = x[i, j] - x[last, j]
                acc += diff * diff
            # fastmath assumes no infinities, so the first seed's distances start the minimum.
            if c == 1 or acc < nearest[i]:
                nearest[i] = acc
            total += nearest[i]
        if total <= 0.0:
            chosen[c] = min(np.int64(uniforms[c] * n), n - 1)
            continue
        target = uniforms[c] * total
        running = 0.0
        pick = n - 1
        for i in range(n):
            running += nearest[i]
            if running > target and nearest[i] > 0.0:
                pick = i
                break
        chosen[c] = pick
    return chosen


@nb.njit(cache=True, fastmath=True)
def _dot_tile(x, rows, i, n_rows, y, out):
    """Write ``out[r, c] = x[rows[i + r]] . y[c]`` for ``r < n_rows`` (at most 4) and every ``c``.

    Four rows of ``x`` against four rows of ``y`` keep 16 sums in registers, so each loaded
    element feeds four multiply-adds. That reuse brings numba close to a BLAS sgemm.
    """
    d = x.shape[1]
    k = y.shape[0]
    k4 = k - k % 4 if n_rows == 4 else 0
    i0 = rows[i]
    i1 = rows[i + 1] if n_rows == 4 else i0
    i2 = rows[i + 2] if n_rows == 4 else i0
    i3 = rows[i + 3] if n_rows == 4 else i0
    for c in range(0, k4, 4):
        a00 = a01 = a02 = a03 = np.float32(0.0)
        a10 = a11 = a12 = a13 = np.float32(0.0)
        a20 = a21 = a22 = a23 = np.float32(0.0)
        a30 = a31 = a32 = a33 = np.float32(0.0)
        for j in range(d):
            x0 = x[i0, j]
            x1 = x[i1, j]
            x2 = x[i2, j]
            x3 = x[i3, j]
            y0 = y[c, j]
            y1 = y[c + 1, j]
            y2 = y[c + 2, j]
            y3 = y[c + 3, j]
            a00 += x0 * y0
            a01 += x0 * y1
            a02 += x0 * y2
            a03 += x0 * y3
            a10 += x1 * y0
            a11 += x1 * y1
            a12 += x1 * y2
            a13 += x1 * y3
            a20 += x2 * y0
            a21 += x2 * y1
            a22 += x2 * y2
            a23 += x2 * y3
            a30 += x3 * y0
            a31 += x3 * y1
            a32 += x3 * y2
            a33 += x3 * y3
        out[0, c], out[0, c + 1], out[0, c + 2], out[0, c + 3] = a00, a01, a02, a03
        out[1, c], out[1, c + 1], out[1, c + 2], out[1, c + 3] = a10, a11, a12, a13
        out[2, c], out[2, c + 1], out[2, c + 2], out[2, c + 3] = a20, a21, a22, a23
        out[3, c], out[3, c + 1], out[3, c + 2], out[3, c + 3] = a30, a31, a32, a33
    # Rows and centroids left over from the 4x4 tiles, one dot product at a time.
    for r in range(n_rows):
        row = rows[i + r]
        for c in range(k4, k):
            acc = np.float32(0.0)
            for j in range(d):
                acc += x[row, j] * y[c, j]
            out[r, c] = acc


@nb.njit(parallel=True, cache=True)
def _inner_products(x, rows, y, out):
    """Write ``x[rows] @ y.T`` into ``out``; each prange iteration owns ``_CHUNK_ROWS`` rows."""
    n = rows.shape[0]
    n_chunks = (n + _CHUNK_ROWS - 1) // _CHUNK_ROWS
    for chunk in nb.prange(n_chunks):
        for i in range(chunk * _CHUNK_ROWS, min(n, (chunk + 1) * _CHUNK_ROWS), 4):
            _dot_tile(x, rows, i, min(4, n - i), y, out[i : i + 4])


# Lanes of the running minima in ``first_argmin``: one 512-bit vector of float32.
ARGMIN_LANES = 16


@nb.njit(cache=True, fastmath=True, inline="always")
def first_argmin(scores, lanes):
    """Return the first position of the smallest score and that score.

    ``lanes`` is float32[ARGMIN_LANES] scratch. Lane ``l`` keeps the minimum of positions
    ``l, l + 16, ...``, because sixteen independent minima vectorize, while one running minimum
    with its position is a chain of dependent comparisons. The position is then found by a few
    strided steps in each lane whose minimum equals the smallest score.
    """
    k = scores.shape[0]
    k_lanes = k - k % ARGMIN_LANES
    # Starting from scores[0], not from infinity, which fastmath lets the compiler assume away.
    best_score = scores[0]
    if k_lanes > 0:
        for lane in range(ARGMIN_LANES):
            lanes[lane] = scores[lane]
        for c in range(ARGMIN_LANES, k_lanes, ARGMIN_LANES):
            for lane in range(ARGMIN_LANES):
                value = scores[c + lane]
                lanes[lane] = value if value < lanes[lane] else lanes[lane]
        for lane in range(ARGMIN_LANES):
            best_score = lanes[lane] if lanes[lane] < best_score else best_score
    for c in range(k_lanes, k):
        best_score = scores[c] if scores[c] < best_score else best_score
    # The bounds on c and best only matter if a score is NaN, which finite rows do not produce.
    best = k
    for lane in range(min(ARGMIN_LANES, k_lanes)):
        if lanes[lane] == best_score:
            c = lane
            while c < k_lanes and scores[c] != best_score:
                c += ARGMIN_LANES
            best = min(best, c)
    if best >= k_lanes:
        best = k_lanes
        while best < k and scores[best] != best_score:
            best += 1
    return (best, best_score) if best < k else (0, scores[0])


@nb.njit(cache=True, fastmath=True, inline="always")
def add_weighted_rows(scores, offset, weights, first, tables, j, overwrite):
    """Add ``sum_t weights[first + t] * tables[j, t, c]`` to ``scores[offset + c]`` for every ``c``.

    With ``overwrite`` the sum replaces the scores instead, which saves clearing them first.
    Each pass over the scores adds eight rows of the table (then four, then one), which saves
    loads and stores of every score compared with one row per pass.
    """
    d = tables.shape[1]
    k = tables.shape[2]
    t = 0
    while t + 8 <= d:
        w0 = weights[first + t]
        w1 = weights[first + t + 1]
        w2 = weights[first + t + 2]
        w3 = weights[first + t + 3]
        w4 = weights[first + t + 4]
        w5 = weights[first + t + 5]
        w6 = weights[first + t + 6]
        w7 = weights[first + t + 7]
        replace = overwrite and t == 0
        for c in range(k):
            low = (w0 * tables[j, t, c] + w1 * tables[j, t + 1, c]) + (
                w2 * tables[j, t + 2, c] + w3 * tables[j, t + 3, c]
            )
            high = (w4 * tables[j, t + 4, c] + w5 * tables[j, t + 5, c]) + (
                w6 * tables[j, t + 6, c] + w7 * tables[j, t + 7, c]
            )
            if replace:
                scores[offset + c] = low + high
            else:
                scores[offset + c] += low + high
        t += 8
    while t + 4 <= d:
        w0 = weights[first + t]
        w1 = weights[first + t + 1]
        w2 = weights[first + t + 2]
        w3 = weights[first + t + 3]
        replace = overwrite and t == 0
        for c in range(k):
            value = (w0 * tables[j, t, c] + w1 * tables[j, t + 1, c]) + (
                w2 * tables[j, t + 2, c] + w3 * tables[j, t + 3, c]
            )
            if replace:
                scores[offset + c] = value
            else:
                scores[offset + c] += value
        t += 4
    while t < d:
        replace = overwrite and t == 0
        for c in range(k):
            value = weights[first + t] * tables[j, t, c]
            if replace:
                scores[offset + c] = value
            else:
                scores[offset + c] += value
        t += 1


@nb.njit(parallel=True, cache=True, fastmath=True)
def _best_centroids(x, rows, centroids, centroid_norms, spherical, labels, proxies):
    """Write the nearest centroid and proxy of each ``x[rows[i]]`` at ``i`` (ties: lower number).

    Scores are ``-x.c`` if spherical, else ``|c|^2 - 2 x.c``, to which the row's own ``|x|^2`` is
    added after the argmin. Each prange iteration owns ``_CHUNK_ROWS`` rows and its own scratch.
    """
    n = rows.shape[0]
    d = x.shape[1]
    k = centroids.shape[0]
    n_chunks = (n + _CHUNK_ROWS - 1) // _CHUNK_ROWS
    for chunk in nb.prange(n_chunks):
        products = np.empty((4, k), dtype=np.float32)
        scores = np.empty(k, dtype=np.float32)
        lanes = np.empty(ARGMIN_LANES, dtype=np.float32)
        for i in range(chunk * _CHUNK_ROWS, min(n, (chunk + 1) * _CHUNK_ROWS), 4):
            n_rows = min(4, n - i)
            _dot_tile(x, rows, i, n_rows, centroids, products)
            for r in range(n_rows):
                for c in range(k):
                    if spherical:
                        scores[c] = -products[r, c]
                    else:
                        scores[c] = centroid_norms[c] - np.float32(2.0) * products[r, c]
                best, best_score = first_argmin(scores, lanes)
                labels[i + r] = best
                if spherical:
                    proxies[i + r] = best_score
                else:
                    row = rows[i + r]
                    row_norm = np.float32(0.0)
                    for j in range(d):
                        row_norm += x[row, j] * x[row, j]
                    # Rounding can make |x|^2 - 2 x.c + |c|^2 slightly negative for a row on
                    # its centroid.
                    proxies[i + r] = max(best_score + row_norm, np.float32(0.0))


@nb.njit(parallel=True, cache=True, fastmath=True)
def _best_centroids_small(x, rows, centroids_t, centroid_norms, spherical, labels, proxies):
    """Write the nearest centroid and proxy of each ``x[rows[i]]`` at ``i``, for few dimensions.

    ``centroids_t`` is the transposed centroids as float32[1, d, k], so that the inner loop runs
    over contiguous centroids. Each prange iteration owns ``_CHUNK_ROWS`` rows and its scratch.
    """
    n = rows.shape[0]
    d = x.shape[1]
    k = centroids_t.shape[2]
    n_chunks = (n + _CHUNK_ROWS - 1) // _CHUNK_ROWS
    for chunk in nb.prange(n_chunks):
        scores = np.empty(k, dtype=np.float32)
        weights = np.empty(d, dtype=np.float32)
        lanes = np.empty(ARGMIN_LANES, dtype=np.float32)
        for i in range(chunk * _CHUNK_ROWS, min(n, (chunk + 1) * _CHUNK_ROWS)):
            row = rows[i]
            for t in range(d):
                weights[t] = -x[row, t] if spherical else np.float32(-2.0) * x[row, t]
            for c in range(k):
                scores[c] = np.float32(0.0) if spherical else centroid_norms[c]
            add_weighted_rows(scores, 0, weights, 0, centroids_t, 0, False)
            best, best_score = first_argmin(scores, lanes)
            labels[i] = best
            if spherical:
                proxies[i] = best_score
            else:
                row_norm = np.float32(0.0)
                for t in range(d):
                    row_norm += x[row, t] * x[row, t]
                proxies[i] = max(best_score + row_norm, np.float32(0.0))


@nb.njit(parallel=True, cache=True)
def _update_centroids(x, rows, labels, centroids, spherical, n_parts):
    """Move each non-empty centroid to the mean of its rows among ``x[rows]``; return counts.

    Means are scaled to unit length if spherical. The rows are split into ``n_parts`` fixed
    slices, and each prange iteration sums its slice into its own float64 buffer. So no two
    threads add into the same centroid row (a lost-update race), and the serial reduction that
    follows always adds the slices in the same order.
    """
    n = rows.shape[0]
    d = x.shape[1]
    k = centroids.shape[0]
    sums = np.zeros((n_parts, k, d), dtype=np.float64)
    part_counts = np.zeros((n_parts, k), dtype=np.int64)
    step = (n + n_parts - 1) // n_parts
    for part in nb.prange(n_parts):
        for i in range(part * step, min(n, (part + 1) * step)):
            c = labels[i]
            row = rows[i]
            part_counts[part, c] += 1
            for j in range(d):
                sums[part, c, j] += x[row, j]
    return _centroids_from_sums(sums, part_counts, centroids, spherical)


@nb.njit(cache=True)
def _centroids_from_sums(sums, part_counts, centroids, spherical):
    """Add the slices' sums in order, write the means and return the cluster sizes.

    This is a serial kernel because inside a parallel one, numba turns every array expression
    into a parallel region of its own, which was started once per centroid.
    """
    n_parts, k, d = sums.shape
    counts = np.zeros(k, dtype=np.int64)
    total = np.zeros(d, dtype=np.float64)
    for c in range(k):
        for j in range(d):
            total[j] = 0.0
        for part in range(n_parts):
            counts[c] += part_counts[part, c]
            for j in range(d):
                total[j] += sums[part, c, j]
        if counts[c] == 0:
            continue
        scale = 1.0 / counts[c]
        if spherical:
            norm = 0.0
            for j in range(d):
                norm += total[j] * total[j]
            if norm == 0.0:
                # The rows cancel out and the mean has no direction: keep the old centroid.
                continue
            scale = 1.0 / np.sqrt(norm)
        for j in range(d):
            centroids[c, j] = np.float32(total[j] * scale)
    return counts


def _reseed_empty(
    x: np.ndarray,
    centroids: np.ndarray,
    counts: np.ndarray,
    proxies: np.ndarray,
    spherical: bool,
    rows: np.ndarray | None = None,
) -> int:
    """Move each empty centroid onto the next row farthest from its centroid; return how many.

    ``proxies[i]`` belongs to row ``x[rows[i]]``, or to ``x[i]`` without ``rows``.
    """
    empty = np.flatnonzero(counts == 0)
    if empty.size == 0:
        return 0
    farthest = np.argsort(-proxies, kind="stable")[: empty.size]
    # With fewer rows than empty clusters (k > n) the farthest rows are reused in turn.
    positions = farthest[np.arange(empty.size) % farthest.size]
    centroids[empty] = x[positions if rows is None else rows[positions]]
    if spherical:
        _normalize_rows(centroids)
    return int(empty.size)


def _normalize_rows(x: np.ndarray) -> None:
    """Scale rows of ``x`` to unit length in place; zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
