"""Run every vsql benchmark and write benchmarks/results/results.md and recall_qps.png.

    python -m benchmarks [--full | --sample] [--queries N] [--sql-queries N] [--quick]
                         [--skip-build-peers]

Parts, in order: kernels (vsql HNSW, IVF-Flat, IVF-PQ against hnswlib, faiss and an exact numpy
scan), the SQL round trip through vsql, the cost of a vector parameter, filtered search, IVF
through SQL and DuckDB's vss extension. Indexes build on 2 threads and search on 1.
"""

from __future__ import annotations

# ruff: noqa: I001 E402 - benchmarks.common is imported first: it pins BLAS to one thread
# before numpy loads.
from benchmarks import common

import argparse
import dataclasses
import datetime
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from benchmarks import bench_hnsw, bench_ivf, bench_sql, bench_startup
from benchmarks.common import K, Measurement, Table
from benchmarks.plot import plot_recall_qps, save_points
from vsql import sample
from vsql.settings import SETTINGS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
FILTER_EF_VALUES = (40, 80)
SQL_EF_VALUES = (40, 80, 100)
SQL_PROBES = (8, 32)
PEER_FAMILIES = {"hnsw": "HNSW", "ivfflat": "IVF-Flat", "ivfpq": "IVF-PQ"}


@dataclasses.dataclass(frozen=True)
class Grid:
    """Parameter points and query counts of one run (full or --quick)."""

    ef_values: tuple[int, ...]
    probes: tuple[int, ...]
    sql_queries: int
    exact_queries: int
    parameter_repeats: int


FULL = Grid(bench_hnsw.EF_VALUES, bench_ivf.PROBES, 300, 20, 300)
QUICK = Grid((16, 40, 80, 100), (4, 8, 32), 100, 10, 100)
QUICK_KERNEL_QUERIES = 300


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--full", action="store_true",
                       help="require the full dataset (default: full when present, else sample)")
    which.add_argument("--sample", action="store_true", help="use the bundled 20,000-row sample")
    parser.add_argument("--queries", type=int, default=None,
                        help="queries for the kernel benchmarks (default: all; --quick: 300)")
    parser.add_argument("--sql-queries", type=int, default=None,
                        help="queries timed through SQL (default 300; --quick: 100)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer queries and parameter points, for a run of a few minutes")
    parser.add_argument("--skip-build-peers", action="store_true",
                        help="do not build hnswlib and faiss indexes (saves their build time)")
    return parser.parse_args()


# -- kernels --------------------------------------------------------------------------------


def run_kernels(data, grid: Grid, skip_peers: bool, progress) -> list[Measurement]:
    points: list[Measurement] = []
    progress(f"kernels: vsql HNSW build and search ({data.n:,} rows)")
    points += bench_hnsw.bench_vsql(data, grid.ef_values)
    if skip_peers:
        points.append(not_measured("hnswlib", "hnsw", "skipped (--skip-build-peers)"))
        points.append(not_measured("faiss IndexHNSWFlat", "hnsw", "skipped (--skip-build-peers)"))
    else:
        progress("kernels: hnswlib")
        points += bench_hnsw.bench_hnswlib(data, grid.ef_values)
        progress("kernels: faiss IndexHNSWFlat")
        points += bench_hnsw.bench_faiss(data, grid.ef_values)
    points.append(bench_usearch())
    progress("kernels: IVF-Flat and IVF-PQ (vsql" + ("" if skip_peers else " and faiss") + ")")
    lists = bench_sql.ivf_lists(data.n)
    points += bench_ivf.bench_ivf(data, grid.probes, lists, reranks=(200,),
                                  with_peers=not skip_peers)
    progress("kernels: exact numpy scan")
    points += bench_hnsw.bench_exact(data)
    return points


def not_measured(method: str, family: str, note: str) -> Measurement:
    return Measurement("kernels", method, "", family=family, is_peer=True, note=note)


def bench_usearch() -> Measurement:
    try:
        import usearch  # noqa: F401
    except ImportError:
        return not_measured("usearch", "hnsw", "not installed")
    # NOTE: there is no usearch runner, because usearch was not installed on the benchmark machine.
    return not_measured("usearch", "hnsw", "installed, but this benchmark has no usearch runner")


def kernel_table(points: list[Measurement], n_rows: int, n_queries: int) -> Table:
    table = Table(
        f"Kernels: {n_rows:,} rows, {n_queries:,} queries, recall@{K}, "
        "build on 2 threads, search on 1 thread",
        ["method", "params", "build s", "memory MB", "recall@10", "queries/s",
         "vs fastest peer at ≥ recall"],
    )
    for point in points:
        if point.note:
            table.rows.append([point.method, point.note, None, None, None, None, None])
            continue
        table.rows.append([
            point.method, point.params, point.build_s,
            point.memory_bytes / 2**20 if point.memory_bytes is not None else None,
            point.recall, point.qps, peer_ratio(point, points),
        ])
    float32_mb = n_rows * 384 * 4 / 2**20
    table.notes += [
        "memory: vsql `memory_bytes()` (HNSW: graph and float32 rows; IVF: lists, codes and "
        "centroids), hnswlib `index_file_size()`, faiss `serialize_index` size",
        f"IVF-PQ re-ranking reads float32 rows, which vsql keeps beside the codes and leaves "
        f"out of `memory_bytes()`, since the table stores them too; float32 rows alone are "
        f"{float32_mb:.0f} MB",
        "vs fastest peer: queries/s divided by that of the fastest peer of the same family "
        f"({', '.join(PEER_FAMILIES.values())}) whose recall@10 is at least this row's "
        "minus 0.005; a dash means no peer reached that recall",
    ]
    return table


def peer_ratio(point: Measurement, points: list[Measurement]) -> str | None:
    if point.is_peer or not point.family:
        return None
    peer = common.fastest_peer(point, points)
    if peer is None:
        return None
    return f"{point.qps / peer.qps:.2f}x ({peer.method}, {peer.params.split(', ')[-1]})"


def kernel_qps(points: list[Measurement], method: str, prefix: str,
               suffix: str = "") -> dict[int, float]:
    """Map the ef or probes value of ``method``'s kernel points to their queries/s."""
    found = {}
    for point in points:
        last = point.params.split(", ")[-1]
        if point.method == method and last.startswith(prefix) and suffix in point.params:
            found[int(last[len(prefix):])] = point.qps
    return found


# -- SQL ------------------------------------------------------------------------------------


def run_sql(data, grid: Grid, kernel_points, progress) -> tuple[list[Table], list[Measurement]]:
    tables, points = [], []
    progress(f"SQL: loading {data.n:,} rows into an in-memory vsql connection")
    con, load_s = bench_sql.open_packages(data)
    progress(f"SQL: loaded in {load_s:.1f} s; CREATE INDEX USING hnsw and round trips")
    hnsw_qps = kernel_qps(kernel_points, "vsql HNSW", "ef_search=")
    table, found = bench_sql.bench_round_trip(con, data, SQL_EF_VALUES, grid.sql_queries,
                                              grid.exact_queries, hnsw_qps)
    tables.append(table)
    points += found

    progress("SQL: cost of a vector parameter")
    tables.append(bench_sql.bench_parameter_cost(con, data.xq[0], grid.parameter_repeats))

    # ef_search 40 is pgvector's default; 80, vsql's default, is where unfiltered recall@10
    # reaches 0.95 on this data.
    truths = {}
    for ef in FILTER_EF_VALUES:
        progress(f"SQL: filtered search at hnsw.ef_search = {ef}")
        con.execute(f"SET hnsw.ef_search = {ef}")
        table, found, truths = bench_sql.bench_filters(con, data, bench_sql.FILTERS,
                                                       grid.sql_queries, grid.exact_queries)
        tables.append(table)
        points += found
    con.execute("RESET hnsw.ef_search")

    progress("SQL: IVF-Flat index")
    lists = bench_sql.ivf_lists(data.n)
    ivf_qps = kernel_qps(kernel_points, "vsql IVF-Flat", "probes=")
    table, found = bench_sql.bench_ivf_sql(con, data, lists, SQL_PROBES, grid.sql_queries,
                                           ivf_qps)
    tables.append(table)
    points += found
    con.close()

    progress("SQL: first query of fresh processes on a stored index")
    tables.append(bench_startup.bench_first_query(data))

    progress("DuckDB vss (separate process)")
    ef_default = int(SETTINGS["hnsw.ef_search"].default)
    table, found = bench_sql.bench_vss(data, SQL_EF_VALUES, ef_default, grid.sql_queries, truths)
    tables.append(table)
    points += found
    return tables, points


# -- report ---------------------------------------------------------------------------------


def machine_facts(load_before: tuple[float, ...]) -> list[str]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    load_after = os.getloadavg()
    versions = ", ".join(f"{name} {version(name)}" for name in
                         ("duckdb", "numba", "numpy", "pyarrow", "hnswlib", "faiss-cpu"))
    return [
        f"date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"machine: {os.cpu_count()} cores, {platform.machine()}, {platform.platform(terse=True)}",
        f"python {platform.python_version()}, {versions}",
        f"timing: every search is timed in {common.TIMING_ROUNDS} rounds and the fastest counts; "
        "builds are timed once",
        "load average (1, 5, 15 min) at the start: "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; at the end: " + ", ".join(f"{x:.2f}" for x in load_after),
    ]


def write_results(command: str, facts: list[str], dataset: str, tables: list[Table],
                  plot_line: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    lines = ["# vsql benchmark results", "", f"Command: `{command}`", "", f"Dataset: {dataset}", ""]
    lines += [f"- {fact}" for fact in facts] + [""]
    for table in tables:
        lines += [table.to_markdown(), ""]
    if plot_line.startswith("wrote"):
        lines += ["![recall@10 against queries/s](recall_qps.png)", ""]
    path = RESULTS_DIR / "results.md"
    path.write_text("\n".join(lines))
    return path


def main() -> None:
    args = parse_args()
    grid = QUICK if args.quick else FULL
    n_queries = args.queries
    if n_queries is None and args.quick:
        n_queries = QUICK_KERNEL_QUERIES
    full = None  # the full dataset when present, else the sample
    if args.full:
        full = True
    elif args.sample:
        full = False
    load_before = os.getloadavg()
    progress = common.Progress()

    path = sample.dataset_path(full)
    data = common.load_dataset(path, n_queries=n_queries)
    sql_queries = min(args.sql_queries or grid.sql_queries, len(data.xq))
    grid = dataclasses.replace(grid, sql_queries=sql_queries,
                               exact_queries=min(grid.exact_queries, sql_queries))
    kind = "the bundled sample `vsql/data`" if path == sample.SAMPLE_DIR else "the full pypi-minilm"
    dataset = f"{kind} ({data.n:,} rows, {len(data.xq):,} queries)"
    progress(f"dataset {dataset}")

    kernel_points = run_kernels(data, grid, args.skip_build_peers, progress)
    tables = [kernel_table(kernel_points, data.n, len(data.xq))]
    sql_tables, sql_points = run_sql(data, grid, kernel_points, progress)
    tables += sql_tables

    progress("writing results")
    measured = [p for p in kernel_points + sql_points if p.note == ""]
    title = f"pypi-minilm, {data.n:,} rows x 384 dims: recall@10 against queries/s"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    save_points(measured, title, RESULTS_DIR / "points.json")
    plot_line = plot_recall_qps(measured, RESULTS_DIR / "recall_qps.png", title)
    command = "python -m benchmarks " + " ".join(sys.argv[1:])
    results = write_results(command.strip(), machine_facts(load_before), dataset, tables, plot_line)
    for table in tables:
        print()
        print(table.to_markdown())
    print()
    print(plot_line)
    print(f"wrote {results}")
    progress("done")


if __name__ == "__main__":
    main()
