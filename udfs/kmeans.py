"""k-means clustering for IVF coarse quantizers, PQ codebooks and users (``vsql.kmeans``).

Lloyd's algorithm on float32 rows, in two flavours:

* ``l2``: centroids are cluster means, a row goes to the centroid with the smallest
  ``|x - c|^2 = |x|^2 - 2 x.c + |c|^2``.
* ``ip`` and ``cosine``: spherical k-means. Centroids are unit-norm cluster means and a row goes to
  the centroid with the largest ``x.c``. Under cosine the rows are expected to be unit rows
  (``udfs.metrics.prepare_rows``); under ip they are used as given.

The ``x.c`` products of the assignment step are one matrix product per block of rows, done by
numpy's BLAS; the argmin, the partial sums and the seeding are numba kernels.
"""

from __future__ import annotations

import logging

import numba as nb
import numpy as np

from vsql.errors import DataError, NotSupportedError, ProgrammingError

logger = logging.getLogger("vsql.kmeans")

# Rows per matrix product in the assignment step: the float32[rows, k] block of products stays
# within a few MiB for the k values IVF uses.
_BLOCK_ROWS = 4096

# Below this many dimensions a matrix product is too thin for BLAS to be efficient (PQ
# sub-vectors have 4 to 16), and a numba kernel computes the distances directly.
_MAX_DIM_WITHOUT_BLAS = 32

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
    if sample_size is not None and sample_size < x.shape[0]:
        if sample_size < 1:
            raise ProgrammingError(f"sample size must be at least 1, not {sample_size}")
        rows = np.sort(rng.choice(x.shape[0], size=sample_size, replace=False))
        x = np.ascontiguousarray(x[rows])

    centroids = _seed_centroids(x, k, spherical, rng)
    previous = np.full(x.shape[0], -1, dtype=np.int64)
    for iteration in range(n_iter):
        labels, proxies = assign(x, centroids, spherical)
        counts = _update_centroids(x, labels, centroids, spherical, nb.get_num_threads())
        n_empty = _reseed_empty(x, centroids, counts, proxies, spherical)
        if n_empty == 0 and np.array_equal(labels, previous):
            logger.debug("k-means converged after %d iterations", iteration + 1)
            break
        previous = labels
    return centroids


def assign(
    x: np.ndarray, centroids: np.ndarray, spherical: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Return each row's nearest centroid and proxy (squared L2, or ``-x.c`` if spherical)."""
    n = x.shape[0]
    labels = np.empty(n, dtype=np.int64)
    proxies = np.empty(n, dtype=np.float32)
    centroid_norms = np.einsum("ij,ij->i", centroids, centroids).astype(np.float32)
    if x.shape[1] <= _MAX_DIM_WITHOUT_BLAS:
        centroids_t = np.ascontiguousarray(centroids.T)
        _best_centroids_small(x, centroids_t, centroid_norms, spherical, labels, proxies)
        return labels, proxies
    for start in range(0, n, _BLOCK_ROWS):
        block = x[start : start + _BLOCK_ROWS]
        products = np.ascontiguousarray(block @ centroids.T, dtype=np.float32)
        row_norms = np.einsum("ij,ij->i", block, block).astype(np.float32)
        _best_centroids(
            products,
            row_norms,
            centroid_norms,
            spherical,
            labels[start : start + block.shape[0]],
            proxies[start : start + block.shape[0]],
        )
    return labels, proxies


def warm_up() -> None:
    """Compile this module's kernels on tiny data, so that the first real call does not wait."""
    x = np.random.default_rng(0).random((64, 4), dtype=np.float32)
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
    x: np.ndarray, k: int, spherical: bool, rng: np.random.Generator
) -> np.ndarray:
    """Pick ``k`` initial centroids by k-means++ on a random sample of at most 16 rows per centroid.

    Full k-means++ makes ``k`` sequential passes over all rows, which costs as much as one Lloyd
    iteration but cannot use a matrix product. Sampling 16 rows per centroid keeps the D^2
    spreading (every dense region of the data has rows in the sample) for a small fraction of the
    cost, and the Lloyd iterations that follow run on all training rows.
    """
    n = x.shape[0]
    n_seed = min(n, _SEED_ROWS_PER_CENTROID * k)
    if n_seed < n:
        candidates = np.ascontiguousarray(x[np.sort(rng.choice(n, size=n_seed, replace=False))])
    else:
        candidates = x
    uniforms = rng.random(k)
    chosen = _kmeans_plus_plus(candidates, uniforms)
    centroids = np.ascontiguousarray(candidates[chosen])
    if spherical:
        _normalize_rows(centroids)
    return centroids


@nb.njit(cache=True)
def _kmeans_plus_plus(x: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Return row numbers of ``len(uniforms)`` seeds drawn by D^2 sampling on squared L2.

    When every row coincides with a chosen seed (duplicates, k above the number of distinct rows)
    the remaining seeds are drawn uniformly, so they repeat existing rows.
    """
    n, d = x.shape
    k = uniforms.shape[0]
    chosen = np.empty(k, dtype=np.int64)
    nearest = np.full(n, np.inf, dtype=np.float32)
    chosen[0] = min(np.int64(uniforms[0] * n), n - 1)
    for c in range(1, k):
        last = x[chosen[c - 1]]
        total = 0.0
        for i in range(n):
            acc = np.float32(0.0)
            for j in range(d):
                diff = x[i, j] - last[j]
                acc += diff * diff
            if acc < nearest[i]:
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


@nb.njit(cache=True)
def _best_centroids(products, row_norms, centroid_norms, spherical, labels, proxies):
    """Write each row's nearest centroid and proxy from its row of ``x @ centroids.T``.

    Ties go to the lower centroid number, which keeps duplicate centroids after the first empty.
    The loop is serial on purpose: it runs between two BLAS calls, and handing the cores from
    OpenBLAS's threads to numba's and back for every block cost more than the loop itself.
    """
    n, k = products.shape
    for i in range(n):
        best = 0
        best_proxy = np.float32(np.inf)
        for c in range(k):
            if spherical:
                proxy = -products[i, c]
            else:
                proxy = row_norms[i] - np.float32(2.0) * products[i, c] + centroid_norms[c]
            if proxy < best_proxy:
                best_proxy = proxy
                best = c
        labels[i] = best
        # Rounding can make |x|^2 - 2 x.c + |c|^2 slightly negative for a row on its centroid.
        proxies[i] = max(best_proxy, np.float32(0.0)) if not spherical else best_proxy


@nb.njit(parallel=True, cache=True, fastmath=True)
def _best_centroids_small(x, centroids_t, centroid_norms, spherical, labels, proxies):
    """Write each row's nearest centroid and proxy, for rows of few dimensions.

    ``centroids_t`` is ``centroids.T`` so that the inner loop runs over contiguous centroids.
    Each prange iteration writes only its own row's outputs and uses its own scratch.
    """
    n, d = x.shape
    k = centroids_t.shape[1]
    for i in nb.prange(n):
        scores = np.empty(k, dtype=np.float32)
        for c in range(k):
            scores[c] = np.float32(0.0) if spherical else centroid_norms[c]
        for t in range(d):
            weight = -x[i, t] if spherical else np.float32(-2.0) * x[i, t]
            for c in range(k):
                scores[c] += weight * centroids_t[t, c]
        best = 0
        for c in range(1, k):
            if scores[c] < scores[best]:
                best = c
        labels[i] = best
        if spherical:
            proxies[i] = scores[best]
        else:
            row_norm = np.float32(0.0)
            for t in range(d):
                row_norm += x[i, t] * x[i, t]
            proxies[i] = max(scores[best] + row_norm, np.float32(0.0))


@nb.njit(parallel=True, cache=True)
def _update_centroids(x, labels, centroids, spherical, n_parts):
    """Move each non-empty centroid to its cluster mean (unit length if spherical); return counts.

    Rows are split into ``n_parts`` fixed slices, and each prange iteration sums its slice into its
    own float64 buffer. So no two threads add into the same centroid row (a lost-update race),
    and the serial reduction that follows always adds the slices in the same order.
    """
    n, d = x.shape
    k = centroids.shape[0]
    sums = np.zeros((n_parts, k, d), dtype=np.float64)
    part_counts = np.zeros((n_parts, k), dtype=np.int64)
    step = (n + n_parts - 1) // n_parts
    for part in nb.prange(n_parts):
        for i in range(part * step, min(n, (part + 1) * step)):
            c = labels[i]
            part_counts[part, c] += 1
            for j in range(d):
                sums[part, c, j] += x[i, j]

    counts = np.zeros(k, dtype=np.int64)
    total = np.zeros(d, dtype=np.float64)
    for c in range(k):
        total[:] = 0.0
        for part in range(n_parts):
            counts[c] += part_counts[part, c]
            for j in range(d):
                total[j] += sums[part, c, j]
        if counts[c] == 0:
            continue
        scale = 1.0 / counts[c]
        if spherical:
            norm = np.sqrt(np.sum(total * total))
            if norm == 0.0:
                # The rows cancel out and the mean has no direction: keep the old centroid.
                continue
            scale = 1.0 / norm
        for j in range(d):
            centroids[c, j] = np.float32(total[j] * scale)
    return counts


def _reseed_empty(
    x: np.ndarray, centroids: np.ndarray, counts: np.ndarray, proxies: np.ndarray, spherical: bool
) -> int:
    """Move each empty centroid onto the next row farthest from its centroid; return how many."""
    empty = np.flatnonzero(counts == 0)
    if empty.size == 0:
        return 0
    farthest = np.argsort(-proxies, kind="stable")[: empty.size]
    # With fewer rows than empty clusters (k > n) the farthest rows are reused in turn.
    rows = farthest[np.arange(empty.size) % farthest.size]
    centroids[empty] = x[rows]
    if spherical:
        _normalize_rows(centroids)
    return int(empty.size)


def _normalize_rows(x: np.ndarray) -> None:
    """Scale rows of ``x`` to unit length in place; zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
