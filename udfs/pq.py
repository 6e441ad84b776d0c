"""IVF-PQ index: IVF lists of product-quantized residuals, re-ranked on the float32 rows.

Encoding. A row ``x`` in list ``l`` is stored as the residual ``r = x - c_l`` split into ``m``
sub-vectors of ``dim / m`` elements. Each sub-vector is replaced by the number of its nearest
codeword in that position's codebook of ``2^nbits`` codewords (k-means on training residuals), so
a row costs ``m`` bytes of codes. The decoded row is ``c_l + r^``.

Search. One lookup table per query, ``lut[j, s] = q_j . codebook[j, s]``, gives ``q.r^`` as a sum of
``m`` table reads, because the codebooks are shared by all lists. Then, with ``q.c_l`` from ranking
the lists:

* ip: ``-(q.c_l + q.r^)``; cosine: ``1 - (q.c_l + q.r^)``
* l2: ``|q|^2 - 2 q.c_l - 2 q.r^ + |c_l + r^|^2``, where ``|c_l + r^|^2`` is stored per row at
  encoding time (4 bytes), so l2 needs no table per list.

The ``rerank`` best candidates by these approximate proxies are re-scored with the exact proxy on
the float32 rows, which the index keeps a reference to (they are table data, not index memory).
"""

from __future__ import annotations

import logging

import numba as nb
import numpy as np

from udfs import kmeans as kmeans_module
from udfs.ivf import (
    InvertedListIndex,
    TrainingWarning,
    _grown,
    heap_push,
    heap_sorted,
    metric_name,
    rank_lists,
    row_qualifies,
)
from udfs.metrics import IP, L2, proxy_distance
from vsql.errors import DataError, ProgrammingError

logger = logging.getLogger("vsql.pq")

CODEBOOK_ITERATIONS = 10

# Codebooks train on a random sample of at most this many residuals per codeword: 16,384 for
# nbits=8. Training time grows linearly with it and the loss in PQ recall is made up by rerank.
CODEBOOK_ROWS_PER_CODEWORD = 64

# Measured by benchmarks/bench_ivf.py on 100,000 all-MiniLM-L6-v2 rows (lists=316, m=48,
# nbits=8): recall@10 at probes=64 is 0.634 without re-ranking, 0.940 with rerank=100 and 0.957
# with rerank=200, against 0.964 for IVF-Flat; at probes=32, 0.921 against 0.924 for IVF-Flat.
DEFAULT_RERANK = 200


# --- kernels ------------------------------------------------------------------------------------


@nb.njit(parallel=True, cache=True, fastmath=True)
def _encode_rows(xb, labels, centroids, codebooks, with_norms):
    """Return PQ codes of the residuals ``xb - centroids[labels]`` and, if asked, ``|c + r^|^2``."""
    n, d = xb.shape
    m, ksub, dsub = codebooks.shape
    codeword_norms = np.empty((m, ksub), dtype=np.float32)
    for j in range(m):
        for s in range(ksub):
            acc = np.float32(0.0)
            for t in range(dsub):
                acc += codebooks[j, s, t] * codebooks[j, s, t]
            codeword_norms[j, s] = acc
    codes = np.empty((n, m), dtype=np.uint8)
    norms = np.empty(n if with_norms else 0, dtype=np.float32)
    for i in nb.prange(n):
        centroid = centroids[labels[i]]
        residual = np.empty(d, dtype=np.float32)
        for t in range(d):
            residual[t] = xb[i, t] - centroid[t]
        norm = np.float32(0.0)
        for j in range(m):
            sub = residual[j * dsub : (j + 1) * dsub]
            best = 0
            best_proxy = np.float32(np.inf)
            for s in range(ksub):
                dot = np.float32(0.0)
                for t in range(dsub):
                    dot += sub[t] * codebooks[j, s, t]
                # |r - w|^2 without the |r|^2 term, which is the same for every codeword w.
                proxy = codeword_norms[j, s] - np.float32(2.0) * dot
                if proxy < best_proxy:
                    best_proxy = proxy
                    best = s
            codes[i, j] = best
            if with_norms:
                for t in range(dsub):
                    value = centroid[j * dsub + t] + codebooks[j, best, t]
                    norm += value * value
        if with_norms:
            norms[i] = norm
    return codes, norms


@nb.njit(cache=True, fastmath=True)
def _lookup_table(q, codebooks_t):
    """Return ``lut[j, s] = q_j . codebook[j, s]``; ``codebooks_t`` is float32[m, dsub, ksub].

    The transposed codebooks make the inner loop run over contiguous codewords, which vectorizes.
    """
    m, dsub, ksub = codebooks_t.shape
    lut = np.zeros((m, ksub), dtype=np.float32)
    for j in range(m):
        for t in range(dsub):
            weight = q[j * dsub + t]
            for s in range(ksub):
                lut[j, s] += weight * codebooks_t[j, t, s]
    return lut


@nb.njit(cache=True, fastmath=True)
def _search_pq(
    metric, q, k, probes, rerank, centroids, codebooks_t, list_start, list_size, slot_ids,
    codes, norms, deleted, allowed, use_allowed, rows,
):
    """Return the ``k`` best (ids, proxies): exact proxies if ``rerank > 0``, else PQ proxies."""
    order, q_dot_c = rank_lists(metric, q, centroids)
    lut = _lookup_table(q, codebooks_t)
    m = codebooks_t.shape[0]
    q_norm = np.float32(0.0)
    for t in range(q.shape[0]):
        q_norm += q[t] * q[t]

    n_candidates = max(k, rerank)
    heap_proxies = np.empty(n_candidates, dtype=np.float32)
    heap_ids = np.empty(n_candidates, dtype=np.int64)
    size = 0
    for rank in range(order.shape[0]):
        if rank >= probes and size >= k:
            break
        label = order[rank]
        for slot in range(list_start[label], list_start[label] + list_size[label]):
            row_id = slot_ids[slot]
            if not row_qualifies(row_id, deleted, allowed, use_allowed):
                continue
            q_dot_r = np.float32(0.0)
            for j in range(m):
                q_dot_r += lut[j, codes[slot, j]]
            if metric == L2:
                proxy = q_norm - np.float32(2.0) * (q_dot_c[label] + q_dot_r) + norms[slot]
            elif metric == IP:
                proxy = -(q_dot_c[label] + q_dot_r)
            else:
                proxy = np.float32(1.0) - (q_dot_c[label] + q_dot_r)
            size = heap_push(heap_proxies, heap_ids, size, proxy, row_id)

    if rerank == 0:
        return heap_sorted(heap_proxies, heap_ids, size)
    best_proxies = np.empty(k, dtype=np.float32)
    best_ids = np.empty(k, dtype=np.int64)
    n_best = 0
    for i in range(size):
        exact = proxy_distance(metric, rows[heap_ids[i]], q)
        n_best = heap_push(best_proxies, best_ids, n_best, exact, heap_ids[i])
    return heap_sorted(best_proxies, best_ids, n_best)


@nb.njit(cache=True, parallel=True)
def _search_pq_batch(
    metric, xq, k, probes, rerank, centroids, codebooks_t, list_start, list_size, slot_ids,
    codes, norms, deleted, allowed, use_allowed, rows,
):
    """Search every row of ``xq``; each prange iteration owns its output row and its heaps."""
    nq = xq.shape[0]
    out_ids = np.full((nq, k), -1, dtype=np.int64)
    out_proxies = np.full((nq, k), np.inf, dtype=np.float32)
    for i in nb.prange(nq):
        ids, proxies = _search_pq(
            metric, xq[i], k, probes, rerank, centroids, codebooks_t, list_start, list_size,
            slot_ids, codes, norms, deleted, allowed, use_allowed, rows,
        )
        out_ids[i, : ids.shape[0]] = ids
        out_proxies[i, : ids.shape[0]] = proxies
    return out_ids, out_proxies


# --- index class --------------------------------------------------------------------------------


class IvfPqIndex(InvertedListIndex):
    """IVF-PQ: residual product quantization in IVF lists, with exact re-ranking.

    Memory per row: ``m`` bytes of codes, 8 bytes of id and 1 byte of removal flag, plus 4 bytes
    of ``|c + r^|^2`` under l2 (57 bytes for m=48 under ip and cosine, against 1,536 for
    float32[384]), plus free list capacity after incremental adds (at most about 1/8). Fixed
    costs: ``lists * dim`` float32 centroids and ``2^nbits * dim`` float32 codewords.

    ``search(..., rerank=n)`` re-scores the best ``max(k, n)`` PQ candidates exactly;
    ``rerank=0`` returns PQ proxies.
    """

    kind = "ivfpq"

    def __init__(
        self, dim: int, metric: str, lists: int = 100, m: int = 48, nbits: int = 8, seed: int = 0
    ):
        super().__init__(dim, metric, lists, seed)
        if m < 1 or dim % m != 0:
            raise DataError(f"m must divide the {dim} dimensions, not {m}: use a divisor of {dim}")
        if not 1 <= nbits <= 8:
            raise ProgrammingError(f"nbits must be between 1 and 8, not {nbits}")
        self.m = int(m)
        self.nbits = int(nbits)
        self.codebooks: np.ndarray | None = None
        self._codebooks_t: np.ndarray | None = None
        self._codes = np.empty((0, self.m), dtype=np.uint8)
        self._norms = np.empty(0, dtype=np.float32)
        self._rows = np.empty((0, self.dim), dtype=np.float32)

    @property
    def is_trained(self) -> bool:
        return self.centroids is not None and self.codebooks is not None

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Return the float32 rows of ``ids``, which IVF-PQ keeps by id for re-ranking."""
        return self._rows[np.asarray(ids, dtype=np.int64)]

    @property
    def xb(self) -> np.ndarray:
        """The float32 rows in id order, as a view (no copy)."""
        return self._rows[: self._n_ids]

    def search(
        self,
        q: np.ndarray,
        k: int,
        *,
        probes: int = 1,
        rerank: int = DEFAULT_RERANK,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ids and proxies of the ``k`` best rows found, best first.

        Lists are probed as in ``IvfFlatIndex.search``; the proxies are exact when ``rerank > 0``.
        """
        q = self._check_query(q)
        allowed, use_allowed = self._check_search(k, probes, allowed)
        rerank = self._check_rerank(rerank)
        if k == 0 or not self.is_trained:
            return self._empty_result()
        return _search_pq(
            self.metric_code, q, k, probes, rerank, *self._kernel_arrays(), self._deleted,
            allowed, use_allowed, self._rows,
        )

    def search_batch(
        self,
        xq: np.ndarray,
        k: int,
        probes: int = 1,
        rerank: int = DEFAULT_RERANK,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search every row of ``xq`` in parallel: ``int64[nq, k]`` ids (-1 pads) and proxies."""
        xq = self._check_queries(xq)
        allowed, use_allowed = self._check_search(k, probes, allowed)
        rerank = self._check_rerank(rerank)
        if k == 0 or not self.is_trained or xq.shape[0] == 0:
            return self._empty_batch(xq.shape[0], k)
        return _search_pq_batch(
            self.metric_code, xq, k, probes, rerank, *self._kernel_arrays(), self._deleted,
            allowed, use_allowed, self._rows,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Return the arrays that ``from_arrays`` needs, without the float32 rows."""
        if not self.is_trained:
            raise ProgrammingError("ivfpq index is not trained: nothing to store")
        arrays = self._common_arrays()
        _, _, payload = self._compact_lists()
        arrays["m"] = np.array(self.m, dtype=np.int64)
        arrays["nbits"] = np.array(self.nbits, dtype=np.int64)
        arrays["codebooks"] = self.codebooks
        arrays["list_codes"] = payload[0]
        if self.metric_code == L2:
            arrays["list_norms"] = payload[1]
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], xb: np.ndarray) -> IvfPqIndex:
        """Rebuild an index from ``to_arrays()`` and the prepared rows ``xb`` in id order.

        The index keeps a reference to ``xb`` (converted to contiguous float32 if needed) for
        re-ranking.
        """
        index = cls(
            int(arrays["dim"]), metric_name(arrays["metric"]), int(arrays["lists"]),
            int(arrays["m"]), int(arrays["nbits"]), int(arrays["seed"]),
        )
        index.centroids = np.ascontiguousarray(arrays["centroids"], dtype=np.float32)
        index.codebooks = np.ascontiguousarray(arrays["codebooks"], dtype=np.float32)
        payload = [np.ascontiguousarray(arrays["list_codes"], dtype=np.uint8)]
        if index.metric_code == L2:
            payload.append(np.ascontiguousarray(arrays["list_norms"], dtype=np.float32))
        index._load_lists(arrays["list_offsets"], arrays["list_ids"], payload, arrays["deleted"])
        rows = np.ascontiguousarray(xb, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != index.dim or rows.shape[0] < index._n_ids:
            raise DataError(
                f"expected {index._n_ids} rows of {index.dim} dimensions, not shape {rows.shape}"
            )
        index._rows = rows
        return index

    # -- hooks of InvertedListIndex

    def _train_payload(self, xt: np.ndarray) -> None:
        ksub = 1 << self.nbits
        if xt.shape[0] < ksub and not self.warnings:
            self.warnings.append(
                TrainingWarning(
                    "ivfpq index created with little data",
                    f"Codebooks of {ksub} codewords trained on {xt.shape[0]} rows"
                    " will cause low recall.",
                )
            )
        rng = np.random.default_rng(self.seed)
        sample_size = CODEBOOK_ROWS_PER_CODEWORD * ksub
        if xt.shape[0] > sample_size:
            rows = np.sort(rng.choice(xt.shape[0], sample_size, replace=False))
            xt = np.ascontiguousarray(xt[rows])
        labels, _ = kmeans_module.assign(xt, self.centroids, self.metric != "l2")
        residuals = xt - self.centroids[labels]
        dsub = self.dim // self.m
        codebooks = np.empty((self.m, ksub, dsub), dtype=np.float32)
        for j in range(self.m):
            sub = np.ascontiguousarray(residuals[:, j * dsub : (j + 1) * dsub])
            codebooks[j] = kmeans_module.train_centroids(
                sub, ksub, spherical=False, n_iter=CODEBOOK_ITERATIONS, seed=self.seed + 1 + j
            )
        self.codebooks = codebooks

    def _encode(self, xb: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
        codes, norms = _encode_rows(
            xb, labels, self.centroids, self.codebooks, self.metric_code == L2
        )
        return [codes, norms] if self.metric_code == L2 else [codes]

    def _keep_rows(self, xb: np.ndarray) -> None:
        self._rows = _grown(self._rows, self._n_ids + xb.shape[0])
        self._rows[self._n_ids : self._n_ids + xb.shape[0]] = xb

    def _new_payload(self, n_slots: int) -> list[np.ndarray]:
        codes = np.zeros((n_slots, self.m), dtype=np.uint8)
        if self.metric_code == L2:
            return [codes, np.zeros(n_slots, dtype=np.float32)]
        return [codes]

    def _payload_arrays(self) -> list[np.ndarray]:
        return [self._codes, self._norms] if self.metric_code == L2 else [self._codes]

    def _set_payload(self, payload: list[np.ndarray]) -> None:
        self._codes = payload[0]
        self._norms = payload[1] if self.metric_code == L2 else np.empty(0, dtype=np.float32)

    def _model_arrays(self) -> list[np.ndarray]:
        arrays = super()._model_arrays()
        return arrays if self.codebooks is None else arrays + [self.codebooks]

    # -- helpers

    def _check_rerank(self, rerank: int) -> int:
        if rerank < 0:
            raise ProgrammingError(f"rerank must be at least 0, not {rerank}")
        return int(rerank)

    def _kernel_arrays(self) -> tuple[np.ndarray, ...]:
        if self._codebooks_t is None or self._codebooks_t.shape[0] != self.m:
            self._codebooks_t = np.ascontiguousarray(self.codebooks.transpose(0, 2, 1))
        return (
            self.centroids, self._codebooks_t, self._list_start, self._list_size, self._slot_ids,
            self._codes, self._norms,
        )


def warm_up() -> None:
    """Compile this module's kernels on tiny data, so that the first real call does not wait."""
    x = np.random.default_rng(0).random((64, 4), dtype=np.float32)
    for metric in ("l2", "ip", "cosine"):
        index = IvfPqIndex(4, metric, lists=2, m=2, nbits=2)
        index.train(x)
        index.add(x)
        index.remove([0])
        for rerank in (0, 5):
            index.search(x[0], 3, probes=1, rerank=rerank, allowed=np.ones(64, dtype=np.bool_))
            index.search(x[0], 3, probes=1, rerank=rerank)
            index.search_batch(x[:2], 3, probes=1, rerank=rerank)
