"""Compare vsql's IVF-Flat and IVF-PQ with faiss-cpu on the pypi-minilm embeddings.

    python -m benchmarks.bench_ivf [--queries Q] [--data DIR]

Both libraries build with lists=316 (IVF-PQ: m=48, nbits=8, inner product) on 2 threads, then
search the queries as one batch on 1 thread at probes 1 to 64. recall@10 is measured against the
dataset's exact top 10 by inner product. vsql's IVF-PQ is run at several rerank values (0 means
PQ proxies only). Index bytes per vector: vsql's ``memory_bytes()``, faiss's serialized size,
both divided by the number of rows. vsql's IVF-PQ also keeps the float32 rows for re-ranking,
which ``memory_bytes()`` leaves out because vsql reads them from the table. Timings on a shared
machine vary from run to run, so compare the ratios between rows of one run.
"""

from __future__ import annotations

# ruff: noqa: I001 E402 - benchmarks.common is imported first: it pins BLAS to one thread
# before numpy loads.
from benchmarks import common

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

import faiss
import numba
import numpy as np

from benchmarks.common import (
    BUILD_THREADS, K, TIMING_ROUNDS, Dataset, Measurement, best_of, recall_at_k, timed,
)
from udfs import ivf, pq
from udfs.ivf import IvfFlatIndex
from udfs.metrics import prepare_rows
from udfs.pq import IvfPqIndex

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "pypi-minilm"
PROBES = (1, 4, 8, 16, 32, 64)
RERANKS = (0, 50, 100, 200)
LISTS, M, NBITS = 316, 48, 8


def build_vsql(xb: np.ndarray, lists: int = LISTS):
    """Build vsql's IVF-Flat and IVF-PQ on prepared rows; return ``(index, build s)`` of each."""
    ivf.warm_up()
    pq.warm_up()
    numba.set_num_threads(BUILD_THREADS)
    flat = IvfFlatIndex(xb.shape[1], "cosine", lists=lists)
    _, flat_seconds = timed(lambda: (flat.train(xb), flat.add(xb)))
    product = IvfPqIndex(xb.shape[1], "cosine", lists=lists, m=M, nbits=NBITS)
    _, pq_seconds = timed(lambda: (product.train(xb), product.add(xb)))
    numba.set_num_threads(1)
    return (flat, flat_seconds), (product, pq_seconds)


def build_faiss(xb: np.ndarray, lists: int = LISTS):
    """Build faiss's IndexIVFFlat and IndexIVFPQ; return ``(index, build s)`` of each."""
    faiss.omp_set_num_threads(BUILD_THREADS)
    d = xb.shape[1]
    flat = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, lists, faiss.METRIC_INNER_PRODUCT)
    _, flat_seconds = timed(lambda: (flat.train(xb), flat.add(xb)))
    product = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, lists, M, NBITS, faiss.METRIC_INNER_PRODUCT)
    _, pq_seconds = timed(lambda: (product.train(xb), product.add(xb)))
    faiss.omp_set_num_threads(1)
    return (flat, flat_seconds), (product, pq_seconds)


def faiss_bytes(index) -> int:
    return faiss.serialize_index(index).nbytes


def _faiss_search(index, xq: np.ndarray, probes: int) -> np.ndarray:
    index.nprobe = probes
    return index.search(xq, K)[1]


def search_runs(data: Dataset, lists: int = LISTS, reranks: Sequence[int] = RERANKS,
                with_peers: bool = True):
    """Build every index and return ``(method, family, is_peer, params, build s, bytes, search)``.

    ``search(probes)`` searches all queries on 1 thread and returns ids ``[nq, K]``.
    """
    xb, _ = prepare_rows("cosine", data.xb)
    xq, _ = prepare_rows("cosine", data.xq)
    (vflat, vflat_s), (vpq, vpq_s) = build_vsql(xb, lists)
    pq_params = f"lists={lists}, m={M}, nbits={NBITS}"
    runs: list[tuple[str, str, bool, str, float, int, Callable[[int], np.ndarray]]] = [
        ("vsql IVF-Flat", "ivfflat", False, f"lists={lists}", vflat_s, vflat.memory_bytes(),
         lambda p: vflat.search_batch(xq, K, p)[0]),
    ]
    for rerank in reranks:
        runs.append((
            "vsql IVF-PQ", "ivfpq", False, f"{pq_params}, rerank={rerank}", vpq_s,
            vpq.memory_bytes(), lambda p, r=rerank: vpq.search_batch(xq, K, p, rerank=r)[0],
        ))
    if with_peers:
        (fflat, fflat_s), (fpq, fpq_s) = build_faiss(xb, lists)
        runs.insert(1, ("faiss IndexIVFFlat", "ivfflat", True, f"lists={lists}", fflat_s,
                        faiss_bytes(fflat), lambda p: _faiss_search(fflat, xq, p)))
        runs.append(("faiss IndexIVFPQ", "ivfpq", True, pq_params, fpq_s, faiss_bytes(fpq),
                     lambda p: _faiss_search(fpq, xq, p)))
    return runs


def bench_ivf(data: Dataset, probes: Sequence[int] = PROBES, lists: int = LISTS,
              reranks: Sequence[int] = RERANKS, with_peers: bool = True) -> list[Measurement]:
    """Measure recall@10 and queries/s of every IVF index at each number of probes."""
    results = []
    runs = search_runs(data, lists, reranks, with_peers)
    for method, family, is_peer, params, build_s, memory, search in runs:
        search(probes[0])  # the first call of a numba kernel may load it from the cache
        for nprobe in probes:
            found, seconds = best_of(TIMING_ROUNDS, lambda s=search, p=nprobe: s(p))
            results.append(Measurement(
                "kernels", method, f"{params}, probes={nprobe}",
                recall_at_k(found, data.truth_rows), len(data.xq) / seconds, build_s, memory,
                family=family, is_peer=is_peer,
            ))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=None, help="number of queries (all 1,000)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dataset folder")
    args = parser.parse_args()

    data = common.load_dataset(args.data, n_queries=args.queries)
    n = data.n
    runs = search_runs(data)
    print(f"rows {n}, queries {len(data.xq)}, lists {LISTS}, m {M}, nbits {NBITS}")
    print("| index | build s (2 threads) | bytes/vector |")
    print("|---|---|---|")
    printed = set()
    for method, _, _, _, build_s, memory, _ in runs:
        if method not in printed:
            printed.add(method)
            print(f"| {method} | {build_s:.1f} | {memory / n:.0f} |")
    print()

    print("| index | " + " | ".join(f"probes={p}" for p in PROBES) + " |")
    print("|---|" + "---|" * len(PROBES))
    for method, _, _, params, _, _, search in runs:
        cells = []
        search(PROBES[0])
        for probes in PROBES:
            found, seconds = best_of(TIMING_ROUNDS, lambda s=search, p=probes: s(p))
            recall = recall_at_k(found, data.truth_rows)
            cells.append(f"{recall:.3f} @ {len(data.xq) / seconds:,.0f} q/s")
        print(f"| {method} ({params}) | " + " | ".join(cells) + " |", flush=True)
    print("\ncells: recall@10 @ queries/s on 1 thread")


if __name__ == "__main__":
    main()
