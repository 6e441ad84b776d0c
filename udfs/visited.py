"""Epoch-tagged visited sets for graph walks.

A visited set is one row of ``uint16`` tags per worker thread plus that row's current epoch. A node
counts as visited when its tag equals the epoch, so starting a new walk only increments the epoch.
The row is zeroed only when the epoch wraps around after 65,535 walks.
"""

from __future__ import annotations

import numba as nb
import numpy as np

TAG_DTYPE = np.uint16
_MAX_EPOCH = 65535


def new_visited(n_threads: int, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """Allocate tags ``uint16[n_threads, capacity]`` and epochs ``int64[n_threads]``."""
    return np.zeros((n_threads, capacity), dtype=TAG_DTYPE), np.zeros(n_threads, dtype=np.int64)


@nb.njit(cache=True)
def next_epoch(tags: np.ndarray, epochs: np.ndarray, row: int) -> np.uint16:
    """Start a new walk on row ``row`` of ``tags`` and return the epoch that marks it."""
    epoch = epochs[row] + 1
    if epoch > _MAX_EPOCH:
        tags[row, :] = 0
        epoch = 1
    epochs[row] = epoch
    return np.uint16(epoch)
