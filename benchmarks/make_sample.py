"""Make the sample of the pypi-minilm dataset that ships in ``vsql/data/``.

The sample keeps a seeded random subset of base rows and queries with their original ids, in the
same file layout as the full dataset. Each query's exact top-k is recomputed within the sampled
rows, so that recall can be measured on the sample alone.

    python benchmarks/make_sample.py --source ../shared/datasets/pypi-minilm --out vsql/data
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPOSITORY_ROOT.parent / "shared" / "datasets" / "pypi-minilm"
DEFAULT_OUT = REPOSITORY_ROOT / "vsql" / "data"

SEED = 20250
N_BASE = 20_000
N_QUERIES = 200
K = 100
ZSTD_LEVEL = 9


def sample_positions(n_total: int, n_sample: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n_sample`` distinct row positions, sorted to keep the source order."""
    if n_sample > n_total:
        raise ValueError(f"cannot sample {n_sample} rows from {n_total}")
    return np.sort(rng.choice(n_total, size=n_sample, replace=False))


def exact_top_k(xq: np.ndarray, xb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the positions and inner products of each query's ``k`` largest inner products.

    The scores are float32 matrix products and ties keep the lower position first (stable sort),
    the same rule as the full dataset's truth files.
    """
    scores = xq @ xb.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", compression_level=ZSTD_LEVEL)


def make_sample(source: Path, out: Path, n_base: int, n_queries: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)

    base = pq.read_table(source / "base.parquet")
    xb16 = np.load(source / "base_vectors_f16.npy")
    base_positions = sample_positions(base.num_rows, n_base, rng)
    base_sample = base.take(pa.array(base_positions))
    xb16_sample = np.ascontiguousarray(xb16[base_positions])

    queries = pq.read_table(source / "queries.parquet")
    xq16 = np.load(source / "query_vectors_f16.npy")
    query_positions = sample_positions(queries.num_rows, n_queries, rng)
    query_sample = queries.take(pa.array(query_positions))
    xq16_sample = np.ascontiguousarray(xq16[query_positions])

    # Truth is computed on the float32 values of the float16 vectors that ship, not on the
    # original float32 embeddings, so an exact search over the shipped data reaches recall 1.
    top_positions, top_ip = exact_top_k(
        xq16_sample.astype(np.float32), xb16_sample.astype(np.float32), k
    )
    base_ids = base_sample.column("id").to_numpy()
    truth_ids = base_ids[top_positions].astype(np.int32)

    out.mkdir(parents=True, exist_ok=True)
    write_parquet(base_sample, out / "base.parquet")
    np.save(out / "base_vectors_f16.npy", xb16_sample)
    write_parquet(query_sample, out / "queries.parquet")
    np.save(out / "query_vectors_f16.npy", xq16_sample)
    np.save(out / "query_truth_ids.npy", truth_ids)
    np.save(out / "query_truth_ip.npy", top_ip.astype(np.float32))

    popular = pc.sum(pc.is_valid(base_sample.column("popularity_rank"))).as_py()
    print(f"wrote {n_base} base rows ({popular} with a popularity_rank) and {n_queries} queries")
    for path in sorted(out.iterdir()):
        print(f"{path.stat().st_size:>12,}  {path.name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=Path(os.environ.get("VSQL_DATASET_DIR", DEFAULT_SOURCE)),
        help="directory of the full dataset (default: $VSQL_DATASET_DIR or %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--rows", type=int, default=N_BASE, help="number of base rows to keep")
    parser.add_argument("--queries", type=int, default=N_QUERIES, help="number of queries to keep")
    parser.add_argument("--k", type=int, default=K, help="neighbours per query in the truth")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the random sample")
    args = parser.parse_args()

    if not (args.source / "base.parquet").is_file():
        parser.error(f"full dataset not found in {args.source}: pass --source")
    make_sample(args.source, args.out, args.rows, args.queries, args.k, args.seed)


if __name__ == "__main__":
    main()
