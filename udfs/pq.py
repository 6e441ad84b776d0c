"""IVF-PQ index: IVF lists of product-quantized residuals, re-ranked on the float32 rows.

Encoding. A row ``x`` in list ``l`` is stored as the residual ``r = x - c_l`` split into ``m``
sub-vectors of ``dim / m`` elements. Each sub-vector is replaced by the number of its nearest
codeword in that position's codebook of ``2^nbits`` codewords (k-means on training residuals), so
a row costs ``m`` bytes of codes. The decoded row is ``c_l + r^``.

Search. One lookup table per query, ``lut[j, s] = q_j . codebook[j, s]``, gives ``q.r^`` as a sum of
``m`` table reads, because the codebooks are shared by all lists. The scan reads a row's codes
eight at a time as uint64 words. Then, with ``q.c_l`` from ranking the lists:

* ip: ``-(q.c_l + q.r^)``; cosine: ``1 - (q.c_l + q.r^)``
* l2: ``|q|^2 - 2 q.c_l - 2 q.r^ + |c_l + r^|^2``, where ``|c_l + r^|^2`` is stored per row at
  encoding time (4 bytes), so l2 needs no table per list.

The ``rerank`` best candidates by these approximate proxies are re-scored with the exact proxy on
the float32 rows, which the index keeps a reference to (they are table data, not index memory).
"""

from __future__ import annotations

import logging
import sys

import numba as nb
import numpy as np

from udfs import kmeans as kmeans_module
from udfs.ivf import (
    InvertedListIndex,
    TrainingWarning,
    _grown,
    centroid_products,
    copy_rows,
    heap_push,
    heap_sorted,
    list_proxies,
    metric_name,
    nearest_lists,
    row_qualifies,
)
from udfs.kmeans import ARGMIN_LANES, add_weighted_rows, first_argmin
from udfs.metrics import IP, L2
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

# Entries per position in a query's lookup table: 2^nbits, padded to 256 for any nbits.
LUT_STRIDE = 256


# --- kernels ------------------------------------------------------------------------------------


# Rows per parallel task when encoding.
_ENCODE_CHUNK_ROWS = 256


@nb.njit(parallel=True, cache=True, fastmath=True)
def _encode_rows(xb, labels, centroids, codebooks_t, with_norms):
    """Return PQ codes of the residuals ``xb - centroids[labels]`` and, if asked, ``|c + r^|^2``.

    ``codebooks_t`` is float32[m, dsub, ksub]: the scores of all ``ksub`` codewords of a position
    are accumulated over contiguous codewords, which vectorizes (``add_weighted_rows``). Each
    prange iteration owns ``_ENCODE_CHUNK_ROWS`` rows and its own scratch.
    """
    n, d = xb.shape
    m, dsub, ksub = codebooks_t.shape
    codeword_norms = np.zeros((m, ksub), dtype=np.float32)
    for j in range(m):
        for t in range(dsub):
            for s in range(ksub):
                codeword_norms[j, s] += codebooks_t[j, t, s] * codebooks_t[j, t, s]
    codes = np.empty((n, m), dtype=np.uint8)
    norms = np.empty(n if with_norms else 0, dtype=np.float32)
    n_chunks = (n + _ENCODE_CHUNK_ROWS - 1) // _ENCODE_CHUNK_ROWS
    for chunk in nb.prange(n_chunks):
        weights = np.empty(d, dtype=np.float32)
        scores = np.empty(ksub, dtype=np.float32)
        lanes = np.empty(ARGMIN_LANES, dtype=np.float32)
        for i in range(chunk * _ENCODE_CHUNK_ROWS, min(n, (chunk + 1) * _ENCODE_CHUNK_ROWS)):
            label = labels[i]
            for t in range(d):
                weights[t] = np.float32(-2.0) * (xb[i, t] - centroids[label, t])
            norm = np.float32(0.0)
            for j in range(m):
                # |r - w|^2 without the |r|^2 term, which is the same for every codeword w.
                for s in range(ksub):
                    scores[s] = codeword_norms[j, s]
                add_weighted_rows(scores, 0, weights, j * dsub, codebooks_t, j, False)
                best, _ = first_argmin(scores, lanes)
                codes[i, j] = best
                if with_norms:
                    for t in range(dsub):
                        value = centroids[label, j * dsub + t] + codebooks_t[j, t, best]
                        norm += value * value
            if with_norms:
                norms[i] = norm
    return codes, norms


@nb.njit(cache=True, fastmath=True)
def _lookup_table(q, codebooks_t):
    """Return ``lut[j * 256 + s] = q_j . codebook[j, s]``; ``codebooks_t`` is float32[m, dsub, ksub].

    Each position gets 256 entries whatever ``nbits`` is, so the scan finds an entry at a constant
    offset from its position's start. The transposed codebooks make the inner loop run over
    contiguous codewords, which vectorizes.
    """
    m, dsub, ksub = codebooks_t.shape
    # Every entry a code can select is written below, so only the padding needs clearing.
    if ksub < LUT_STRIDE:
        lut = np.zeros(m * LUT_STRIDE, dtype=np.float32)
    else:
        lut = np.empty(m * LUT_STRIDE, dtype=np.float32)
    for j in range(m):
        add_weighted_rows(lut, j * LUT_STRIDE, q, j * dsub, codebooks_t, j, True)
    return lut


# The code-sum kernels below are compiled without fastmath on purpose, because fastmath lets LLVM
# turn the table reads into vector gathers, which were slower than scalar loads on the AMD EPYC
# machine measured. Four sums per row shorten the chain of dependent additions, and two rows at
# a time give the processor independent work to overlap.


@nb.njit(cache=True, inline="always")
def _tail_sum(lut, codes, slot, first):
    """Return the table sum over the code bytes ``first .. m`` of one row."""
    acc = np.float32(0.0)
    for j in range(first, codes.shape[1]):
        acc += lut[j * LUT_STRIDE + codes[slot, j]]
    return acc


@nb.njit(cache=True, inline="always")
def _code_sum(lut, words, codes, slot):
    """Return ``sum_j lut[j, code_j]`` for one row: eight codes per uint64 word, then the tail."""
    a0 = a1 = a2 = a3 = np.float32(0.0)
    for w in range(words.shape[1]):
        word = words[slot, w]
        base = w * 8 * LUT_STRIDE
        a0 += lut[base + (word & 0xFF)]
        a1 += lut[base + LUT_STRIDE + ((word >> 8) & 0xFF)]
        a2 += lut[base + 2 * LUT_STRIDE + ((word >> 16) & 0xFF)]
        a3 += lut[base + 3 * LUT_STRIDE + ((word >> 24) & 0xFF)]
        a0 += lut[base + 4 * LUT_STRIDE + ((word >> 32) & 0xFF)]
        a1 += lut[base + 5 * LUT_STRIDE + ((word >> 40) & 0xFF)]
        a2 += lut[base + 6 * LUT_STRIDE + ((word >> 48) & 0xFF)]
        a3 += lut[base + 7 * LUT_STRIDE + (word >> 56)]
    return (a0 + a1) + (a2 + a3) + _tail_sum(lut, codes, slot, 8 * words.shape[1])


@nb.njit(cache=True, inline="always")
def _code_sum_pair(lut, words, codes, slot):
    """Return ``_code_sum`` of rows ``slot`` and ``slot + 1``, interleaved."""
    a0 = a1 = a2 = a3 = np.float32(0.0)
    b0 = b1 = b2 = b3 = np.float32(0.0)
    for w in range(words.shape[1]):
        word_a = words[slot, w]
        word_b = words[slot + 1, w]
        base = w * 8 * LUT_STRIDE
        a0 += lut[base + (word_a & 0xFF)]
        b0 += lut[base + (word_b & 0xFF)]
        a1 += lut[base + LUT_STRIDE + ((word_a >> 8) & 0xFF)]
        b1 += lut[base + LUT_STRIDE + ((word_b >> 8) & 0xFF)]
        a2 += lut[base + 2 * LUT_STRIDE + ((word_a >> 16) & 0xFF)]
        b2 += lut[base + 2 * LUT_STRIDE + ((word_b >> 16) & 0xFF)]
        a3 += lut[base + 3 * LUT_STRIDE + ((word_a >> 24) & 0xFF)]
        b3 += lut[base + 3 * LUT_STRIDE + ((word_b >> 24) & 0xFF)]
        a0 += lut[base + 4 * LUT_STRIDE + ((word_a >> 32) & 0xFF)]
        b0 += lut[base + 4 * LUT_STRIDE + ((word_b >> 32) & 0xFF)]
        a1 += lut[base + 5 * LUT_STRIDE + ((word_a >> 40) & 0xFF)]
        b1 += lut[base + 5 * LUT_STRIDE + ((word_b >> 40) & 0xFF)]
        a2 += lut[base + 6 * LUT_STRIDE + ((word_a >> 48) & 0xFF)]
        b2 += lut[base + 6 * LUT_STRIDE + ((word_b >> 48) & 0xFF)]
        a3 += lut[base + 7 * LUT_STRIDE + (word_a >> 56)]
        b3 += lut[base + 7 * LUT_STRIDE + (word_b >> 56)]
    first = 8 * words.shape[1]
    sum_a = (a0 + a1) + (a2 + a3) + _tail_sum(lut, codes, slot, first)
    sum_b = (b0 + b1) + (b2 + b3) + _tail_sum(lut, codes, slot + 1, first)
    return sum_a, sum_b


@nb.njit(cache=True, inline="always")
def _pq_proxy(metric, list_part, q_dot_r, norms, slot):
    if metric == L2:
        return list_part - np.float32(2.0) * q_dot_r + norms[slot]
    return list_part - q_dot_r


@nb.njit(cache=True)
def _scan_pq(
    metric, q, k, probes, rerank, products, centroid_norms, codebooks_t, list_start, list_size,
    slot_ids, codes, words, norms, deleted, allowed, use_allowed, any_deleted, rows,
):
    """Return the ``k`` best (ids, proxies): exact proxies if ``rerank > 0``, else PQ proxies.

    ``products`` contains ``q.c`` for every centroid, and ``words`` is ``codes`` read as uint64
    words (no columns when ``m`` is not a multiple of 8). Lists are probed as in
    ``udfs.ivf._scan_flat``.
    """
    order = nearest_lists(list_proxies(metric, products, centroid_norms), probes)
    lut = _lookup_table(q, codebooks_t)
    q_norm = np.float32(0.0)
    for t in range(q.shape[0]):
        q_norm += q[t] * q[t]

    n_candidates = max(k, rerank)
    heap_proxies = np.empty(n_candidates, dtype=np.float32)
    heap_ids = np.empty(n_candidates, dtype=np.int64)
    size = 0
    check_rows = use_allowed or any_deleted
    for rank in range(products.shape[0]):
        if rank >= probes and size >= k:
            break
        if rank == order.shape[0]:
            # Too few rows qualified in the probed lists: rank all lists (rare).
            order = np.argsort(list_proxies(metric, products, centroid_norms), kind="mergesort")
        label = order[rank]
        # The part of the proxy shared by every row of the list; l2 adds 4 bytes per row.
        if metric == L2:
            list_part = q_norm - np.float32(2.0) * products[label]
        elif metric == IP:
            list_part = -products[label]
        else:
            list_part = np.float32(1.0) - products[label]
        slot = list_start[label]
        end = slot + list_size[label]
        if not check_rows:
            while slot + 1 < end:
                sum_a, sum_b = _code_sum_pair(lut, words, codes, slot)
                proxy = _pq_proxy(metric, list_part, sum_a, norms, slot)
                if size < n_candidates or proxy < heap_proxies[0]:
                    size = heap_push(heap_proxies, heap_ids, size, proxy, slot_ids[slot])
                proxy = _pq_proxy(metric, list_part, sum_b, norms, slot + 1)
                if size < n_candidates or proxy < heap_proxies[0]:
                    size = heap_push(heap_proxies, heap_ids, size, proxy, slot_ids[slot + 1])
                slot += 2
        while slot < end:
            if not check_rows or row_qualifies(slot_ids[slot], deleted, allowed, use_allowed):
                proxy = _pq_proxy(metric, list_part, _code_sum(lut, words, codes, slot), norms, slot)
                if size < n_candidates or proxy < heap_proxies[0]:
                    size = heap_push(heap_proxies, heap_ids, size, proxy, slot_ids[slot])
            slot += 1

    if rerank == 0:
        return heap_sorted(heap_proxies, heap_ids, size)
    return _rerank(metric, q, k, heap_ids[:size], rows)


@nb.njit(cache=True, fastmath=True)
def _rerank(metric, q, k, candidates, rows):
    """Return the ``k`` best of ``candidates`` by exact proxy on the float32 rows, best first.

    A kernel of its own because it needs fastmath, which vectorizes the dot products, and
    ``_scan_pq`` must be compiled without it. Rows are scored four at a time: the candidates are
    scattered over the table, and four rows read together wait for memory once, not four times.
    """
    d = q.shape[0]
    best_proxies = np.empty(k, dtype=np.float32)
    best_ids = np.empty(k, dtype=np.int64)
    proxies = np.empty(4, dtype=np.float32)
    n_best = 0
    n = candidates.shape[0]
    for i in range(0, n, 4):
        n_rows = min(4, n - i)
        r0 = candidates[i]
        r1 = candidates[i + 1] if n_rows > 1 else r0
        r2 = candidates[i + 2] if n_rows > 2 else r0
        r3 = candidates[i + 3] if n_rows > 3 else r0
        a0 = a1 = a2 = a3 = np.float32(0.0)
        if metric == L2:
            for j in range(d):
                e0 = rows[r0, j] - q[j]
                e1 = rows[r1, j] - q[j]
                e2 = rows[r2, j] - q[j]
                e3 = rows[r3, j] - q[j]
                a0 += e0 * e0
                a1 += e1 * e1
                a2 += e2 * e2
                a3 += e3 * e3
            proxies[0], proxies[1], proxies[2], proxies[3] = a0, a1, a2, a3
        else:
            for j in range(d):
                a0 += rows[r0, j] * q[j]
                a1 += rows[r1, j] * q[j]
                a2 += rows[r2, j] * q[j]
                a3 += rows[r3, j] * q[j]
            offset = np.float32(0.0) if metric == IP else np.float32(1.0)
            proxies[0], proxies[1] = offset - a0, offset - a1
            proxies[2], proxies[3] = offset - a2, offset - a3
        for r in range(n_rows):
            n_best = heap_push(best_proxies, best_ids, n_best, proxies[r], candidates[i + r])
    return heap_sorted(best_proxies, best_ids, n_best)


@nb.njit(cache=True)
def _search_pq(
    metric, q, k, probes, rerank, centroids, centroid_norms, codebooks_t, list_start, list_size,
    slot_ids, codes, words, norms, deleted, allowed, use_allowed, any_deleted, rows,
):
    """Search one query: its ``q.c`` products, then ``_scan_pq``."""
    return _scan_pq(
        metric, q, k, probes, rerank, centroid_products(q, centroids), centroid_norms,
        codebooks_t, list_start, list_size, slot_ids, codes, words, norms, deleted, allowed,
        use_allowed, any_deleted, rows,
    )


@nb.njit(cache=True, parallel=True)
def _search_pq_batch(
    metric, xq, k, probes, rerank, products, centroid_norms, codebooks_t, list_start, list_size,
    slot_ids, codes, words, norms, deleted, allowed, use_allowed, any_deleted, rows,
):
    """Search every row of ``xq``, given ``products = xq @ centroids.T``.

    Each prange iteration owns its output row and its heaps.
    """
    nq = xq.shape[0]
    out_ids = np.full((nq, k), -1, dtype=np.int64)
    out_proxies = np.full((nq, k), np.inf, dtype=np.float32)
    for i in nb.prange(nq):
        ids, proxies = _scan_pq(
            metric, xq[i], k, probes, rerank, products[i], centroid_norms, codebooks_t,
            list_start, list_size, slot_ids, codes, words, norms, deleted, allowed,
            use_allowed, any_deleted, rows,
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
            self.metric_code, q, k, probes, rerank, *self._search_arrays(),
            *self._kernel_arrays(), self._deleted, allowed, use_allowed, self._any_deleted,
            self._rows,
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
        centroids, centroid_norms = self._search_arrays()
        products = kmeans_module.inner_products(xq, centroids)
        return _search_pq_batch(
            self.metric_code, xq, k, probes, rerank, products, centroid_norms,
            *self._kernel_arrays(), self._deleted, allowed, use_allowed, self._any_deleted,
            self._rows,
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
        self._codebooks_t = None

    def _encode(self, xb: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
        codes, norms = _encode_rows(
            xb, labels, self.centroids, self._transposed_codebooks(), self.metric_code == L2
        )
        return [codes, norms] if self.metric_code == L2 else [codes]

    def _keep_rows(self, xb: np.ndarray) -> None:
        self._rows = _grown(self._rows, self._n_ids + xb.shape[0])
        copy_rows(self._rows, self._n_ids, xb)

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

    def _transposed_codebooks(self) -> np.ndarray:
        """Return the codebooks as float32[m, dsub, ksub], computed once per trained codebook."""
        if self._codebooks_t is None:
            self._codebooks_t = np.ascontiguousarray(self.codebooks.transpose(0, 2, 1))
        return self._codebooks_t

    def _kernel_arrays(self) -> tuple[np.ndarray, ...]:
        return (
            self._transposed_codebooks(), self._list_start, self._list_size, self._slot_ids,
            self._codes, _code_words(self._codes), self._norms,
        )


def _code_words(codes: np.ndarray) -> np.ndarray:
    """Return ``codes`` read as uint64 words of 8 codes (a view), or no columns if that fails.

    Byte ``j`` of a word is code ``j`` only on little-endian machines. On other machines, and when
    ``m`` is not a multiple of 8, the scan reads every code on its own.
    """
    if sys.byteorder == "little" and codes.shape[1] % 8 == 0 and codes.flags.c_contiguous:
        return codes.view(np.uint64)
    return np.empty((codes.shape[0], 0), dtype=np.uint64)


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
