"""Benchmarks through vsql's SQL: kNN round trips, filtered search, IVF, and DuckDB's vss.

Every query runs as a user would run it: ``con.execute(sql, [q]).fetchall()`` on a vsql
connection, one query at a time, with ``q`` a float32 numpy array. recall@10 is computed from
the returned ids. The exact results of filtered queries are computed with numpy on the float32
vectors (cosine, as the SQL asks) over the rows that DuckDB says match the filter.
"""

from __future__ import annotations

# ruff: noqa: I001 E402 - benchmarks.common is imported first: it pins BLAS to one thread
# before numpy loads.
from benchmarks import common

import json
import math
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

import vsql
from benchmarks.common import (
    BUILD_THREADS, K, TIMING_ROUNDS, Dataset, Measurement, Table, best_of, recall_at_k, timed,
)
from vsql import sample

KNN_SQL = "SELECT id, embedding <=> ? AS distance FROM packages{where} ORDER BY distance LIMIT 10"
FILTERS = (
    "released >= DATE '2026-11-01'",
    "popularity_rank < 1000",
    "summary ILIKE '%vector%'",
    "popularity_rank IS NOT NULL",
    "released < DATE '2015-01-01'",
    "released >= DATE '2026-01-01'",
    "released >= DATE '2025-01-01'",
    "",  # no filter
)
HNSW_INDEX = "packages_hnsw"
IVF_INDEX = "packages_ivfflat"
VSS_PYTHON = Path("/tmp/vss-venv/bin/python")
VSS_TIMEOUT_S = 900


def knn_sql(where: str) -> str:
    return KNN_SQL.format(where=f" WHERE {where}" if where else "")


def filter_label(where: str) -> str:
    return where or "(no filter)"


@dataclass
class QueryRun:
    """Results of one SQL statement run once per query vector."""

    seconds: float
    rows: list[np.ndarray]  # row positions of the returned ids, per query

    @property
    def qps(self) -> float:
        return len(self.rows) / self.seconds

    def row_counts(self) -> np.ndarray:
        return np.array([len(found) for found in self.rows])


def run_queries(con: vsql.Connection, data: Dataset, sql: str, xq: np.ndarray) -> QueryRun:
    """Run ``sql`` once per row of ``xq``, in ``TIMING_ROUNDS`` rounds after one warm-up call."""
    con.execute(sql, [xq[0]]).fetchall()
    found, seconds = best_of(TIMING_ROUNDS, lambda: [con.execute(sql, [q]).fetchall() for q in xq])
    rows = [data.rows_of_ids([row[0] for row in result]) for result in found]
    return QueryRun(seconds, rows)


def open_packages(data: Dataset) -> tuple[vsql.Connection, float]:
    """Open an in-memory vsql connection with table ``packages``; return it and the load time."""
    con = vsql.connect()
    _, seconds = timed(lambda: sample.create_table(con, "packages", data.path))
    return con, seconds


def create_index(con: vsql.Connection, sql: str) -> float:
    """Run a CREATE INDEX on 2 numba threads and return its seconds."""
    numba.set_num_threads(BUILD_THREADS)
    _, seconds = timed(lambda: con.execute(sql))
    numba.set_num_threads(1)
    return seconds


# -- kNN round trip -------------------------------------------------------------------------


def bench_round_trip(
    con: vsql.Connection, data: Dataset, ef_values: Sequence[int], n_queries: int, n_exact: int,
    kernel_qps: dict[int, float],
) -> tuple[Table, list[Measurement]]:
    """Time the kNN statement through vsql at each ef_search, and with the index disabled.

    The index includes ``id``, so the statement (ids and distances) is an index-only scan. The
    same statement with ``name`` added needs DuckDB to fetch the rows, so it times that path.
    """
    build_s = create_index(
        con, f"CREATE INDEX {HNSW_INDEX} ON packages USING hnsw (embedding vector_cosine_ops) INCLUDE (id)"
    )
    xq, truth = data.xq[:n_queries], data.truth_rows[:n_queries]
    sql = knn_sql("")
    with_name = sql.replace("SELECT id,", "SELECT id, name,")
    table = Table(
        f"SQL round trip: `{sql}`",
        ["method", "setting", "queries", "recall@10", "queries/s", "ms/query",
         "kernel queries/s", "SQL / kernel"],
    )
    points = []
    for ef in ef_values:
        con.execute(f"SET hnsw.ef_search = {ef}")
        for label, statement in (("index-only scan", sql), ("index scan + DuckDB, with name", with_name)):
            run = run_queries(con, data, statement, xq)
            recall = recall_at_k(run.rows, truth)
            kernel = kernel_qps.get(ef)
            table.rows.append([
                f"vsql SQL, HNSW {label}", f"hnsw.ef_search = {ef}", len(xq), recall, run.qps,
                1000 / run.qps, kernel, f"{run.qps / kernel:.2f}" if kernel else None,
            ])
            if statement is sql:
                points.append(Measurement("sql", "vsql SQL HNSW", f"ef_search={ef}", recall, run.qps,
                                          build_s, family="hnsw"))
    con.execute("RESET hnsw.ef_search")

    con.execute("SET vsql.enable_index_scan = off")
    run = run_queries(con, data, sql, data.xq[:n_exact])
    con.execute("RESET vsql.enable_index_scan")
    recall = recall_at_k(run.rows, data.truth_rows[:n_exact])
    table.rows.append(["DuckDB exact (vsql SQL)", "vsql.enable_index_scan = off", n_exact,
                       recall, run.qps, 1000 / run.qps, None, None])
    points.append(Measurement("sql", "DuckDB exact SQL", "index scan off", recall, run.qps))
    table.notes.append(
        f"CREATE INDEX ... USING hnsw (embedding vector_cosine_ops) INCLUDE (id) (m=16, ef_construction=64, "
        f"{BUILD_THREADS} numba threads): {build_s:.1f} s"
    )
    table.notes.append(
        "index-only scan: the index holds `id`, so vsql answers without DuckDB; with `name` the "
        f"statement is `{with_name}` and DuckDB fetches the 10 rows by rowid"
    )
    table.notes.append(
        "kernel queries/s: `HnswIndex.search_batch` on 1 thread at the same ef, from the "
        "kernel table"
    )
    return table, points


def bench_parameter_cost(con: vsql.Connection, q: np.ndarray, repeats: int) -> Table:
    """Time a 384-d vector parameter through vsql and plain DuckDB, against ``SELECT 1``."""
    cases = [
        ("vsql", "SELECT 1", None, con.execute),
        ("vsql", "SELECT len(?::FLOAT[384])", [q], con.execute),
        ("duckdb", "SELECT 1", None, con.duckdb.execute),
        ("duckdb", "SELECT len(?::FLOAT[384])", [q], con.duckdb.execute),
    ]
    table = Table(
        "Cost of a 384-d vector parameter",
        ["through", "statement", "calls", "ms/call", "extra ms over SELECT 1"],
    )
    baseline: dict[str, float] = {}
    for through, sql, parameters, execute in cases:
        def call(execute=execute, sql=sql, parameters=parameters):
            if parameters is None:
                return execute(sql).fetchall()
            return execute(sql, parameters).fetchall()

        call()
        _, seconds = best_of(TIMING_ROUNDS, lambda call=call: [call() for _ in range(repeats)])
        ms = 1000 * seconds / repeats
        baseline.setdefault(through, ms)
        extra = ms - baseline[through] if parameters is not None else None
        table.rows.append([through, f"`{sql}`", repeats, ms, extra])
    table.notes.append("q is a float32 numpy array; `duckdb` is `con.duckdb.execute`, "
                       "DuckDB's own connection inside vsql")
    return table


# -- filtered search ------------------------------------------------------------------------


def exact_filtered(con: vsql.Connection, data: Dataset, where: str, xq: np.ndarray):
    """Return the rows matching ``where`` and each query's exact cosine top K among them."""
    if where:
        ids = np.array([row[0] for row in con.duckdb.execute(
            f"SELECT id FROM packages WHERE {where}").fetchall()], dtype=np.int64)
        matching = np.sort(data.rows_of_ids(ids))
    else:
        matching = np.arange(data.n)
    xb = data.xb[matching]
    xb = xb / np.linalg.norm(xb, axis=1, keepdims=True)
    queries = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    top = common.exact_top_k(queries, xb, K)
    return matching, [matching[row] for row in top]


def chosen_strategy(con: vsql.Connection, sql: str, q: np.ndarray) -> str:
    """Return vsql's plan of ``sql`` from EXPLAIN, shortened to the strategy it names."""
    lines = [row[1] for row in con.execute("EXPLAIN " + sql, [q]).fetchall()
             if row[0] == "vsql_plan"]
    for line in lines:
        if line.startswith("Filter:"):
            return line.split("): ", 1)[-1].split(" (")[0]
    return lines[0].split(" on ")[0] if lines else "(no vsql_plan row)"


def bench_filters(
    con: vsql.Connection, data: Dataset, filters: Sequence[str], n_queries: int, n_exact: int,
) -> tuple[Table, list[Measurement], dict[str, list[np.ndarray]]]:
    """Run the kNN statement with each filter, through the HNSW index and as an exact scan.

    Returns the table, the plot points and each filter's exact top K (for the vss benchmark).
    """
    ef = int(con.execute("SHOW hnsw.ef_search").fetchall()[0][0])
    table = Table(
        f"Filtered search: `{knn_sql('<filter>')}`, hnsw.ef_search = {ef}",
        ["filter", "selectivity", "recall@10", "rows min", "rows mean", "vsql q/s",
         "exact q/s", "vsql / exact", "exact recall", "strategy"],
    )
    points, truths = [], {}
    xq = data.xq[:n_queries]
    for where in filters:
        matching, truth = exact_filtered(con, data, where, xq)
        truths[where] = truth
        sql = knn_sql(where)
        run = run_queries(con, data, sql, xq)
        recall = recall_at_k(run.rows, truth)
        con.execute("SET vsql.enable_index_scan = off")
        exact = run_queries(con, data, sql, xq[:n_exact])
        con.execute("RESET vsql.enable_index_scan")
        exact_recall = recall_at_k(exact.rows, truth[:n_exact])
        counts = run.row_counts()
        table.rows.append([
            filter_label(where), f"{len(matching) / data.n:.2%}", recall, int(counts.min()),
            float(counts.mean()), run.qps, exact.qps, f"{run.qps / exact.qps:.1f}x",
            exact_recall, chosen_strategy(con, sql, xq[0]),
        ])
        points.append(Measurement("filtered", f"vsql SQL filtered: {filter_label(where)}",
                                  f"ef_search={ef}", recall, run.qps, family="hnsw"))
    table.notes += [
        f"vsql q/s over {len(xq)} queries; exact q/s (`SET vsql.enable_index_scan = off`, "
        f"DuckDB's own scan) over the first {n_exact} of them",
        "recall@10 against numpy's exact cosine top 10 among the rows DuckDB says match; "
        "exact recall is the same check applied to DuckDB's exact answers",
        "rows: rows returned per query; every query should return min(10, matching rows)",
    ]
    return table, points, truths


# -- IVF through SQL ------------------------------------------------------------------------


def bench_ivf_sql(
    con: vsql.Connection, data: Dataset, lists: int, probes: Sequence[int], n_queries: int,
    kernel_qps: dict[int, float],
) -> tuple[Table, list[Measurement]]:
    """Replace the HNSW index by IVF-Flat and time the kNN statement at each probes value."""
    con.execute(f"DROP INDEX {HNSW_INDEX}")
    build_s = create_index(
        con, f"CREATE INDEX {IVF_INDEX} ON packages USING ivfflat "
             f"(embedding vector_cosine_ops) WITH (lists = {lists})",
    )
    sql = knn_sql("")
    xq, truth = data.xq[:n_queries], data.truth_rows[:n_queries]
    table = Table(
        f"IVF-Flat through SQL (lists = {lists})",
        ["setting", "queries", "recall@10", "queries/s", "kernel queries/s", "SQL / kernel"],
    )
    points = []
    for nprobe in probes:
        con.execute(f"SET ivfflat.probes = {nprobe}")
        run = run_queries(con, data, sql, xq)
        recall = recall_at_k(run.rows, truth)
        kernel = kernel_qps.get(nprobe)
        table.rows.append([f"ivfflat.probes = {nprobe}", len(xq), recall, run.qps, kernel,
                           f"{run.qps / kernel:.2f}" if kernel else None])
        points.append(Measurement("sql", "vsql SQL IVF-Flat", f"probes={nprobe}", recall,
                                  run.qps, build_s, family="ivfflat"))
    con.execute("RESET ivfflat.probes")
    table.notes.append(f"CREATE INDEX ... USING ivfflat ({BUILD_THREADS} numba threads): "
                       f"{build_s:.1f} s")
    return table, points


# -- DuckDB vss -----------------------------------------------------------------------------


def vss_unavailable_reason(python: Path) -> str | None:
    """Return why the vss benchmark cannot run, or None when it can."""
    if not python.exists():
        return (f"no Python at {python}; duckdb-extension-vss 1.5.5 needs duckdb 1.5.5, so it "
                "runs in its own virtual environment (see benchmarks/README.md)")
    check = subprocess.run(
        [str(python), "-c", "import duckdb, duckdb_extension_vss, numpy, pyarrow"],
        capture_output=True, text=True,
    )
    if check.returncode != 0:
        return f"{python} cannot import duckdb_extension_vss: {check.stderr.strip()[-200:]}"
    return None


def bench_vss(
    data: Dataset, ef_values: Sequence[int], filter_ef: int, n_queries: int,
    truths: dict[str, list[np.ndarray]], python: Path = VSS_PYTHON,
) -> tuple[Table, list[Measurement]]:
    """Time DuckDB's vss HNSW in a subprocess (see ``vss_worker.py``) and score its results."""
    table = Table(
        "DuckDB vss (HNSW index, `array_cosine_distance`, separate duckdb 1.5.5 process)",
        ["filter", "query vector", "hnsw_ef_search", "recall@10", "rows min", "rows mean",
         "queries/s", "index scan in plan"],
    )
    reason = vss_unavailable_reason(python)
    if reason is not None:
        table.rows.append([f"DuckDB vss: not available ({reason})"] + [None] * 7)
        return table, []

    request = {"path": str(data.path), "queries": n_queries, "m": 16, "ef_construction": 64,
               "rounds": TIMING_ROUNDS,
               "ef_values": list(ef_values), "filters": [f for f in truths if f],
               "filter_ef": filter_ef}
    worker = Path(__file__).with_name("vss_worker.py")
    done = subprocess.run([str(python), str(worker)], input=json.dumps(request),
                          capture_output=True, text=True, timeout=VSS_TIMEOUT_S)
    if done.returncode != 0:
        table.rows.append([f"DuckDB vss: failed ({done.stderr.strip()[-300:]})"] + [None] * 7)
        return table, []
    result = json.loads(done.stdout)

    points = []
    for run in result["runs"]:
        rows = [data.rows_of_ids(ids) for ids in run["ids"]]
        where = run["filter"]
        truth = truths[where][:n_queries] if where else data.truth_rows[:n_queries]
        recall = recall_at_k(rows, truth)
        qps = len(rows) / run["seconds"]
        counts = np.array([len(found) for found in rows])
        table.rows.append([filter_label(where), run["form"], run["ef"], recall,
                           int(counts.min()), float(counts.mean()), qps, run["uses_index"]])
        method = "DuckDB vss HNSW" if not where else f"DuckDB vss filtered: {where}"
        if run["form"] == "parameter":
            continue  # the plot shows the index's speed, not duckdb 1.5's parameter binding
        points.append(Measurement("vss", method, f"ef_search={run['ef']}", recall, qps,
                                  result["build_s"], family="hnsw", is_peer=True))
    table.notes.append(
        f"duckdb {result['duckdb']} with vss, {result['threads']} DuckDB threads; CREATE INDEX "
        f"... USING HNSW (M=16, ef_construction=64): {result['build_s']:.1f} s"
    )
    table.notes.append("unfiltered recall against the truth file; filtered recall against the "
                       "same exact filtered answers as the vsql table")
    table.notes.append(
        "query vector: `literal` sends it as SQL text `'[...]'::FLOAT[384]`; `parameter` binds "
        "a float32 numpy array, which costs duckdb 1.5.5 about 28 ms per call on this machine "
        "(duckdb 2.0: see the parameter table)"
    )
    return table, points


def ivf_lists(n: int) -> int:
    """Return the number of IVF lists used for ``n`` rows: about sqrt(n)."""
    return max(1, round(math.sqrt(n)))
