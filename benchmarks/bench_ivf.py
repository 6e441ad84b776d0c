"""Compare vsql's IVF-Flat and IVF-PQ with faiss-cpu on the pypi-minilm embeddings.

    python -m benchmarks.bench_ivf [--queries Q] [--data DIR]

Both libraries build with lists=316 (IVF-PQ: m=48, nbits=8, inner product) on 2 threads, then
search the queries as one batch on 1 thread at probes 1 to 64. recall@10 is measured against the
dataset's exact top 10 by inner product. vsql's IVF-PQ is run at several rerank values (0 means
PQ proxies only). Index bytes per vector: vsql's ``memory_bytes()``, faiss's serialized size,
both divided by the number of rows. Timings on a shared machine vary from run to run, so
compare the ratios between rows of one run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import faiss
import numba
import numpy as np

from udfs import ivf, pq
from udfs.ivf import IvfFlatIndex
from udfs.metrics import prepare_rows
from udfs.pq import IvfPqIndex

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "pypi-minilm"
PROBES = (1, 4, 8, 16, 32, 64)
RERANKS = (0, 50, 100, 200)
LISTS, M, NBITS, K = 316, 48, 8, 10
BUILD_THREADS = 2


def load(data: Path, n_queries: int | None):
    xb = np.load(data / "base_vectors_f16.npy").astype(np.float32)
    xq = np.load(data / "query_vectors_f16.npy").astype(np.float32)
    truth = np.load(data / "query_truth_ids.npy")[:, :K]
    if n_queries is not None:
        xq, truth = xq[:n_queries], truth[:n_queries]
    xb, _ = prepare_rows("cosine", xb)
    xq, _ = prepare_rows("cosine", xq)
    return xb, xq, truth


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def timed(run):
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def build_vsql(xb):
    numba.set_num_threads(BUILD_THREADS)
    flat = IvfFlatIndex(xb.shape[1], "cosine", lists=LISTS)
    _, flat_seconds = timed(lambda: (flat.train(xb), flat.add(xb)))
    product = IvfPqIndex(xb.shape[1], "cosine", lists=LISTS, m=M, nbits=NBITS)
    _, pq_seconds = timed(lambda: (product.train(xb), product.add(xb)))
    return (flat, flat_seconds), (product, pq_seconds)


def build_faiss(xb):
    faiss.omp_set_num_threads(BUILD_THREADS)
    d = xb.shape[1]
    flat = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, LISTS, faiss.METRIC_INNER_PRODUCT)
    _, flat_seconds = timed(lambda: (flat.train(xb), flat.add(xb)))
    product = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, LISTS, M, NBITS, faiss.METRIC_INNER_PRODUCT)
    _, pq_seconds = timed(lambda: (product.train(xb), product.add(xb)))
    return (flat, flat_seconds), (product, pq_seconds)


def faiss_bytes(index) -> int:
    return faiss.serialize_index(index).nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=None, help="number of queries (all 1,000)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dataset folder")
    args = parser.parse_args()

    xb, xq, truth = load(args.data, args.queries)
    n = xb.shape[0]
    ivf.warm_up()
    pq.warm_up()
    (vflat, vflat_s), (vpq, vpq_s) = build_vsql(xb)
    (fflat, fflat_s), (fpq, fpq_s) = build_faiss(xb)

    print(f"rows {n}, queries {len(xq)}, lists {LISTS}, m {M}, nbits {NBITS}")
    print("| index | build s (2 threads) | bytes/vector |")
    print("|---|---|---|")
    print(f"| vsql IVF-Flat | {vflat_s:.1f} | {vflat.memory_bytes() / n:.0f} |")
    print(f"| faiss IVFFlat | {fflat_s:.1f} | {faiss_bytes(fflat) / n:.0f} |")
    print(f"| vsql IVF-PQ | {vpq_s:.1f} | {vpq.memory_bytes() / n:.0f} |")
    print(f"| faiss IVFPQ | {fpq_s:.1f} | {faiss_bytes(fpq) / n:.0f} |")
    print()

    numba.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    runs = [
        ("vsql IVF-Flat", lambda p: vflat.search_batch(xq, K, p)[0]),
        ("faiss IVFFlat", lambda p: (setattr(fflat, "nprobe", p), fflat.search(xq, K)[1])[1]),
    ]
    for rerank in RERANKS:
        runs.append(
            (f"vsql IVF-PQ rerank={rerank}",
             lambda p, r=rerank: vpq.search_batch(xq, K, p, rerank=r)[0])
        )
    runs.append(("faiss IVFPQ", lambda p: (setattr(fpq, "nprobe", p), fpq.search(xq, K)[1])[1]))

    print("| index | " + " | ".join(f"probes={p}" for p in PROBES) + " |")
    print("|---|" + "---|" * len(PROBES))
    for name, search in runs:
        cells = []
        for probes in PROBES:
            found, seconds = timed(lambda s=search, p=probes: s(p))
            cells.append(f"{recall_at_k(found, truth):.3f} @ {len(xq) / seconds:,.0f} q/s")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print("\ncells: recall@10 @ queries/s on 1 thread")


if __name__ == "__main__":
    main()
