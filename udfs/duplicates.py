"""Detection of exact duplicate rows before they enter an HNSW graph.

Many copies of one vector break a proximity graph: the neighbour lists of the copies fill with
each other and the group becomes an island. So only the first copy (the canonical row) is linked
into the graph, and every later copy points to it through ``duplicate_of``. Searches that reach
the canonical row also report its copies at the same distance. Rows are equal when their float32
bit patterns are equal, so ``0.0`` and ``-0.0`` count as different rows (both stay correct, one is
just linked normally).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)


@nb.njit(cache=True)
def hash_rows(bits: np.ndarray) -> np.ndarray:
    """Hash each row of a ``uint32[n, dim]`` bit view with 64-bit FNV-1a over its words."""
    out = np.empty(bits.shape[0], dtype=np.uint64)
    for i in range(bits.shape[0]):
        h = _FNV_OFFSET
        for j in range(bits.shape[1]):
            h = (h ^ np.uint64(bits[i, j])) * _FNV_PRIME
        out[i] = h
    return out


class DuplicateTable:
    """Sorted hashes of the canonical rows, for finding exact copies among new rows."""

    def __init__(self) -> None:
        self.hashes = np.empty(0, dtype=np.uint64)
        self.ids = np.empty(0, dtype=np.int64)

    def find(self, xb: np.ndarray, first_id: int, rows: np.ndarray) -> np.ndarray:
        """Return ``duplicate_of`` for ``rows`` (ids ``first_id``...): a canonical id, or -1.

        ``xb`` contains the float32 rows stored so far. The canonical new rows join the table.
        """
        n = rows.shape[0]
        bits = rows.view(np.uint32)
        hashes = hash_rows(bits)
        duplicate_of = np.full(n, -1, dtype=np.int64)

        # Copies of rows that are already stored.
        if self.hashes.shape[0]:
            positions = np.minimum(np.searchsorted(self.hashes, hashes), self.hashes.shape[0] - 1)
            hits = np.flatnonzero(self.hashes[positions] == hashes)
            if hits.shape[0]:
                candidates = self.ids[positions[hits]]
                same = (xb[candidates].view(np.uint32) == bits[hits]).all(axis=1)
                duplicate_of[hits[same]] = candidates[same]

        # Copies among the new rows themselves: the first row of each equal run is canonical.
        open_rows = np.flatnonzero(duplicate_of < 0)
        order = open_rows[np.argsort(hashes[open_rows], kind="stable")]
        sorted_hashes = hashes[order]
        run_start = np.ones(order.shape[0], dtype=bool)
        run_start[1:] = sorted_hashes[1:] != sorted_hashes[:-1]
        first_of_run = order[
            np.maximum.accumulate(np.where(run_start, np.arange(order.shape[0]), 0))
        ]
        later = np.flatnonzero(~run_start)
        if later.shape[0]:
            same = (bits[order[later]] == bits[first_of_run[later]]).all(axis=1)
            duplicate_of[order[later[same]]] = first_id + first_of_run[later[same]]

        canonical = np.flatnonzero(duplicate_of < 0)
        self._insert(hashes[canonical], first_id + canonical)
        return duplicate_of

    def add_canonical(self, xb: np.ndarray, ids: np.ndarray) -> None:
        """Add the stored rows ``xb[ids]``, known to be canonical, to the table."""
        bits = np.ascontiguousarray(xb[ids]).view(np.uint32)
        self._insert(hash_rows(bits), ids)

    def _insert(self, hashes: np.ndarray, ids: np.ndarray) -> None:
        merged_hashes = np.concatenate([self.hashes, hashes])
        merged_ids = np.concatenate([self.ids, ids.astype(np.int64)])
        order = np.argsort(merged_hashes, kind="stable")
        self.hashes = merged_hashes[order]
        self.ids = merged_ids[order]

    def memory_bytes(self) -> int:
        return int(self.hashes.nbytes + self.ids.nbytes)
