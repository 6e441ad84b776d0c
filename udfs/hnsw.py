"""The ``HnswIndex`` class: storage, growth, persistence and the Python side of HNSW searches.

Storage is flat and contiguous so the numba kernels (``udfs.hnsw_build``, ``udfs.hnsw_search``)
take plain arrays:

- ``xb float32[capacity, dim]``: the prepared rows, in id order;
- ``links0 int32[capacity, 2m]`` and ``degree0``: level-0 neighbour lists;
- ``links_up int32[rows, m]`` and ``degree_up``: upper-level lists, ``levels[u]`` rows per node
  starting at ``upper_offset[u]``;
- ``levels int8``: the top level of each node, -1 for exact copies, which stay out of the graph
  (see ``udfs.duplicates``); ``duplicate_of`` and ``next_duplicate`` link copies to their row;
- ``deleted bool``: tombstones, walked through but never returned.

All arrays grow by doubling their capacity. An index is not safe for an ``add`` or ``remove``
running at the same time as a search; concurrent searches are safe.

Example::

    index = HnswIndex(384, "cosine")
    ids = index.add(prepare_rows("cosine", xb)[0])
    ids, proxies = index.search(q, 10, ef_search=40)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from udfs.duplicates import DuplicateTable
from udfs.hnsw_build import MAX_WAVE, WAVE_DIVISOR, insert_wave, run_shares
from udfs.hnsw_search import search_query, search_share
from udfs.metrics import METRIC_CODES, brute_force
from udfs.visited import new_visited
from vsql.errors import DataError, ProgrammingError

logger = logging.getLogger("vsql.hnsw")

FORMAT_VERSION = 1
MAX_LEVEL = 30

# With an ``allowed`` mask, up to this many qualifying rows are scanned exactly instead of walking
# the graph: a beam of 40 already computes about this many distances, and the scan is exact.
EXACT_SCAN_ROWS = 2048
# Below this fraction of qualifying rows, the walk expands through filtered-out neighbours to
# their neighbours (two-hop) instead of computing distances to them.
# NOTE: both thresholds are estimates; tests check recall on either side of them on synthetic
# data, but they were not tuned on real embeddings.
TWO_HOP_BELOW = 0.3

_PARAM_NAMES = (
    "format_version",
    "dim",
    "metric",
    "m",
    "ef_construction",
    "seed",
    "n_ids",
    "entry",
    "max_level",
    "n_upper_rows",
)


class HnswIndex:
    """Hierarchical navigable small world graph over float32 rows, searched by numba kernels."""

    def __init__(
        self, dim: int, metric: str, m: int = 16, ef_construction: int = 64, seed: int = 0
    ):
        if metric not in METRIC_CODES:
            raise ProgrammingError(f'unknown metric "{metric}": expected l2, ip, cosine or l1')
        if not 1 <= dim <= 65535:
            raise ProgrammingError(f"dimensions must be between 1 and 65535, not {dim}")
        if not 2 <= m <= 100:
            raise ProgrammingError(
                f'value {m} out of bounds for option "m": valid range is 2 to 100'
            )
        if not 4 <= ef_construction <= 1000:
            raise ProgrammingError(
                f'value {ef_construction} out of bounds for option "ef_construction": '
                "valid range is 4 to 1000"
            )
        if ef_construction < 2 * m:
            raise ProgrammingError("ef_construction must be greater than or equal to 2 * m")
        self.dim = int(dim)
        self.metric = metric
        self.metric_code = METRIC_CODES[metric]
        self.m = int(m)
        self.ef_construction = int(ef_construction)
        self.seed = int(seed)

        self._n = 0
        self._n_deleted = 0
        self._entry = -1
        self._max_level = -1
        self._n_upper = 0
        self._allocate(0, 0)
        self._duplicates = DuplicateTable()
        self._tags, self._epochs = new_visited(1, 0)
        self._search_lock = threading.Lock()
        self._search_tags, self._search_epochs = new_visited(1, 0)

    # ----------------------------------------------------------------- size

    def __len__(self) -> int:
        return self._n

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Return the prepared float32 rows of ``ids``."""
        return self._xb[np.asarray(ids, dtype=np.int64)]

    @property
    def xb(self) -> np.ndarray:
        """The prepared float32 rows in id order, as a view (no copy)."""
        return self._xb[: self._n]

    @property
    def n_live(self) -> int:
        """Number of ids that are not deleted."""
        return self._n - self._n_deleted

    @staticmethod
    def estimate_memory(n: int, dim: int, m: int = 16) -> int:
        """Estimate the bytes an index of ``n`` rows uses, rows included.

        Upper levels hold about ``n / (m - 1)`` lists, the expected count for level
        probabilities ``m ** -level``; the visited sets of build threads are not counted.
        """
        per_row = 4 * dim + 4 * 2 * m + 4 + 8 + 1 + 1 + 4 + 4 + 16
        upper = n / max(m - 1, 1) * (4 * m + 4)
        return int(n * per_row + upper)

    def memory_bytes(self) -> int:
        """Return the bytes held by the index's arrays, capacity included."""
        arrays = (
            self._xb,
            self._links0,
            self._degree0,
            self._levels,
            self._upper_offset,
            self._links_up,
            self._degree_up,
            self._deleted,
            self._duplicate_of,
            self._next_duplicate,
            self._tags,
            self._search_tags,
        )
        return int(sum(a.nbytes for a in arrays)) + self._duplicates.memory_bytes()

    def _allocate(self, capacity: int, upper_capacity: int) -> None:
        self._xb = np.zeros((capacity, self.dim), dtype=np.float32)
        self._links0 = np.zeros((capacity, 2 * self.m), dtype=np.int32)
        self._degree0 = np.zeros(capacity, dtype=np.int32)
        self._levels = np.full(capacity, -1, dtype=np.int8)
        self._upper_offset = np.full(capacity, -1, dtype=np.int64)
        self._deleted = np.zeros(capacity, dtype=np.bool_)
        self._duplicate_of = np.full(capacity, -1, dtype=np.int32)
        self._next_duplicate = np.full(capacity, -1, dtype=np.int32)
        self._links_up = np.zeros((upper_capacity, self.m), dtype=np.int32)
        self._degree_up = np.zeros(upper_capacity, dtype=np.int32)

    def _reserve(self, n: int, n_upper: int) -> None:
        """Grow the arrays, doubling their capacity, so they hold ``n`` ids and ``n_upper`` rows."""
        capacity = self._xb.shape[0]
        if n > capacity:
            new_capacity = max(n, 2 * capacity)
            self._xb = _grow(self._xb, new_capacity, 0)
            self._links0 = _grow(self._links0, new_capacity, 0)
            self._degree0 = _grow(self._degree0, new_capacity, 0)
            self._levels = _grow(self._levels, new_capacity, -1)
            self._upper_offset = _grow(self._upper_offset, new_capacity, -1)
            self._deleted = _grow(self._deleted, new_capacity, False)
            self._duplicate_of = _grow(self._duplicate_of, new_capacity, -1)
            self._next_duplicate = _grow(self._next_duplicate, new_capacity, -1)
        upper_capacity = self._links_up.shape[0]
        if n_upper > upper_capacity:
            new_upper = max(n_upper, 2 * upper_capacity)
            self._links_up = _grow(self._links_up, new_upper, 0)
            self._degree_up = _grow(self._degree_up, new_upper, 0)

    def _visited_for_threads(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the visited sets for parallel kernels, one row per worker thread.

        The worker count follows ``numba.get_num_threads()``, the setting numba's own parallel
        kernels use, so one call sets the threads of every kernel.
        """
        n_threads = nb.get_num_threads()
        capacity = self._xb.shape[0]
        if self._tags.shape != (n_threads, capacity):
            self._tags, self._epochs = new_visited(n_threads, capacity)
        return self._tags, self._epochs

    # ----------------------------------------------------------------- changes

    def add(self, xb: np.ndarray, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Insert rows prepared by ``udfs.metrics.prepare_rows``; return their ids (int64).

        ``progress(done, total)`` is called from this thread between build waves.
        """
        rows = self._check_rows(xb)
        first = self._n
        n_new = rows.shape[0]
        ids = np.arange(first, first + n_new, dtype=np.int64)
        if n_new == 0:
            return ids

        duplicate_of = self._duplicates.find(self._xb[:first], first, rows)
        levels = self._draw_levels(first, n_new)
        levels[duplicate_of >= 0] = -1
        upper_counts = np.maximum(levels, 0).astype(np.int64)
        upper_offset = self._n_upper + np.cumsum(upper_counts) - upper_counts
        upper_offset[upper_counts == 0] = -1

        self._reserve(first + n_new, self._n_upper + int(upper_counts.sum()))
        self._xb[first : first + n_new] = rows
        self._levels[first : first + n_new] = levels
        self._upper_offset[first : first + n_new] = upper_offset
        self._degree0[first : first + n_new] = 0
        self._degree_up[self._n_upper : self._n_upper + int(upper_counts.sum())] = 0
        self._n_upper += int(upper_counts.sum())
        self._n = first + n_new
        for i in np.flatnonzero(duplicate_of >= 0):
            self._link_duplicate(first + int(i), int(duplicate_of[i]))

        graph_nodes = (first + np.flatnonzero(duplicate_of < 0)).astype(np.int32)
        self._insert_nodes(graph_nodes, progress)
        logger.debug(
            "added %d rows (%d exact copies) to an HNSW index of %d ids",
            n_new,
            int((duplicate_of >= 0).sum()),
            self._n,
        )
        return ids

    def _check_rows(self, xb: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(xb, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            got = rows.shape[-1] if rows.ndim else 0
            raise DataError(f"expected {self.dim} dimensions, not {got}")
        return rows

    def _draw_levels(self, first: int, n_new: int) -> np.ndarray:
        """Draw levels with P(level >= l) = m ** -l, from a stream fixed by seed and first id."""
        rng = np.random.default_rng((self.seed, first))
        uniform = 1.0 - rng.random(n_new)  # in (0, 1], so the log is finite
        levels = np.floor(-np.log(uniform) / np.log(self.m))
        return np.minimum(levels, MAX_LEVEL).astype(np.int8)

    def _link_duplicate(self, node: int, canonical: int) -> None:
        self._duplicate_of[node] = canonical
        self._next_duplicate[node] = self._next_duplicate[canonical]
        self._next_duplicate[canonical] = node

    def _insert_nodes(self, nodes: np.ndarray, progress: Callable[[int, int], None] | None) -> None:
        """Insert graph nodes (ascending ids) in waves; see ``udfs.hnsw_build`` for the scheme."""
        total = nodes.shape[0]
        done = 0
        if self._entry < 0 and total:
            self._entry = int(nodes[0])
            self._max_level = int(self._levels[nodes[0]])
            done = 1
        tags, epochs = self._visited_for_threads()
        graph_size = int(np.count_nonzero(self._levels[: nodes[0] if total else 0] >= 0)) + done
        last_report = time.monotonic()
        while done < total:
            wave_size = min(MAX_WAVE, max(1, graph_size // WAVE_DIVISOR), total - done)
            wave = nodes[done : done + wave_size]
            self._entry, self._max_level = insert_wave(
                _worker_pool(tags.shape[0]),
                wave,
                self._xb,
                self.metric_code,
                self.m,
                self.ef_construction,
                self._entry,
                self._max_level,
                self._levels,
                self._links0,
                self._degree0,
                self._links_up,
                self._degree_up,
                self._upper_offset,
                tags,
                epochs,
            )
            done += wave_size
            graph_size += wave_size
            if progress is not None and (time.monotonic() - last_report > 0.2 or done == total):
                progress(done, total)
                last_report = time.monotonic()
        if progress is not None and total <= 1:
            progress(total, total)

    def remove(self, ids: np.ndarray) -> None:
        """Mark ``ids`` deleted; they stay in the graph as waypoints but are never returned."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if ids.shape[0] and (ids.min() < 0 or ids.max() >= self._n):
            bad = int(ids.min() if ids.min() < 0 else ids.max())
            raise ProgrammingError(f"id {bad} is out of range for an index of {self._n} ids")
        newly = np.unique(ids[~self._deleted[ids]])
        self._deleted[newly] = True
        self._n_deleted += int(newly.shape[0])

    # ----------------------------------------------------------------- search

    def search(
        self, q: np.ndarray, k: int, ef_search: int = 40, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the ids (int64) and proxies (float32) of the ``k`` nearest qualifying rows.

        A row qualifies when it is not deleted and, with ``allowed`` (bool, one per id), allowed.
        Returns ``min(k, qualifying rows)`` results, best first.
        """
        q = self._check_rows(np.asarray(q).reshape(1, -1))[0]
        ids, proxies = self._search_rows(q.reshape(1, -1), k, ef_search, allowed, parallel=False)
        return ids[0], proxies[0]

    def search_batch(
        self, xq: np.ndarray, k: int, ef_search: int = 40, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search each row of ``xq`` in parallel; return ids and proxies of shape ``[nq, m]``.

        Ids are int64 and proxies float32; ``m = min(k, qualifying rows)``, as for ``search``.
        """
        return self._search_rows(self._check_rows(xq), k, ef_search, allowed, parallel=True)

    def _search_rows(self, xq, k, ef_search, allowed, parallel):
        if k < 0:
            raise ProgrammingError(f"k must be non-negative, not {k}")
        if ef_search < 1:
            raise ProgrammingError(f"ef_search must be at least 1, not {ef_search}")
        qualifying = self._qualifying_mask(allowed)
        n_qualifying = self.n_live if qualifying is None else int(np.count_nonzero(qualifying))
        k = min(int(k), n_qualifying)
        nq = xq.shape[0]
        if k == 0:
            return np.empty((nq, 0), dtype=np.int64), np.empty((nq, 0), dtype=np.float32)
        ef = max(int(ef_search), k)
        if allowed is not None and n_qualifying <= max(EXACT_SCAN_ROWS, ef):
            return self._scan_exact(xq, k, qualifying)

        use_allowed = allowed is not None
        allowed_array = np.ascontiguousarray(allowed) if use_allowed else np.ones(1, dtype=np.bool_)
        n_graph = self._n - int(np.count_nonzero(self._duplicate_of[: self._n] >= 0))
        two_hop = use_allowed and n_qualifying < TWO_HOP_BELOW * n_graph
        graph = (
            self._entry,
            self._max_level,
            self._links0,
            self._degree0,
            self._links_up,
            self._degree_up,
            self._upper_offset,
            self._next_duplicate,
            self._duplicate_of,
            self._deleted,
            allowed_array,
            use_allowed,
            self._n,
        )
        if parallel:
            return self._search_parallel(xq, k, ef, two_hop, graph)
        return self._search_one(xq[0], k, ef, two_hop, graph)

    def _search_parallel(self, xq, k, ef, two_hop, graph):
        tags, epochs = self._visited_for_threads()
        n_workers = tags.shape[0]
        ids = np.empty((xq.shape[0], k), dtype=np.int64)
        proxies = np.empty((xq.shape[0], k), dtype=np.float32)
        run_shares(
            _worker_pool(n_workers),
            n_workers,
            lambda worker: search_share(
                self._xb,
                self.metric_code,
                xq,
                worker,
                n_workers,
                ids,
                proxies,
                k,
                ef,
                two_hop,
                *graph,
                tags,
                epochs,
            ),
        )
        return ids, proxies

    def _search_one(self, q, k, ef, two_hop, graph):
        capacity = self._xb.shape[0]
        locked = self._search_lock.acquire(blocking=False)
        try:
            if locked:
                if self._search_tags.shape[1] != capacity:
                    self._search_tags, self._search_epochs = new_visited(1, capacity)
                tags, epochs = self._search_tags, self._search_epochs
            else:
                # The shared visited set is in use by another thread, so use a private one.
                tags, epochs = new_visited(1, capacity)
            ids, proxies = search_query(
                self._xb,
                self.metric_code,
                q,
                k,
                ef,
                two_hop,
                *graph,
                tags,
                epochs,
                0,
                np.empty(capacity, dtype=np.float32),
                np.empty(capacity, dtype=np.int32),
                np.empty(ef, dtype=np.float32),
                np.empty(ef, dtype=np.int32),
            )
        finally:
            if locked:
                self._search_lock.release()
        return ids.reshape(1, -1), proxies.reshape(1, -1)

    def _qualifying_mask(self, allowed: np.ndarray | None) -> np.ndarray | None:
        if allowed is None:
            return None
        allowed = np.asarray(allowed)
        if allowed.dtype != np.bool_ or allowed.shape != (self._n,):
            got = f"{allowed.dtype} {allowed.shape}"
            raise ProgrammingError(f"allowed must be a bool array of {self._n} elements, not {got}")
        return allowed & ~self._deleted[: self._n]

    def _scan_exact(self, xq, k, qualifying):
        rows = np.flatnonzero(qualifying).astype(np.int64)
        ids = np.empty((xq.shape[0], k), dtype=np.int64)
        proxies = np.empty((xq.shape[0], k), dtype=np.float32)
        for i in range(xq.shape[0]):
            positions, found = brute_force(self.metric_code, self._xb, rows, xq[i], k)
            ids[i] = rows[positions]
            proxies[i] = found
        return ids, proxies

    # ----------------------------------------------------------------- persistence

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Return the graph as numpy arrays (copies); the rows are not included."""
        n, n_upper = self._n, self._n_upper
        values = (
            FORMAT_VERSION,
            self.dim,
            self.metric_code,
            self.m,
            self.ef_construction,
            self.seed,
            n,
            self._entry,
            self._max_level,
            n_upper,
        )
        return {
            "params": np.array(values, dtype=np.int64),
            "levels": self._levels[:n].copy(),
            "links0": self._links0[:n].copy(),
            "degree0": self._degree0[:n].copy(),
            "links_up": self._links_up[:n_upper].copy(),
            "degree_up": self._degree_up[:n_upper].copy(),
            "deleted": self._deleted[:n].copy(),
            "duplicate_of": self._duplicate_of[:n].copy(),
            "duplicate_hashes": self._duplicates.hashes.copy(),
            "duplicate_ids": self._duplicates.ids.copy(),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], xb: np.ndarray, copy: bool = True) -> HnswIndex:
        """Reopen an index from ``to_arrays`` output and its prepared rows ``xb``, in id order.

        With ``copy=False`` the index takes ``xb`` over instead of copying it (150 MB for 100k
        rows of 384 dimensions), so the caller must not change it afterwards.
        """
        params = dict(zip(_PARAM_NAMES, (int(v) for v in arrays["params"]), strict=True))
        if params["format_version"] != FORMAT_VERSION:
            raise DataError(
                f"HNSW index format {params['format_version']} is not supported: "
                f"expected {FORMAT_VERSION}; rebuild the index with REINDEX"
            )
        metric = {code: name for name, code in METRIC_CODES.items()}[params["metric"]]
        index = cls(params["dim"], metric, params["m"], params["ef_construction"], params["seed"])
        n, n_upper = params["n_ids"], params["n_upper_rows"]
        rows = index._check_rows(xb)
        if rows.shape[0] != n:
            raise DataError(f"expected {n} rows for the HNSW index, not {rows.shape[0]}")

        index._allocate(n, n_upper)
        if copy or not rows.flags.writeable:
            index._xb[:n] = rows
        else:
            index._xb = rows
        index._levels[:n] = arrays["levels"]
        index._links0[:n] = arrays["links0"]
        index._degree0[:n] = arrays["degree0"]
        index._links_up[:n_upper] = arrays["links_up"]
        index._degree_up[:n_upper] = arrays["degree_up"]
        index._deleted[:n] = arrays["deleted"]
        counts = np.maximum(index._levels[:n], 0).astype(np.int64)
        index._upper_offset[:n] = np.where(counts > 0, np.cumsum(counts) - counts, -1)
        index._n, index._n_upper = n, n_upper
        index._n_deleted = int(np.count_nonzero(index._deleted[:n]))
        index._entry, index._max_level = params["entry"], params["max_level"]

        duplicate_of = np.asarray(arrays["duplicate_of"])
        for node in np.flatnonzero(duplicate_of >= 0):
            index._link_duplicate(int(node), int(duplicate_of[node]))
        if "duplicate_hashes" in arrays:
            index._duplicates.hashes = np.asarray(arrays["duplicate_hashes"], dtype=np.uint64)
            index._duplicates.ids = np.asarray(arrays["duplicate_ids"], dtype=np.int64)
        else:  # stored before the table was
            index._duplicates.add_canonical(index._xb, np.flatnonzero(duplicate_of < 0))
        return index


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _worker_pool(n_workers: int) -> ThreadPoolExecutor | None:
    """Return a shared pool of ``n_workers`` threads for the ``nogil`` kernels (None for one)."""
    if n_workers <= 1:
        return None
    with _pools_lock:
        if n_workers not in _pools:
            _pools[n_workers] = ThreadPoolExecutor(n_workers, thread_name_prefix="vsql-hnsw")
        return _pools[n_workers]


def _grow(array: np.ndarray, capacity: int, fill) -> np.ndarray:
    grown = np.full((capacity,) + array.shape[1:], fill, dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


def warm_up() -> None:
    """Compile the HNSW kernels on tiny data, so the first real build does not pay for it."""
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((64, 4)).astype(np.float32)
    index = HnswIndex(4, "l2", m=4, ef_construction=8)
    index.add(np.concatenate([xb, xb[:2]]))
    index.remove([0])
    index.search(xb[1], 3)
    index.search_batch(xb[:4], 3)
    allowed = np.zeros(len(index), dtype=np.bool_)
    allowed[::3] = True
    index.search(xb[1], 3, allowed=allowed)
