"""Compare vsql's HNSW kernels with hnswlib and faiss on the pypi-minilm embeddings.

    python -m benchmarks.bench_hnsw [--n N] [--queries Q] [--data DIR]

All three libraries build with M=16 and ef_construction=64 on 2 threads, then search with
1 thread at several ef values; recall@10 is measured against the exact top 10 by inner product
(the dataset's truth file for the full data, a numpy scan for a prefix of it). The table also
gives the queries/s of an exact numpy scan. Timings on a shared machine vary from run to run,
so compare the ratios between rows of one run.
"""

from __future__ import annotations

import os

# BLAS threads are fixed before numpy loads, so the exact scan runs on one thread.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

from udfs.hnsw import HnswIndex, warm_up  # noqa: E402
from udfs.metrics import prepare_rows  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "pypi-minilm"
EF_VALUES = (10, 16, 24, 32, 48, 64, 96, 128)
K = 10
M = 16
EF_CONSTRUCTION = 64
BUILD_THREADS = 2


def load(data: Path, n: int | None, n_queries: int | None):
    """Return (xb, xq, truth ids [nq, K]) as float32 unit rows and exact top-K ids."""
    xb = np.load(data / "base_vectors_f16.npy").astype(np.float32)
    xq = np.load(data / "query_vectors_f16.npy").astype(np.float32)
    truth = np.load(data / "query_truth_ids.npy")[:, :K]
    if n_queries is not None:
        xq, truth = xq[:n_queries], truth[:n_queries]
    if n is not None and n < xb.shape[0]:
        xb = xb[:n]
        scores = xq @ xb.T
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        truth = np.take_along_axis(top, order, axis=1)
    return xb, xq, truth


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(np.intersect1d(f[:K], t).shape[0] for f, t in zip(found, truth, strict=True))
    return hits / (truth.shape[0] * K)


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def bench_vsql(xb, xq, truth):
    rows, _ = prepare_rows("cosine", xb)
    queries, _ = prepare_rows("cosine", xq)
    _, compile_s = timed(warm_up)
    print(f"vsql kernels compiled or loaded from cache in {compile_s:.1f} s")
    numba.set_num_threads(BUILD_THREADS)
    index = HnswIndex(xb.shape[1], "cosine", m=M, ef_construction=EF_CONSTRUCTION, seed=0)
    _, build_s = timed(lambda: index.add(rows))
    numba.set_num_threads(1)
    index.search_batch(queries[:10], K, EF_VALUES[0])
    results = []
    for ef in EF_VALUES:
        (found, _), search_s = timed(lambda ef=ef: index.search_batch(queries, K, ef))
        results.append((ef, recall_at_k(found, truth), xq.shape[0] / search_s))
    return "vsql", build_s, index.memory_bytes(), results


def bench_hnswlib(xb, xq, truth):
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=xb.shape[1])
    index.init_index(max_elements=xb.shape[0], M=M, ef_construction=EF_CONSTRUCTION, random_seed=0)
    _, build_s = timed(lambda: index.add_items(xb, num_threads=BUILD_THREADS))
    results = []
    for ef in EF_VALUES:
        index.set_ef(ef)
        (found, _), search_s = timed(lambda: index.knn_query(xq, k=K, num_threads=1))
        results.append((ef, recall_at_k(found, truth), xq.shape[0] / search_s))
    return "hnswlib", build_s, index.index_file_size(), results


def bench_faiss(xb, xq, truth):
    import faiss

    faiss.omp_set_num_threads(BUILD_THREADS)
    index = faiss.IndexHNSWFlat(xb.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    _, build_s = timed(lambda: index.add(xb))
    faiss.omp_set_num_threads(1)
    memory = faiss.serialize_index(index).nbytes
    results = []
    for ef in EF_VALUES:
        index.hnsw.efSearch = ef
        (_, found), search_s = timed(lambda: index.search(xq, K))
        results.append((ef, recall_at_k(found, truth), xq.shape[0] / search_s))
    return "faiss", build_s, memory, results


def bench_exact(xb, xq, truth):
    def scan():
        scores = xq @ xb.T
        return np.argpartition(-scores, K, axis=1)[:, :K]

    found, search_s = timed(scan)
    return "numpy exact", float("nan"), xb.nbytes, [(0, recall_at_k(found, truth), xq.shape[0] / search_s)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="use the first N base rows (default: all)")
    parser.add_argument("--queries", type=int, default=None, help="use the first Q queries (default: all)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dataset folder")
    args = parser.parse_args()

    xb, xq, truth = load(args.data, args.n, args.queries)
    print(f"{xb.shape[0]} rows x {xb.shape[1]} dims, {xq.shape[0]} queries, recall@{K}")
    print(f"build on {BUILD_THREADS} threads, search on 1 thread; M={M}, ef_construction={EF_CONSTRUCTION}")
    print(f"{'method':<12} {'build s':>8} {'memory MB':>10} {'ef':>5} {'recall@10':>10} {'queries/s':>10}")
    for bench in (bench_vsql, bench_hnswlib, bench_faiss, bench_exact):
        name, build_s, memory, results = bench(xb, xq, truth)
        for ef, recall, qps in results:
            print(f"{name:<12} {build_s:>8.2f} {memory / 2**20:>10.1f} {ef:>5} {recall:>10.3f} {qps:>10.0f}")


if __name__ == "__main__":
    main()
