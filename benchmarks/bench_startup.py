"""The first query of a fresh process, on an index stored in the database file.

A user's script, a notebook kernel or a CLI call opens the file and runs one query. The user
waits for the process's start-up and its first query, which starts loading the stored index.
The table also shows when the index is ready and how fast a query on it then is. Each run is
a new Python process, after one untimed run so that numba's cache and the operating system's
page cache are warm (the state of any second run on a machine).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import vsql
from benchmarks.bench_sql import create_index
from benchmarks.common import Dataset, Table
from vsql import sample

SQL = "SELECT id, embedding <=> ? AS distance FROM packages ORDER BY distance LIMIT 10"
INDEX_SQL = "CREATE INDEX packages_hnsw ON packages USING hnsw (embedding vector_cosine_ops) INCLUDE (id)"

# Runs in the fresh process; prints its timings as JSON.
CHILD = f"""
import json, sys, time
started = time.perf_counter()
import numpy as np
import vsql
imported = time.perf_counter()
con = vsql.connect(sys.argv[1])
connected = time.perf_counter()
xq = np.load(sys.argv[2])
before = time.perf_counter()
con.execute({SQL!r}, [xq[0]]).fetchall()
first = time.perf_counter()
con.execute({SQL!r}, [xq[1]]).fetchall()
second = time.perf_counter()
# EXPLAIN waits for the index to load; the query after it runs on the index.
plan = con.execute("EXPLAIN " + {SQL!r}, [xq[2]]).fetchall()[0][1]
ready = time.perf_counter()
con.execute({SQL!r}, [xq[3]]).fetchall()
indexed = time.perf_counter()
print(json.dumps({{"import": imported - started, "connect": connected - imported,
                  "first": first - before, "second": second - first, "ready": ready - before,
                  "indexed": indexed - ready, "plan": plan}}))
"""


def run_child(database: Path, queries: Path) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(database), str(queries)], capture_output=True, text=True, check=True
    )
    timings = json.loads(done.stdout.strip().splitlines()[-1])
    timings["process"] = time.perf_counter() - started
    return timings


def bench_first_query(data: Dataset, runs: int = 5) -> Table:
    """Time ``runs`` fresh processes that open a stored index and run two queries."""
    with tempfile.TemporaryDirectory(prefix="vsql-bench-") as directory:
        database, queries = Path(directory) / "packages.duckdb", Path(directory) / "xq.npy"
        with vsql.connect(str(database)) as con:
            sample.create_table(con, "packages", data.path)
            create_index(con, INDEX_SQL)
        np.save(queries, data.xq[:4])
        run_child(database, queries)  # warms numba's cache and the page cache
        measured = [run_child(database, queries) for _ in range(runs)]

    table = Table(
        f"First query of a fresh process (`{SQL}`, stored index of {data.n:,} rows)",
        ["run", "import vsql (s)", "vsql.connect (s)", "first query (s)", "second query (ms)",
         "index ready after (s)", "query on the index (ms)"],
    )
    for number, timings in enumerate(measured, start=1):
        assert timings["plan"].startswith("HNSW Index Only Scan"), timings["plan"]
        table.rows.append([
            number, timings["import"], timings["connect"], timings["first"], 1000 * timings["second"],
            timings["ready"], 1000 * timings["indexed"],
        ])
    median = statistics.median(t["first"] for t in measured)
    table.notes.append(f"median first query: {median:.3f} s over {runs} processes (target: under 0.5 s)")
    table.notes.append(
        "the first query starts loading the stored index on a second DuckDB connection: the graph, "
        "then one scan of the table's vectors that checks the index is current and supplies its "
        "rows. Until the load ends, queries run as DuckDB's exact scan"
    )
    table.notes.append("index ready after: from the first query until an EXPLAIN, which waits for the load, returns")
    return table
