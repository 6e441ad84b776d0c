"""Compare vsql's HNSW kernels with hnswlib and faiss on the pypi-minilm embeddings.

    python -m benchmarks.bench_hnsw [--n N] [--queries Q] [--data DIR]

All three libraries build with M=16 and ef_construction=64 on 2 threads, then search with
1 thread at several ef values; recall@10 is measured against the exact top 10 by inner product
(the dataset's truth file for the full data, a numpy scan for a prefix of it). The table also
gives the queries/s of an exact numpy scan. Timings on a shared machine vary from run to run,
so compare the ratios between rows of one run.
"""

from __future__ import annotations

# ruff: noqa: I001 E402 - benchmarks.common is imported first: it pins BLAS to one thread
# before numpy loads.
from benchmarks import common

import argparse
from collections.abc import Sequence
from pathlib import Path

import numba

from benchmarks.common import (
    BUILD_THREADS, K, TIMING_ROUNDS, Dataset, Measurement, best_of, recall_at_k, timed,
)
from udfs.hnsw import HnswIndex, warm_up
from udfs.metrics import prepare_rows

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "pypi-minilm"
EF_VALUES = (10, 16, 24, 32, 40, 48, 64, 80, 100, 128)
M = 16
EF_CONSTRUCTION = 64
PARAMS = f"m={M}, ef_construction={EF_CONSTRUCTION}"

def bench_vsql(data: Dataset, ef_values: Sequence[int] = EF_VALUES) -> list[Measurement]:
    rows, _ = prepare_rows("cosine", data.xb)
    queries, _ = prepare_rows("cosine", data.xq)
    _, compile_s = timed(warm_up)
    print(f"vsql HNSW kernels compiled or loaded from cache in {compile_s:.1f} s", flush=True)
    numba.set_num_threads(BUILD_THREADS)
    index = HnswIndex(data.xb.shape[1], "cosine", m=M, ef_construction=EF_CONSTRUCTION, seed=0)
    _, build_s = timed(lambda: index.add(rows))
    numba.set_num_threads(1)
    index.search_batch(queries[:10], K, ef_values[0])
    results = []
    for ef in ef_values:
        search = lambda ef=ef: index.search_batch(queries, K, ef)  # noqa: E731
        (found, _), search_s = best_of(TIMING_ROUNDS, search)
        results.append(Measurement(
            "kernels", "vsql HNSW", f"ef_search={ef}", recall_at_k(found, data.truth_rows),
            len(queries) / search_s, build_s, index.memory_bytes(), family="hnsw",
        ))
    return results

def bench_hnswlib(data: Dataset, ef_values: Sequence[int] = EF_VALUES) -> list[Measurement]:
    import hnswlib

    xb, xq = data.xb, data.xq
    index = hnswlib.Index(space="cosine", dim=xb.shape[1])
    index.init_index(max_elements=xb.shape[0], M=M, ef_construction=EF_CONSTRUCTION, random_seed=0)
    _, build_s = timed(lambda: index.add_items(xb, num_threads=BUILD_THREADS))
    results = []
    for ef in ef_values:
        index.set_ef(ef)
        search = lambda: index.knn_query(xq, k=K, num_threads=1)  # noqa: E731
        (found, _), search_s = best_of(TIMING_ROUNDS, search)
        results.append(Measurement(
            "kernels", "hnswlib", f"ef={ef}", recall_at_k(found, data.truth_rows),
            len(xq) / search_s, build_s, index.index_file_size(), family="hnsw", is_peer=True,
        ))
    return results

def bench_faiss(data: Dataset, ef_values: Sequence[int] = EF_VALUES) -> list[Measurement]:
    import faiss

    xb, xq = data.xb, data.xq
    faiss.omp_set_num_threads(BUILD_THREADS)
    index = faiss.IndexHNSWFlat(xb.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    _, build_s = timed(lambda: index.add(xb))
    faiss.omp_set_num_threads(1)
    memory = faiss.serialize_index(index).nbytes
    results = []
    for ef in ef_values:
        index.hnsw.efSearch = ef
        (_, found), search_s = best_of(TIMING_ROUNDS, lambda: index.search(xq, K))
        results.append(Measurement(
            "kernels", "faiss IndexHNSWFlat", f"efSearch={ef}", recall_at_k(found, data.truth_rows),
            len(xq) / search_s, build_s, memory, family="hnsw", is_peer=True,
        ))
    return results

def bench_exact(data: Dataset) -> list[Measurement]:
    found, search_s = best_of(TIMING_ROUNDS, lambda: common.exact_top_k(data.xq, data.xb, K))
    return [Measurement(
        "kernels", "numpy exact scan", "xq @ xb.T, 1 BLAS thread",
        recall_at_k(found, data.truth_rows), len(data.xq) / search_s, None, data.xb.nbytes,
    )]

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=None, help="use the first N base rows (default: all)"
    )
    parser.add_argument(
        "--queries", type=int, default=None, help="use the first Q queries (default: all)"
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dataset folder")
    args = parser.parse_args()

    data = common.load_dataset(args.data, args.n, args.queries)
    print(f"{data.n} rows x {data.xb.shape[1]} dims, {len(data.xq)} queries, recall@{K}")
    print(f"build on {BUILD_THREADS} threads, search on 1 thread")
    print(PARAMS)
    header = ("method", "build s", "memory MB", "params", "recall@10", "queries/s")
    print(f"{header[0]:<20} " + " ".join(f"{h:>14}" for h in header[1:]))
    for bench in (bench_vsql, bench_hnswlib, bench_faiss, bench_exact):
        for point in bench(data):
            build = point.build_s if point.build_s is not None else float("nan")
            megabytes = point.memory_bytes / 2**20
            figures = (f"{build:>14.2f} {megabytes:>14.1f} {point.params:>14} "
                       f"{point.recall:>14.3f} {point.qps:>14.0f}")
            print(f"{point.method:<20} {figures}", flush=True)

if __name__ == "__main__":
    main()
