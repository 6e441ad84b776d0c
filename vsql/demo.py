"""Semantic search over real PyPI package summaries, end to end: ``python -m vsql.demo``.

The demo creates (or reuses) a database file, loads the bundled 20,000-row sample of the
pypi-minilm dataset (or the full 100,000 rows with ``--full``), builds an HNSW index and runs a
few questions in SQL, printing each result with its timing. It ends with recall@10 of the index
against exact search and the commands that open the same file in the ``vsql`` shell and in the
plain DuckDB CLI.

    python -m vsql.demo [--db PATH] [--full] [--queries N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pyarrow.parquet as pq

import vsql
from vsql import sample

DEFAULT_DATABASE = "vsql_demo.duckdb"
TABLE = "packages"
INDEX = "packages_hnsw"
K = 10
DEFAULT_QUERIES = 50
# Packages whose neighbours make a recognisable first question; the first one present is used,
# else the most downloaded package in the table. The bundled sample has none of the first five.
REFERENCE_CANDIDATES = (
    "duckdb", "numpy", "pandas", "requests", "sqlalchemy",
    "pydantic", "matplotlib", "gitpython", "twine", "neo4j",
)
# Cosine distance under which two summaries count as near-duplicates: for all-MiniLM-L6-v2,
# 0.05 is a cosine similarity of 0.95, which in the sample joins rewordings of one sentence.
DUPLICATE_DISTANCE = 0.05
# The near-duplicate search runs one kNN query per package of this year, to stay within seconds.
DUPLICATE_YEAR = 2022
MAX_TABLE_WIDTH = 120
# Text columns before the last one (package names) are cut to this width.
MAX_NAME_WIDTH = 32


@dataclass
class QueryResult:
    """One question of the demo: its SQL, column names, rows and wall time in seconds."""

    title: str
    sql: str
    columns: list[str]
    rows: list[tuple]
    seconds: float


@dataclass
class DemoResults:
    """What the demo ran and measured, for callers such as the tests."""

    dataset_dir: Path
    rows_loaded: int
    reference: str
    questions: dict[str, QueryResult] = field(default_factory=dict)
    plan: list[str] = field(default_factory=list)
    recall: float = float("nan")
    n_queries: int = 0


# -- output ----------------------------------------------------------------------------------


def _format_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def format_table(columns: Sequence[str], rows: Sequence[tuple], width: int) -> list[str]:
    """Lay ``rows`` out as aligned text columns at most ``width`` characters wide.

    Numbers are right-aligned. Columns before the last are cut to ``MAX_NAME_WIDTH``, and the
    last column (the summary in every demo query) to the width left. Cut text ends with "...".
    """
    cells = [[_format_value(value) for value in row] for row in rows]
    widths = [min(MAX_NAME_WIDTH, max([len(name)] + [len(row[i]) for row in cells]))
              for i, name in enumerate(columns)]
    widths[-1] = max([len(columns[-1])] + [len(row[-1]) for row in cells])
    fixed = sum(widths[:-1]) + 2 * (len(columns) - 1)
    widths[-1] = max(len(columns[-1]), min(widths[-1], width - fixed))
    numeric = [all(isinstance(row[i], (int, float)) for row in rows if row[i] is not None)
               for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        parts = []
        for i, text in enumerate(values):
            if len(text) > widths[i]:
                text = text[: widths[i] - 3] + "..."
            parts.append(text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    return [line(columns), line(["-" * w for w in widths])] + [line(row) for row in cells]


class Printer:
    """Writes the demo's text: headings, result tables and notes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.width = min(shutil.get_terminal_size(fallback=(100, 24)).columns, MAX_TABLE_WIDTH)

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def heading(self, text: str) -> None:
        self.line()
        self.line(f"== {text}")

    def result(self, result: QueryResult) -> None:
        self.heading(f"{result.title}  ({result.seconds * 1000:.1f} ms, {len(result.rows)} rows)")
        for text in format_table(result.columns, result.rows, self.width - 2):
            self.line("  " + text)


# -- setup -----------------------------------------------------------------------------------


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _table_rows(con, name: str) -> int | None:
    """Return the row count of table ``name``, or None when there is no such table."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?", [name]
    ).fetchall()[0][0]
    if not found:
        return None
    return con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]


def load_table(con, dataset_dir: Path, printer: Printer) -> int:
    """Create table ``packages`` from ``dataset_dir``, reusing an existing one of the same size."""
    expected = pq.read_metadata(dataset_dir / "base.parquet").num_rows
    existing = _table_rows(con, TABLE)
    if existing == expected:
        printer.line(f"Reusing table {TABLE} ({existing:,} rows).")
        return existing
    if existing is not None:
        printer.line(f"Replacing table {TABLE} ({existing:,} rows) with the {expected:,} rows "
                     f"of {dataset_dir}.")
        con.execute(f"DROP TABLE {TABLE}")
    started = time.perf_counter()
    rows = sample.create_table(con, TABLE, dataset_dir)
    printer.line(f"Loaded {rows:,} package summaries with 384-dimensional embeddings from "
                 f"{dataset_dir} in {time.perf_counter() - started:.1f} s.")
    return rows


def ensure_index(con, printer: Printer) -> None:
    """Create the HNSW index on ``packages.embedding`` unless the file already has it."""
    if con.indexes.get(INDEX) is not None:
        printer.line(f"Reusing index {INDEX} stored in the database file.")
        return
    sql = f"CREATE INDEX {INDEX} ON {TABLE} USING hnsw (embedding vector_cosine_ops)"
    printer.line(sql)
    started = time.perf_counter()
    con.execute(sql)
    printer.line(f"Built index {INDEX} in {time.perf_counter() - started:.1f} s.")


def pick_reference(con) -> str:
    """Return the first package of ``REFERENCE_CANDIDATES`` in the table, else the most popular."""
    placeholders = ", ".join("?" for _ in REFERENCE_CANDIDATES)
    present = {row[0] for row in con.execute(
        f"SELECT name FROM {TABLE} WHERE name IN ({placeholders})", list(REFERENCE_CANDIDATES)
    ).fetchall()}
    for name in REFERENCE_CANDIDATES:
        if name in present:
            return name
    rows = con.execute(
        f"SELECT name FROM {TABLE} WHERE popularity_rank IS NOT NULL "
        "ORDER BY popularity_rank LIMIT 1"
    ).fetchall()
    if not rows:
        rows = con.execute(f"SELECT name FROM {TABLE} ORDER BY id LIMIT 1").fetchall()
    return rows[0][0]


# -- questions -------------------------------------------------------------------------------


def run_query(con, title: str, sql: str) -> QueryResult:
    started = time.perf_counter()
    cursor = con.execute(sql)
    rows = cursor.fetchall()
    seconds = time.perf_counter() - started
    return QueryResult(title, sql, [d[0] for d in cursor.description], rows, seconds)


def similar_sql(reference: str, where: str = "", extra_column: str = "") -> str:
    """Return the kNN query for the packages nearest to ``reference``'s summary.

    The query vector is a scalar subquery over ``packages p``. Its columns carry the alias, so
    the planner sees that the subquery does not read the outer row and can use the index.
    """
    query_vector = f"(SELECT p.embedding FROM {TABLE} p WHERE p.name = {_sql_string(reference)})"
    columns = "name, embedding <=> " + query_vector + " AS distance"
    if extra_column:
        columns += f", {extra_column}"
    return (f"SELECT {columns}, summary FROM {TABLE}"
            + (f" WHERE {where}" if where else "")
            + f" ORDER BY distance LIMIT {K}")


def near_duplicates_sql() -> str:
    """Return the query for pairs of summaries closer than ``DUPLICATE_DISTANCE``.

    One LATERAL kNN query per package released in ``DUPLICATE_YEAR`` finds its two nearest rows:
    itself and its nearest other package. A pair found from both sides is listed once.
    """
    return f"""SELECT least(a.name, n.name) AS package, greatest(a.name, n.name) AS near_duplicate,
       min(n.distance) AS distance, min(a.summary) AS summary
FROM {TABLE} a, LATERAL (
    SELECT b.id, b.name, b.embedding <=> a.embedding AS distance
    FROM {TABLE} b ORDER BY distance LIMIT 2
) n
WHERE a.released BETWEEN DATE '{DUPLICATE_YEAR}-01-01' AND DATE '{DUPLICATE_YEAR}-12-31'
  AND n.id <> a.id AND n.distance < {DUPLICATE_DISTANCE}
GROUP BY package, near_duplicate
ORDER BY distance, package
LIMIT {K}"""


def ask_questions(con, reference: str, printer: Printer) -> dict[str, QueryResult]:
    questions = {
        "similar": run_query(
            con, f"The {K} packages whose summaries are nearest to {reference}'s",
            similar_sql(reference)),
        "recent": run_query(
            con, "The same, among packages released since 2025",
            similar_sql(reference, "released >= DATE '2025-01-01'", "released")),
        "popular": run_query(
            con, "The same, among the most downloaded packages (popularity_rank IS NOT NULL)",
            similar_sql(reference, "popularity_rank IS NOT NULL", "popularity_rank")),
    }
    printer.line()
    printer.line("The first question in SQL:")
    printer.line("  " + questions["similar"].sql)
    for result in questions.values():
        printer.result(result)

    duplicates = run_query(
        con, f"Near-duplicate summaries (cosine distance < {DUPLICATE_DISTANCE}) among packages "
        f"released in {DUPLICATE_YEAR}", near_duplicates_sql())
    printer.result(duplicates)
    questions["duplicates"] = duplicates
    return questions


def show_plan(con, reference: str, printer: Printer) -> list[str]:
    """Print vsql's lines of EXPLAIN for the filtered question and return them."""
    sql = similar_sql(reference, "released >= DATE '2025-01-01'", "released")
    rows = con.execute("EXPLAIN " + sql).fetchall()
    plan = [value for key, value in rows if key == "vsql_plan"]
    printer.heading("EXPLAIN of the query on recent packages (vsql's part of the plan)")
    for text in plan:
        for line in str(text).splitlines():
            printer.line("  " + line)
    return plan


# -- recall ----------------------------------------------------------------------------------


def _knn_ids_sql(target: str) -> str:
    return f"""CREATE OR REPLACE TEMP TABLE {target} AS
SELECT q.id AS query_id, n.id
FROM demo_queries q, LATERAL (
    SELECT p.id FROM {TABLE} p ORDER BY p.embedding <=> q.embedding LIMIT {K}
) n"""


def measure_recall(con, dataset_dir: Path, n_queries: int, printer: Printer) -> tuple[float, int]:
    """Compare the index's top 10 with exact search for ``n_queries`` held-out queries.

    Returns recall@10 (the share of the exact top-10 ids the index also returns) and the number
    of queries used.
    """
    queries, _, _ = sample.load_queries(dataset_dir)
    queries = queries.slice(0, n_queries).select(["id", "embedding"])
    con.duckdb.register("demo_queries_arrow", queries)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE demo_queries AS SELECT * FROM demo_queries_arrow")
    finally:
        con.duckdb.unregister("demo_queries_arrow")

    started = time.perf_counter()
    con.execute(_knn_ids_sql("demo_index_ids"))
    index_seconds = time.perf_counter() - started
    con.execute("SET vsql.enable_index_scan = off")
    try:
        started = time.perf_counter()
        con.execute(_knn_ids_sql("demo_exact_ids"))
        exact_seconds = time.perf_counter() - started
    finally:
        con.execute("RESET vsql.enable_index_scan")

    found, total = con.execute(
        "SELECT (SELECT count(*) FROM demo_index_ids JOIN demo_exact_ids USING (query_id, id)), "
        "(SELECT count(*) FROM demo_exact_ids)"
    ).fetchall()[0]
    recall = found / total if total else float("nan")
    n = queries.num_rows
    printer.heading(f"recall@{K} of the index against exact search")
    printer.line(f"  {n} held-out queries: recall@{K} = {recall:.3f}  "
                 f"(index {index_seconds * 1000 / max(n, 1):.1f} ms per query, "
                 f"exact {exact_seconds * 1000 / max(n, 1):.1f} ms per query)")
    printer.line("  Exact search: SET vsql.enable_index_scan = off; "
                 "a wider search: SET hnsw.ef_search = 100")
    return recall, n


# -- main ------------------------------------------------------------------------------------


def print_next_steps(database: str, reference: str, printer: Printer) -> None:
    printer.heading("Next")
    printer.line("  Open the same file in the vsql shell, with pgvector syntax and the index:")
    printer.line(f"    vsql {database}")
    printer.line("  or in the DuckDB CLI, where the distance functions are SQL macros "
                 "(exact search, no index):")
    printer.line(f"    duckdb {database}")
    printer.line(f"    SELECT name FROM {TABLE} ORDER BY cosine_distance(embedding, "
                 f"(SELECT embedding FROM {TABLE} WHERE name = {_sql_string(reference)})) "
                 "LIMIT 5;")
    printer.line("  Runnable SQL lessons are in sql_examples/ of the source repository.")


def run(database: str, dataset_dir: Path, n_queries: int = DEFAULT_QUERIES,
        out: TextIO | None = None) -> DemoResults:
    """Run the whole demo on ``database`` and return what it printed, as values."""
    printer = Printer(out or sys.stdout)
    printer.line(f"vsql {vsql.__version__} demo: semantic search over PyPI package summaries "
                 f"in {database}")
    con = vsql.connect(database)
    try:
        rows = load_table(con, dataset_dir, printer)
        ensure_index(con, printer)
        reference = pick_reference(con)
        results = DemoResults(dataset_dir, rows, reference)
        results.questions = ask_questions(con, reference, printer)
        results.plan = show_plan(con, reference, printer)
        if n_queries > 0:
            results.recall, results.n_queries = measure_recall(con, dataset_dir, n_queries, printer)
        print_next_steps(database, reference, printer)
    finally:
        con.close()
    return results


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vsql.demo",
        description="Semantic search over real PyPI package summaries with vsql.",
    )
    parser.add_argument("--db", default=DEFAULT_DATABASE,
                        help=f"database file to create or reuse (default: {DEFAULT_DATABASE})")
    parser.add_argument("--full", action="store_true",
                        help="load the full 100,000-row dataset from $VSQL_DATASET_DIR or "
                             "../shared/datasets/pypi-minilm instead of the bundled sample")
    parser.add_argument("--queries", type=int, default=DEFAULT_QUERIES,
                        help=f"held-out queries for the recall measurement, 0 to skip it "
                             f"(default: {DEFAULT_QUERIES})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_arguments(argv)
    started = time.perf_counter()
    try:
        dataset_dir = sample.dataset_path(full=True if options.full else False)
        run(options.db, dataset_dir, options.queries)
    except vsql.Error as error:
        sys.stderr.write(f"Error: {error}\n")
        return 1
    print(f"\nDemo finished in {time.perf_counter() - started:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
