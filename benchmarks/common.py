"""Shared pieces of the benchmarks: dataset loading, recall@k, timing and Markdown tables.

Import this module before numpy anywhere in a benchmark: it pins BLAS to one thread, so that the
exact numpy scan is measured on one thread like the index searches.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import math  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

K = 10
BUILD_THREADS = 2
# Searches are timed this many times and the fastest round counts, because other processes on a
# shared machine slow down single rounds by tens of percent.
TIMING_ROUNDS = 3


@dataclass
class Dataset:
    """Base and query vectors of one pypi-minilm directory, with each query's exact top K.

    ``truth_rows`` are row positions in ``xb``, converted from the base ids of the truth file.
    The full dataset's ids equal row numbers. The bundled sample keeps the ids of the full
    dataset, so its ids are looked up in ``base_ids``.
    """

    path: Path
    xb: np.ndarray  # float32 [n, dim], rows of base.parquet in file order
    xq: np.ndarray  # float32 [nq, dim]
    base_ids: np.ndarray  # int64 [n], the ``id`` column, ascending
    truth_rows: np.ndarray  # int64 [nq, K]

    @property
    def n(self) -> int:
        return self.xb.shape[0]

    def rows_of_ids(self, ids: np.ndarray) -> np.ndarray:
        """Return the row positions of base ``ids`` (each must exist)."""
        ids = np.asarray(ids, dtype=np.int64)
        rows = np.searchsorted(self.base_ids, ids)
        if ids.size and not np.array_equal(self.base_ids[np.minimum(rows, self.n - 1)], ids):
            raise ValueError(f"ids not found in {self.path / 'base.parquet'}")
        return rows


def load_dataset(path: Path, n: int | None = None, n_queries: int | None = None) -> Dataset:
    """Load a dataset directory as float32 vectors and exact top-K row positions.

    With ``n`` smaller than the dataset, only the first ``n`` rows are kept and the exact top K
    is recomputed for them with numpy (inner product, as the truth file).
    """
    xb = np.load(path / "base_vectors_f16.npy").astype(np.float32)
    xq = np.load(path / "query_vectors_f16.npy").astype(np.float32)
    base_ids = pq.read_table(path / "base.parquet", columns=["id"]).column(0).to_numpy()
    base_ids = base_ids.astype(np.int64)
    if np.any(np.diff(base_ids) <= 0):
        raise ValueError(f"expected ascending ids in {path / 'base.parquet'}")
    truth_ids = np.load(path / "query_truth_ids.npy")[:, :K]
    if n_queries is not None:
        xq, truth_ids = xq[:n_queries], truth_ids[:n_queries]

    dataset = Dataset(path, xb, np.ascontiguousarray(xq), base_ids, np.empty(0, np.int64))
    if n is not None and n < xb.shape[0]:
        dataset.xb, dataset.base_ids = np.ascontiguousarray(xb[:n]), base_ids[:n]
        dataset.truth_rows = exact_top_k(dataset.xq, dataset.xb, K)
    else:
        dataset.truth_rows = dataset.rows_of_ids(truth_ids)
    return dataset


def exact_top_k(xq: np.ndarray, xb: np.ndarray, k: int) -> np.ndarray:
    """Return the row positions of each query's ``k`` largest inner products, best first."""
    k = min(k, xb.shape[0])
    if k == 0:
        return np.empty((xq.shape[0], 0), dtype=np.int64)
    scores = xq @ xb.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1).astype(np.int64)


def recall_at_k(found: Sequence[np.ndarray], truth: Sequence[np.ndarray], k: int = K) -> float:
    """Return the share of each query's true top ``k`` found in its first ``k`` results.

    A query whose truth has fewer than ``k`` rows (a filter matching few rows) counts only those,
    so a full result scores 1. Padding ids (-1) never match.
    """
    hits, expected = 0, 0
    for got, want in zip(found, truth, strict=True):
        want = np.asarray(want)[:k]
        hits += np.intersect1d(np.asarray(got)[:k], want).shape[0]
        expected += want.shape[0]
    return hits / expected if expected else float("nan")


def timed(run: Callable[[], Any]) -> tuple[Any, float]:
    """Call ``run()`` and return its result and the seconds it took."""
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def best_of(rounds: int, run: Callable[[], Any]) -> tuple[Any, float]:
    """Call ``run()`` ``rounds`` times; return the last result and the fewest seconds taken."""
    result, fastest = timed(run)
    for _ in range(rounds - 1):
        result, seconds = timed(run)
        fastest = min(fastest, seconds)
    return result, fastest


@dataclass
class Measurement:
    """One point of a benchmark: a method at one setting, with what it cost and returned."""

    section: str  # "kernels", "sql", "filtered" or "vss"
    method: str
    params: str
    recall: float | None = None
    qps: float | None = None
    build_s: float | None = None
    memory_bytes: int | None = None
    family: str = ""  # methods of one family (hnsw, ivfflat, ivfpq) are compared with each other
    is_peer: bool = False  # another library, as opposed to vsql or numpy
    note: str = ""


def fastest_peer(point: Measurement, points: Sequence[Measurement], slack: float = 0.005):
    """Return the fastest peer point of the same family whose recall is at least ``point``'s.

    ``slack`` lets a peer trail by half a point of recall, because measured recall moves in
    steps of 1 / (queries * K). Returns None when no peer reaches that recall.
    """
    if point.recall is None:
        return None
    candidates = [
        other for other in points
        if other.is_peer and other.family == point.family and other.qps is not None
        and other.recall is not None and other.recall >= point.recall - slack
    ]
    return max(candidates, key=lambda other: other.qps, default=None)


@dataclass
class Table:
    """One result table: a title, a header row, rows of values and notes printed under it."""

    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        parts = [f"### {self.title}", "", markdown_table(self.headers, self.rows)]
        if self.notes:
            parts += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(parts)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Format ``rows`` as a Markdown table; numbers right-aligned, None shown as a dash."""
    cells = [[format_cell(value) for value in row] for row in rows]
    numeric = [
        all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(headers))
    ]
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join("---:" if right else "---" for right in numeric) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def format_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"
    return str(value)


class Progress:
    """Prints which part of the benchmark runs, with the seconds since the start."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.started:7.1f} s] {message}", flush=True)
