"""IVF-Flat index: k-means coarse lists over float32 rows, searched by scanning the nearest lists.

Layout. The rows of each inverted list sit in one contiguous slice of flat arrays (``slot_ids``
and one payload array: the float32 rows here, PQ codes in ``udfs.pq``). List ``l`` owns slots
``list_start[l] .. list_start[l + 1]`` and uses the first ``list_size[l]`` of them; the rest is
free capacity, so ``add`` usually writes new rows in place. When a list is full, every list is
copied once into a new layout with about 1/8 free capacity each, which drops removed rows and
keeps the cost of ``add`` amortized O(1) per row. The first ``add`` into an empty index leaves no
free capacity, because a bulk build is the common case.

Search. The query's proxy to every centroid ranks the lists. The ``probes`` nearest lists are
scanned, and further lists after them only while fewer than ``k`` live, allowed rows were found,
so a search returns ``min(k, live allowed rows)`` rows however small the lists or the filter.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numba as nb
import numpy as np

from udfs import kmeans as kmeans_module
from udfs.metrics import COSINE, IP, L2, METRIC_CODES, prepare_rows
from vsql.errors import DataError, NotSupportedError, ProgrammingError

logger = logging.getLogger("vsql.ivf")

# Training uses a random sample of at most this many rows per list, which is enough for the
# centroids to settle and bounds the training time on large tables.
TRAIN_ROWS_PER_LIST = 256
COARSE_ITERATIONS = 10


class TrainingWarning(NamedTuple):
    """A warning raised while training, worded as pgvector's notice: message and detail."""

    message: str
    detail: str

    def __str__(self) -> str:
        return f"{self.message}\nDETAIL:  {self.detail}"


# --- numba kernels shared with udfs.pq ----------------------------------------------------------


@nb.njit(cache=True, fastmath=True)
def centroid_products(q: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Return ``q.c`` for every centroid ``c`` (float32[n_lists])."""
    n_lists, d = centroids.shape
    products = np.empty(n_lists, dtype=np.float32)
    for c in range(n_lists):
        acc = np.float32(0.0)
        for j in range(d):
            acc += q[j] * centroids[c, j]
        products[c] = acc
    return products


@nb.njit(cache=True)
def list_proxies(metric: int, products: np.ndarray, centroid_norms: np.ndarray) -> np.ndarray:
    """Return the proxy that ranks each list for a query, from its ``q.c`` products.

    l2: ``|c|^2 - 2 q.c``, which is ``|q - c|^2`` less the same ``|q|^2`` for every list. ip and
    cosine centroids are unit vectors from spherical k-means, so larger ``q.c`` is nearer.
    """
    proxies = np.empty(products.shape[0], dtype=np.float32)
    for c in range(products.shape[0]):
        if metric == L2:
            proxies[c] = centroid_norms[c] - np.float32(2.0) * products[c]
        else:
            proxies[c] = -products[c]
    return proxies


@nb.njit(cache=True)
def nearest_lists(proxies: np.ndarray, n: int) -> np.ndarray:
    """Return the ``n`` lists of smallest proxy, nearest first (ties go to the lower list number).

    A bounded heap costs about one comparison per list, which matters at small ``n``: sorting
    316 lists took about half as long as scanning one of them. The result is the prefix of a
    stable argsort of all lists.
    """
    n_lists = proxies.shape[0]
    if 4 * n >= n_lists:
        return np.argsort(proxies, kind="mergesort")[:n]
    heap_proxies = np.empty(n, dtype=np.float32)
    heap_labels = np.empty(n, dtype=np.int64)
    size = 0
    for label in range(n_lists):
        size = heap_push(heap_proxies, heap_labels, size, proxies[label], label)
    labels, _ = heap_sorted(heap_proxies, heap_labels, size)
    return labels


@nb.njit(cache=True, inline="always")
def row_qualifies(row_id, deleted, allowed, use_allowed) -> bool:
    if deleted[row_id]:
        return False
    return not use_allowed or allowed[row_id]


@nb.njit(cache=True, inline="always")
def heap_push(heap_proxies, heap_ids, size, proxy, row_id) -> int:
    """Offer ``(proxy, row_id)`` to a bounded max-heap of the best rows; return the new size."""
    capacity = heap_proxies.shape[0]
    if size < capacity:
        i = size
        size += 1
    elif proxy < heap_proxies[0]:
        # Replace the worst row: sift the new one down from the root.
        i = 0
        while True:
            child = 2 * i + 1
            if child >= capacity:
                break
            if child + 1 < capacity and heap_proxies[child + 1] > heap_proxies[child]:
                child += 1
            if heap_proxies[child] <= proxy:
                break
            heap_proxies[i] = heap_proxies[child]
            heap_ids[i] = heap_ids[child]
            i = child
        heap_proxies[i] = proxy
        heap_ids[i] = row_id
        return size
    else:
        return size
    # Append at the end and sift up.
    while i > 0:
        parent = (i - 1) // 2
        if heap_proxies[parent] >= proxy:
            break
        heap_proxies[i] = heap_proxies[parent]
        heap_ids[i] = heap_ids[parent]
        i = parent
    heap_proxies[i] = proxy
    heap_ids[i] = row_id
    return size


@nb.njit(cache=True)
def heap_sorted(heap_proxies, heap_ids, size) -> tuple[np.ndarray, np.ndarray]:
    """Return the heap's ids and proxies best first; equal proxies are ordered by id."""
    ids = heap_ids[:size].copy()
    proxies = heap_proxies[:size].copy()
    by_id = np.argsort(ids, kind="mergesort")
    ids = ids[by_id]
    proxies = proxies[by_id]
    order = np.argsort(proxies, kind="mergesort")
    return ids[order], proxies[order]


@nb.njit(cache=True)
def place_rows(labels, list_start, list_size) -> np.ndarray:
    """Return a free slot for each new row in its list's spare capacity, advancing ``list_size``."""
    slots = np.empty(labels.shape[0], dtype=np.int64)
    for i in range(labels.shape[0]):
        label = labels[i]
        slots[i] = list_start[label] + list_size[label]
        list_size[label] += 1
    return slots


@nb.njit(cache=True)
def plan_relayout(list_start, list_size, slot_ids, deleted, labels, with_slack):
    """Plan a new layout holding the live rows of every list and the new rows ``labels``.

    Returns the new ``list_start`` and ``list_size`` and three slot maps: old slots of the kept
    rows, their new slots, and the new slots of the added rows (in the order of ``labels``).
    """
    n_lists = list_size.shape[0]
    new_size = np.zeros(n_lists, dtype=np.int64)
    n_kept = 0
    for label in range(n_lists):
        for slot in range(list_start[label], list_start[label] + list_size[label]):
            if not deleted[slot_ids[slot]]:
                new_size[label] += 1
                n_kept += 1
    for i in range(labels.shape[0]):
        new_size[labels[i]] += 1

    new_start = np.zeros(n_lists + 1, dtype=np.int64)
    for label in range(n_lists):
        capacity = new_size[label]
        if with_slack:
            capacity += new_size[label] // 8 + 4
        new_start[label + 1] = new_start[label] + capacity

    kept_from = np.empty(n_kept, dtype=np.int64)
    kept_to = np.empty(n_kept, dtype=np.int64)
    fill = np.zeros(n_lists, dtype=np.int64)
    n = 0
    for label in range(n_lists):
        for slot in range(list_start[label], list_start[label] + list_size[label]):
            if not deleted[slot_ids[slot]]:
                kept_from[n] = slot
                kept_to[n] = new_start[label] + fill[label]
                fill[label] += 1
                n += 1
    added_to = np.empty(labels.shape[0], dtype=np.int64)
    for i in range(labels.shape[0]):
        label = labels[i]
        added_to[i] = new_start[label] + fill[label]
        fill[label] += 1
    return new_start, fill, kept_from, kept_to, added_to


@nb.njit(cache=True, fastmath=True)
def _scan_flat(
    metric, q, k, probes, proxies_of_lists, list_start, list_size, slot_ids, vectors,
    deleted, allowed, use_allowed, any_deleted,
):
    """Return the ``k`` best (ids, proxies) among the rows of the nearest lists, best first.

    The ``probes`` nearest lists are scanned, then further lists in order while fewer than ``k``
    rows qualified. When ``any_deleted`` is false, the per-row removal check is skipped. A row's
    proxy is compared with the heap's worst before the heap is touched, which rejects most rows
    at once.
    """
    order = nearest_lists(proxies_of_lists, probes)
    heap_proxies = np.empty(k, dtype=np.float32)
    heap_ids = np.empty(k, dtype=np.int64)
    size = 0
    d = q.shape[0]
    check_rows = use_allowed or any_deleted
    for rank in range(proxies_of_lists.shape[0]):
        if rank >= probes and size >= k:
            break
        if rank == order.shape[0]:
            # Too few rows qualified in the probed lists: rank all lists (rare).
            order = np.argsort(proxies_of_lists, kind="mergesort")
        label = order[rank]
        for slot in range(list_start[label], list_start[label] + list_size[label]):
            if check_rows and not row_qualifies(slot_ids[slot], deleted, allowed, use_allowed):
                continue
            # Indexing vectors[slot, j] rather than a row slice keeps reference counting out of
            # the loop.
            acc = np.float32(0.0)
            if metric == L2:
                for j in range(d):
                    diff = vectors[slot, j] - q[j]
                    acc += diff * diff
                proxy = acc
            else:
                for j in range(d):
                    acc += vectors[slot, j] * q[j]
                proxy = -acc if metric == IP else np.float32(1.0) - acc
            if size < k or proxy < heap_proxies[0]:
                size = heap_push(heap_proxies, heap_ids, size, proxy, slot_ids[slot])
    return heap_sorted(heap_proxies, heap_ids, size)


@nb.njit(cache=True)
def _search_flat(
    metric, q, k, probes, centroids, centroid_norms, list_start, list_size, slot_ids, vectors,
    deleted, allowed, use_allowed, any_deleted,
):
    """Search one query: rank the lists, then ``_scan_flat``."""
    proxies = list_proxies(metric, centroid_products(q, centroids), centroid_norms)
    return _scan_flat(
        metric, q, k, probes, proxies, list_start, list_size, slot_ids, vectors,
        deleted, allowed, use_allowed, any_deleted,
    )


@nb.njit(cache=True, parallel=True)
def _search_flat_batch(
    metric, xq, k, probes, products, centroid_norms, list_start, list_size, slot_ids, vectors,
    deleted, allowed, use_allowed, any_deleted,
):
    """Search every row of ``xq``, given ``products = xq @ centroids.T``.

    Rows with fewer than ``k`` results are padded with -1 and inf. Each prange iteration writes
    only its own output row and allocates its own heap, so queries share no mutable state.
    """
    nq = xq.shape[0]
    out_ids = np.full((nq, k), -1, dtype=np.int64)
    out_proxies = np.full((nq, k), np.inf, dtype=np.float32)
    for i in nb.prange(nq):
        proxies = list_proxies(metric, products[i], centroid_norms)
        ids, found = _scan_flat(
            metric, xq[i], k, probes, proxies, list_start, list_size, slot_ids, vectors,
            deleted, allowed, use_allowed, any_deleted,
        )
        out_ids[i, : ids.shape[0]] = ids
        out_proxies[i, : ids.shape[0]] = found
    return out_ids, out_proxies


# --- shared Python layer ------------------------------------------------------------------------


class InvertedListIndex:
    """State and checks shared by ``IvfFlatIndex`` and ``udfs.pq.IvfPqIndex``.

    Internal ids are 0, 1, 2, ... in insertion order. ``len(index)`` counts every id ever added,
    removed ones included; ``n_live`` counts the ids not removed.
    """

    kind = "ivf"

    def __init__(self, dim: int, metric: str, lists: int = 100, seed: int = 0):
        if metric == "l1":
            raise NotSupportedError(
                f"{self.kind} index does not support metric l1: use l2, ip or cosine"
            )
        if metric not in ("l2", "ip", "cosine"):
            raise ProgrammingError(f"unknown metric {metric!r}: expected l2, ip or cosine")
        if dim < 1:
            raise DataError(f"dimensions must be at least 1, not {dim}")
        if not 1 <= lists <= 32768:
            raise ProgrammingError(
                f'value {lists} out of bounds for option "lists": valid range is 1 to 32768'
            )
        self.dim = int(dim)
        self.metric = metric
        self.metric_code = METRIC_CODES[metric]
        self.lists = int(lists)
        self.seed = int(seed)
        self.warnings: list[TrainingWarning] = []
        self.centroids: np.ndarray | None = None
        self._list_start = np.zeros(self.lists + 1, dtype=np.int64)
        self._list_size = np.zeros(self.lists, dtype=np.int64)
        self._slot_ids = np.empty(0, dtype=np.int64)
        self._deleted = np.zeros(0, dtype=np.bool_)
        self._any_deleted = False
        self._n_ids = 0
        self._norms_of: np.ndarray | None = None
        self._centroid_norms = np.empty(0, dtype=np.float32)

    # -- public interface

    @property
    def is_trained(self) -> bool:
        return self.centroids is not None

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Return the stored float32 rows of live ``ids`` (removed ids may read as zeros)."""
        ids = np.asarray(ids, dtype=np.int64)
        slot_of_id = np.full(self._n_ids, -1, dtype=np.int64)
        occupied = np.flatnonzero(self._slot_ids >= 0)
        slot_of_id[self._slot_ids[occupied]] = occupied
        slots = slot_of_id[ids]
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        present = slots >= 0
        out[present] = self._exact_rows()[slots[present]]
        return out

    def _exact_rows(self) -> np.ndarray:
        """Return the float32 rows in slot order (IVF-PQ keeps its rows by id and overrides rows())."""
        return self._payload_arrays()[0]

    @property
    def n_live(self) -> int:
        return self._n_ids - int(np.count_nonzero(self._deleted[: self._n_ids]))

    def __len__(self) -> int:
        return self._n_ids

    def train(self, xt: np.ndarray) -> list[TrainingWarning]:
        """Train the coarse centroids on prepared rows ``xt``; return warnings for the user.

        With fewer training rows than lists, the index uses one list per training row and warns,
        as pgvector does, that recall will be low. With no rows at all the index stays untrained.
        """
        xt = self._check_rows(xt, "training rows")
        if self._n_ids > 0:
            raise ProgrammingError(
                f"{self.kind} index already contains rows: create a new index to train again"
            )
        self.warnings = []
        if xt.shape[0] < self.lists:
            self.warnings.append(
                TrainingWarning(
                    f"{self.kind} index created with little data", "This will cause low recall."
                )
            )
        if xt.shape[0] == 0:
            return list(self.warnings)
        self.lists = min(self.lists, xt.shape[0])
        logger.info("training %s index: %d lists on %d rows", self.kind, self.lists, xt.shape[0])
        self.centroids = kmeans_module.train_centroids(
            xt,
            self.lists,
            spherical=self.metric != "l2",
            n_iter=COARSE_ITERATIONS,
            seed=self.seed,
            sample_size=TRAIN_ROWS_PER_LIST * self.lists,
        )
        self._train_payload(xt)
        self._reset_lists()
        return list(self.warnings)

    def add(self, xb: np.ndarray) -> np.ndarray:
        """Append prepared rows and return their ids."""
        if not self.is_trained:
            raise ProgrammingError(
                f"{self.kind} index is not trained: call train() with at least one row before add()"
            )
        xb = self._check_rows(xb, "rows")
        ids = np.arange(self._n_ids, self._n_ids + xb.shape[0], dtype=np.int64)
        self._deleted = _grown(self._deleted, self._n_ids + xb.shape[0])
        self._deleted[self._n_ids : self._n_ids + xb.shape[0]] = False
        if xb.shape[0] == 0:
            return ids
        labels, _ = kmeans_module.assign(xb, self.centroids, self.metric != "l2")
        payload = self._encode(xb, labels)
        self._keep_rows(xb)
        self._n_ids += xb.shape[0]
        self._insert(ids, labels, payload)
        return ids

    def remove(self, ids: np.ndarray) -> None:
        """Mark ``ids`` removed; they are never returned again and their slots are freed lazily."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= self._n_ids):
            bad = ids[(ids < 0) | (ids >= self._n_ids)][0]
            raise DataError(f"id {bad} not found in {self.kind} index of {self._n_ids} ids")
        self._deleted[ids] = True
        self._any_deleted = self._any_deleted or ids.size > 0

    def memory_bytes(self) -> int:
        """Bytes of the index arrays (centroids, lists, codes), not of the float32 table rows."""
        arrays = [self._list_start, self._list_size, self._slot_ids, self._deleted]
        arrays += self._payload_arrays()
        arrays += self._model_arrays()
        return int(sum(a.nbytes for a in arrays))

    # -- helpers for subclasses

    def _check_rows(self, x: np.ndarray, what: str) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim == 1 and x.size == 0:
            x = x.reshape(0, self.dim)
        if x.ndim != 2:
            raise DataError(f"expected a 2-dimensional array of {what}, not {x.ndim} dimensions")
        if x.shape[1] != self.dim:
            raise DataError(f"expected {self.dim} dimensions, not {x.shape[1]}")
        if not _all_finite(x):
            raise DataError(f"{what} must not contain NaN or infinite values")
        return x

    def _check_query(self, q: np.ndarray) -> np.ndarray:
        q = np.ascontiguousarray(q, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise DataError(f"expected {self.dim} dimensions, not {q.shape[0]}")
        if not np.isfinite(q).all():
            raise DataError("query vector must not contain NaN or infinite values")
        if self.metric_code == COSINE:
            norm = np.linalg.norm(q)
            if norm > 0:
                q = q / norm
        return q

    def _check_queries(self, xq: np.ndarray) -> np.ndarray:
        xq = self._check_rows(np.atleast_2d(xq), "query vectors")
        if self.metric_code == COSINE:
            xq, _ = prepare_rows("cosine", xq)
        return xq

    def _empty_batch(self, nq: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        return np.full((nq, k), -1, dtype=np.int64), np.full((nq, k), np.inf, dtype=np.float32)

    def _check_search(self, k: int, probes: int, allowed) -> tuple[np.ndarray, bool]:
        if k < 0:
            raise DataError(f"k must be at least 0, not {k}")
        if probes < 1:
            raise ProgrammingError(f"probes must be at least 1, not {probes}")
        if allowed is None:
            return np.zeros(0, dtype=np.bool_), False
        allowed = np.ascontiguousarray(allowed, dtype=np.bool_)
        if allowed.shape != (self._n_ids,):
            raise DataError(
                f"allowed mask must have one entry per id ({self._n_ids}), not {allowed.shape}"
            )
        return allowed, True

    def _search_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the centroids and their squared norms, recomputed only after a new training."""
        if self._norms_of is not self.centroids:
            self._centroid_norms = np.einsum("ij,ij->i", self.centroids, self.centroids)
            self._centroid_norms = self._centroid_norms.astype(np.float32)
            self._norms_of = self.centroids
        return self.centroids, self._centroid_norms

    def _empty_result(self) -> tuple[np.ndarray, np.ndarray]:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)

    def _reset_lists(self) -> None:
        self._list_start = np.zeros(self.lists + 1, dtype=np.int64)
        self._list_size = np.zeros(self.lists, dtype=np.int64)
        self._slot_ids = np.empty(0, dtype=np.int64)
        self._set_payload(self._new_payload(0))

    def _insert(self, ids: np.ndarray, labels: np.ndarray, payload: list[np.ndarray]) -> None:
        counts = np.bincount(labels, minlength=self.lists)
        capacity = np.diff(self._list_start)
        if np.all(self._list_size + counts <= capacity):
            slots = place_rows(labels, self._list_start, self._list_size)
            self._slot_ids[slots] = ids
            for target, values in zip(self._payload_arrays(), payload, strict=True):
                target[slots] = values
            return
        with_slack = bool(self._list_size.sum() > 0)
        new_start, new_size, kept_from, kept_to, added_to = plan_relayout(
            self._list_start, self._list_size, self._slot_ids, self._deleted, labels, with_slack
        )
        total = int(new_start[-1])
        slot_ids = np.full(total, -1, dtype=np.int64)
        slot_ids[kept_to] = self._slot_ids[kept_from]
        slot_ids[added_to] = ids
        # Where each new slot's row comes from: an old slot or a new row (-1: neither).
        from_old = np.full(total, -1, dtype=np.int64)
        from_old[kept_to] = kept_from
        from_new = np.full(total, -1, dtype=np.int64)
        from_new[added_to] = np.arange(added_to.shape[0], dtype=np.int64)
        new_payload = self._new_payload(total)
        for old, new, values in zip(self._payload_arrays(), new_payload, payload, strict=True):
            _assemble_rows(_as_rows(new), _as_rows(old), from_old, _as_rows(values), from_new)
        self._list_start, self._list_size, self._slot_ids = new_start, new_size, slot_ids
        self._set_payload(new_payload)
        logger.debug("%s index relaid out: %d slots for %d rows", self.kind, total, new_size.sum())

    def _compact_lists(self) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Return offsets, ids and payload of the live rows with no free capacity, for storage."""
        no_rows = np.empty(0, dtype=np.int64)
        new_start, new_size, kept_from, kept_to, _ = plan_relayout(
            self._list_start, self._list_size, self._slot_ids, self._deleted, no_rows, False
        )
        ids = np.empty(int(new_start[-1]), dtype=np.int64)
        ids[kept_to] = self._slot_ids[kept_from]
        payload = [a[kept_from] for a in self._payload_arrays()]
        return new_start, ids, payload

    def _load_lists(self, offsets, ids, payload, deleted) -> None:
        self._list_start = np.ascontiguousarray(offsets, dtype=np.int64)
        self._list_size = np.diff(self._list_start)
        self._slot_ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._set_payload(payload)
        self._deleted = np.ascontiguousarray(deleted, dtype=np.bool_).copy()
        self._any_deleted = bool(self._deleted.any())
        self._n_ids = self._deleted.shape[0]

    def _common_arrays(self) -> dict[str, np.ndarray]:
        offsets, ids, _ = self._compact_lists()
        return {
            "dim": np.array(self.dim, dtype=np.int64),
            "metric": np.array(self.metric_code, dtype=np.int64),
            "lists": np.array(self.lists, dtype=np.int64),
            "seed": np.array(self.seed, dtype=np.int64),
            "centroids": self.centroids,
            "list_offsets": offsets,
            "list_ids": ids,
            "deleted": self._deleted[: self._n_ids].copy(),
        }

    # -- hooks the subclasses define

    def _train_payload(self, xt: np.ndarray) -> None:
        """Train what the payload encoding needs beyond the coarse centroids."""

    def _encode(self, xb: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def _keep_rows(self, xb: np.ndarray) -> None:
        """Keep a reference to added rows when the index needs them at search time."""

    def _new_payload(self, n_slots: int) -> list[np.ndarray]:
        raise NotImplementedError

    def _payload_arrays(self) -> list[np.ndarray]:
        raise NotImplementedError

    def _set_payload(self, payload: list[np.ndarray]) -> None:
        raise NotImplementedError

    def _model_arrays(self) -> list[np.ndarray]:
        return [] if self.centroids is None else [self.centroids]


@nb.njit(cache=True, parallel=True)
def _all_finite(x: np.ndarray) -> bool:
    """Return whether every element of float32[n, d] ``x`` is finite.

    ``np.isfinite(x).all()`` first allocates a boolean array the size of ``x``, and on 100,000
    rows of 384 dimensions that allocation cost more than the check itself.
    """
    n_bad = 0
    for i in nb.prange(x.shape[0]):
        row_bad = 0
        for j in range(x.shape[1]):
            # NaN fails the comparison too.
            row_bad += not (abs(x[i, j]) <= np.float32(3.4028235e38))
        n_bad += row_bad
    return n_bad == 0


@nb.njit(cache=True, parallel=True)
def _assemble_rows(new, old, from_old, values, from_new):
    """Write row ``s`` of ``new`` from ``old[from_old[s]]``, else ``values[from_new[s]]``, else 0.

    Each thread writes one contiguous range of ``new``. The first writes into a freshly
    allocated array take page faults, and on the machine measured these cost more than the copy
    itself: numpy requests huge pages for large arrays, and those can stall for compaction.
    Taking them on every thread at once, in separate ranges, shortens that stall.
    """
    n_slots, width = new.shape
    for slot in nb.prange(n_slots):
        if from_old[slot] >= 0:
            for j in range(width):
                new[slot, j] = old[from_old[slot], j]
        elif from_new[slot] >= 0:
            for j in range(width):
                new[slot, j] = values[from_new[slot], j]
        else:
            for j in range(width):
                new[slot, j] = 0


@nb.njit(cache=True, parallel=True)
def copy_rows(target, first, rows):
    """Write ``target[first + i] = rows[i]``; threads write contiguous ranges (``_assemble_rows``)."""
    width = rows.shape[1]
    for i in nb.prange(rows.shape[0]):
        for j in range(width):
            target[first + i, j] = rows[i, j]


def _as_rows(array: np.ndarray) -> np.ndarray:
    """Return ``array`` as a 2-dimensional view of one row per slot (1-dimensional: one column)."""
    return array.reshape(array.shape[0], int(np.prod(array.shape[1:], dtype=np.int64)))


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    """Return ``array`` or a copy with capacity for ``size`` rows, doubling so appends are O(1)."""
    if array.shape[0] >= size:
        return array
    grown = np.zeros((max(size, 2 * array.shape[0]),) + array.shape[1:], dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


def metric_name(code: int) -> str:
    return {L2: "l2", IP: "ip", COSINE: "cosine"}[int(code)]


# --- IVF-Flat -----------------------------------------------------------------------------------


class IvfFlatIndex(InvertedListIndex):
    """IVF-Flat: each list stores its float32 rows, scanned with exact proxies.

    Memory per row: ``4 * dim`` bytes of the row copy, 8 bytes of id and 1 byte of removal flag,
    plus free list capacity after incremental adds (at most about 1/8).

    >>> index = IvfFlatIndex(3, "l2", lists=2)
    >>> index.train(xb); ids = index.add(xb)
    >>> ids, proxies = index.search(xb[0], 5, probes=1)
    """

    kind = "ivfflat"

    def __init__(self, dim: int, metric: str, lists: int = 100, seed: int = 0):
        super().__init__(dim, metric, lists, seed)
        self._vectors = np.empty((0, self.dim), dtype=np.float32)

    def search(
        self, q: np.ndarray, k: int, *, probes: int = 1, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ids and proxies of the ``k`` best rows found, best first.

        The ``probes`` nearest lists are scanned, and more while fewer than ``k`` live, allowed
        rows were found, so ``min(k, live allowed rows)`` rows come back.
        """
        q = self._check_query(q)
        allowed, use_allowed = self._check_search(k, probes, allowed)
        if k == 0 or not self.is_trained:
            return self._empty_result()
        return _search_flat(
            self.metric_code, q, k, probes, *self._search_arrays(), self._list_start,
            self._list_size, self._slot_ids, self._vectors, self._deleted, allowed, use_allowed,
            self._any_deleted,
        )

    def search_batch(
        self, xq: np.ndarray, k: int, probes: int = 1, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search every row of ``xq`` in parallel: ``int64[nq, k]`` ids (-1 pads) and proxies."""
        xq = self._check_queries(xq)
        allowed, use_allowed = self._check_search(k, probes, allowed)
        if k == 0 or not self.is_trained or xq.shape[0] == 0:
            return self._empty_batch(xq.shape[0], k)
        centroids, centroid_norms = self._search_arrays()
        products = kmeans_module.inner_products(xq, centroids)
        return _search_flat_batch(
            self.metric_code, xq, k, probes, products, centroid_norms, self._list_start,
            self._list_size, self._slot_ids, self._vectors, self._deleted, allowed, use_allowed,
            self._any_deleted,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Return the arrays that ``from_arrays`` needs, without the float32 rows."""
        if not self.is_trained:
            raise ProgrammingError("ivfflat index is not trained: nothing to store")
        return self._common_arrays()

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], xb: np.ndarray) -> IvfFlatIndex:
        """Rebuild an index from ``to_arrays()`` and the prepared rows ``xb`` in id order."""
        index = cls(int(arrays["dim"]), metric_name(arrays["metric"]), int(arrays["lists"]),
                    int(arrays["seed"]))
        index.centroids = np.ascontiguousarray(arrays["centroids"], dtype=np.float32)
        ids = np.asarray(arrays["list_ids"], dtype=np.int64)
        vectors = index._check_rows(np.asarray(xb)[ids], "rows")
        index._load_lists(arrays["list_offsets"], ids, [vectors], arrays["deleted"])
        return index

    def _encode(self, xb: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
        return [xb]

    def _new_payload(self, n_slots: int) -> list[np.ndarray]:
        return [np.zeros((n_slots, self.dim), dtype=np.float32)]

    def _payload_arrays(self) -> list[np.ndarray]:
        return [self._vectors]

    def _set_payload(self, payload: list[np.ndarray]) -> None:
        (self._vectors,) = payload


def warm_up() -> None:
    """Compile this module's kernels on tiny data, so that the first real call does not wait."""
    kmeans_module.warm_up()
    x = np.random.default_rng(0).random((64, 4), dtype=np.float32)
    for metric in ("l2", "ip", "cosine"):
        index = IvfFlatIndex(4, metric, lists=4)
        index.train(x)
        index.add(x)
        index.remove([0])
        index.search(x[0], 3, probes=1, allowed=np.ones(64, dtype=np.bool_))
        index.search(x[0], 3, probes=1)
        index.search_batch(x[:2], 3, probes=1)
        index.add(x)
