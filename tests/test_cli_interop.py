"""Database files written from Python, read by the DuckDB command-line client.

The client on PyPI (package duckdb-cli) is a 1.5 release while the Python package is 2.0, so these
tests also check that DEFAULT_STORAGE_VERSION writes files that the older client can open.
"""

import csv
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

import vsql
from udfs.sql_functions import FUNCTION_NAMES, install_functions


def find_cli() -> str | None:
    """Return the duckdb client next to this Python (a virtual environment's bin), else on PATH."""
    beside_python = Path(sys.executable).parent / "duckdb"
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("duckdb")


CLI = find_cli()
pytestmark = pytest.mark.skipif(
    CLI is None, reason="no duckdb command-line client found; install the test extra (duckdb-cli)"
)

QUERY = [1.0, 2.0, 3.0]
SEED = 20240607


def open_database(path: Path):
    """Open `path` through vsql: new files get DEFAULT_STORAGE_VERSION and the functions."""
    return vsql.connect(str(path))


def run_cli(path: Path, sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, "-readonly", "-csv", str(path), "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
    )


def cli_rows(path: Path, sql: str) -> list[list[str]]:
    """Run `sql` in the client and return the CSV rows without the header."""
    result = run_cli(path, sql)
    assert result.returncode == 0, result.stderr
    return list(csv.reader(io.StringIO(result.stdout)))[1:]


def cli_major_version() -> int:
    output = subprocess.run([CLI, "-version"], capture_output=True, text=True, timeout=60).stdout
    match = re.match(r"v?(\d+)\.", output.strip())
    assert match, f"unexpected output of duckdb -version: {output!r}"
    return int(match.group(1))


@pytest.fixture
def xb() -> np.ndarray:
    rng = np.random.default_rng(SEED)
    rows = rng.uniform(-10, 10, size=(20, 3)).astype(np.float32)
    rows[4] = 0  # a zero vector, whose cosine distance is NaN
    rows[9] = rows[8]  # a duplicate row
    return rows


@pytest.fixture
def items_path(tmp_db_path: Path, xb: np.ndarray) -> Path:
    con = open_database(tmp_db_path)
    con.execute("CREATE TABLE items (id INTEGER, v FLOAT[3])")
    for row_id, row in enumerate(xb):
        con.execute("INSERT INTO items VALUES (?, ?)", [row_id, row.tolist()])
    con.close()
    return tmp_db_path


def test_l2_nearest_two(items_path, xb):
    rows = cli_rows(
        items_path,
        "SELECT id, l2_distance(v, [1, 2, 3]::FLOAT[3]) AS distance FROM items "
        "ORDER BY distance, id LIMIT 2",
    )
    distances = np.linalg.norm(xb.astype(np.float64) - np.array(QUERY), axis=1)
    expected_ids = np.lexsort((np.arange(len(xb)), distances))[:2]
    assert [int(row[0]) for row in rows] == expected_ids.tolist()
    for row, row_id in zip(rows, expected_ids, strict=True):
        assert float(row[1]) == pytest.approx(distances[row_id], rel=1e-6)


def test_other_distances(items_path, xb):
    rows = cli_rows(
        items_path,
        "SELECT id, cosine_distance(v, [1, 2, 3]), inner_product(v, [1, 2, 3]),"
        " negative_inner_product(v, [1, 2, 3]), l1_distance(v, [1, 2, 3]) FROM items ORDER BY id",
    )
    assert len(rows) == len(xb)
    q = np.array(QUERY)
    for row, vector in zip(rows, xb.astype(np.float64), strict=True):
        norms = np.linalg.norm(vector) * np.linalg.norm(q)
        inner = float(vector @ q)
        if norms == 0:
            assert row[1] == "nan"
        else:
            assert float(row[1]) == pytest.approx(1 - inner / norms, abs=1e-6)
        assert float(row[2]) == pytest.approx(inner, rel=1e-6, abs=1e-6)
        assert float(row[3]) == pytest.approx(-inner, rel=1e-6, abs=1e-6)
        assert float(row[4]) == pytest.approx(np.sum(np.abs(vector - q)), rel=1e-6)


def test_single_vector_functions(items_path, xb):
    rows = cli_rows(
        items_path,
        "SELECT vector_dims(v), vector_norm(v), l2_normalize(v)[1] FROM items WHERE id = 0",
    )
    vector = xb[0].astype(np.float64)
    assert int(rows[0][0]) == 3
    assert float(rows[0][1]) == pytest.approx(np.linalg.norm(vector), rel=1e-12)
    assert float(rows[0][2]) == pytest.approx(vector[0] / np.linalg.norm(vector), rel=1e-6)


def test_bit_functions(items_path):
    rows = cli_rows(
        items_path, "SELECT hamming_distance('1110', '0111'), jaccard_distance('1110', '0111')"
    )
    assert rows == [["2.0", "0.5"]]


def test_every_function_stored(items_path):
    rows = cli_rows(
        items_path,
        "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'macro'",
    )
    assert set(FUNCTION_NAMES) <= {row[0] for row in rows}


def test_dimension_error_message(items_path):
    result = run_cli(items_path, "SELECT l2_distance(v, [1, 2]) FROM items")
    assert result.returncode != 0
    assert "different vector dimensions 3 and 2" in result.stderr


def test_reopened_file_stays_readable(items_path):
    # DuckDB records the storage version in the file, so a connection opened without the option
    # keeps writing in that version.
    with duckdb.connect(str(items_path)) as con:
        install_functions(con)
        con.execute("INSERT INTO items VALUES (100, [3, 4, 0])")
    rows = cli_rows(items_path, "SELECT vector_norm(v) FROM items WHERE id = 100")
    assert rows == [["5.0"]]


def test_default_storage_rejected_by_older_client(tmp_db_path):
    # The reason DEFAULT_STORAGE_VERSION exists: without it the 1.x client cannot open the file.
    if cli_major_version() >= 2 or int(duckdb.__version__.split(".")[0]) < 2:
        pytest.skip("needs a 1.x client and the 2.x Python package")
    duckdb.connect(str(tmp_db_path)).close()
    result = run_cli(tmp_db_path, "SELECT 1")
    assert result.returncode != 0
    assert "version number" in result.stderr
