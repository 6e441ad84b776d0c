"""PEP 249 conformance of vsql's connection and cursor, and parameter binding of vectors."""

import numpy as np
import pyarrow as pa
import pytest

import vsql


@pytest.fixture
def con():
    connection = vsql.connect()
    connection.execute("CREATE TABLE items (id INTEGER, name VARCHAR, embedding FLOAT[3])")
    connection.execute(
        "INSERT INTO items VALUES (1, 'a', [1, 0, 0]), (2, 'b', [0, 1, 0]), (3, 'c', [0, 0, 1])"
    )
    yield connection
    connection.close()


def test_module_globals():
    assert vsql.apilevel == "2.0"
    assert vsql.threadsafety == 1
    assert vsql.paramstyle == "qmark"


def test_exception_hierarchy():
    assert issubclass(vsql.DatabaseError, vsql.Error)
    for cls in (vsql.DataError, vsql.OperationalError, vsql.IntegrityError, vsql.InternalError,
                vsql.ProgrammingError, vsql.NotSupportedError):
        assert issubclass(cls, vsql.DatabaseError)
    assert issubclass(vsql.InterfaceError, vsql.Error)
    assert issubclass(vsql.Error, Exception)


def test_fetch_methods(con):
    cur = con.cursor()
    cur.execute("SELECT id, name FROM items ORDER BY id")
    assert cur.description[0][0] == "id"
    assert cur.description[1][0] == "name"
    assert cur.rowcount == -1
    assert cur.fetchone() == (1, "a")
    assert cur.fetchmany(1) == [(2, "b")]
    assert cur.fetchall() == [(3, "c")]
    assert cur.fetchone() is None
    assert cur.fetchall() == []


def test_fetchmany_uses_arraysize(con):
    cur = con.cursor()
    cur.arraysize = 2
    cur.execute("SELECT id FROM items ORDER BY id")
    assert cur.fetchmany() == [(1,), (2,)]


def test_iteration(con):
    assert [row[0] for row in con.execute("SELECT id FROM items ORDER BY id")] == [1, 2, 3]


def test_rowcount_of_dml(con):
    cur = con.execute("UPDATE items SET name = 'z' WHERE id >= 2")
    assert cur.rowcount == 2


def test_two_cursors_keep_their_rows(con):
    first = con.cursor().execute("SELECT id FROM items ORDER BY id")
    assert first.fetchone() == (1,)
    second = con.cursor().execute("SELECT count(*) FROM items")
    assert second.fetchall() == [(3,)]
    assert first.fetchall() == [(2,), (3,)]


def test_closed_cursor_raises(con):
    cur = con.cursor()
    cur.close()
    with pytest.raises(vsql.InterfaceError, match="cursor is closed"):
        cur.execute("SELECT 1")


def test_closed_connection_raises():
    connection = vsql.connect()
    connection.close()
    with pytest.raises(vsql.InterfaceError, match="connection is closed"):
        connection.cursor()


def test_fetch_before_execute_raises(con):
    with pytest.raises(vsql.InterfaceError, match="no result to fetch"):
        con.cursor().fetchall()


def test_fetch_arrow_table(con):
    table = con.execute("SELECT id, embedding FROM items ORDER BY id").fetch_arrow_table()
    assert isinstance(table, pa.Table)
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert table.column("embedding").to_pylist()[0] == [1.0, 0.0, 0.0]


def test_fetch_record_batch(con):
    reader = con.execute("SELECT range AS i FROM range(10)").fetch_record_batch(4)
    sizes = [batch.num_rows for batch in reader]
    assert sum(sizes) == 10
    assert max(sizes) <= 4


def test_fetchdf_without_pandas(con):
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(vsql.NotSupportedError, match="pip install pandas"):
            con.execute("SELECT 1").fetchdf()
    else:
        assert con.execute("SELECT 1 AS x").fetchdf()["x"].tolist() == [1]


def test_syntax_error_is_programming_error(con):
    with pytest.raises(vsql.ProgrammingError):
        con.execute("SELEC 1")


def test_unknown_table_is_programming_error(con):
    with pytest.raises(vsql.ProgrammingError, match="missing_table"):
        con.execute("SELECT * FROM missing_table")


def test_constraint_violation_is_integrity_error():
    connection = vsql.connect()
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    connection.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(vsql.IntegrityError):
        connection.execute("INSERT INTO t VALUES (1)")


def test_conversion_error_is_data_error(con):
    with pytest.raises(vsql.DataError):
        con.execute("SELECT 'abc'::INTEGER")


def test_rollback_discards(con):
    con.begin()
    con.execute("INSERT INTO items VALUES (4, 'd', [1, 1, 1])")
    con.rollback()
    assert con.execute("SELECT count(*) FROM items").fetchone() == (3,)


def test_commit_keeps(con):
    con.execute("BEGIN")
    con.execute("INSERT INTO items VALUES (4, 'd', [1, 1, 1])")
    con.commit()
    assert con.execute("SELECT count(*) FROM items").fetchone() == (4,)


def test_failed_statement_keeps_transaction_work_until_rollback(con):
    con.execute("BEGIN")
    con.execute("INSERT INTO items VALUES (4, 'd', [1, 1, 1])")
    with pytest.raises(vsql.DataError, match="NaN not allowed in vector"):
        con.execute("INSERT INTO items VALUES (?, ?, ?)", [5, "e", [float("nan"), 0.0, 0.0]])
    assert con.execute("SELECT count(*) FROM items").fetchone() == (4,)
    con.rollback()
    assert con.execute("SELECT count(*) FROM items").fetchone() == (3,)


def test_executemany_inserts_all(con):
    rows = [(10 + i, f"n{i}", [float(i), 0.0, 1.0]) for i in range(5)]
    con.executemany("INSERT INTO items VALUES (?, ?, ?)", rows)
    assert con.execute("SELECT count(*) FROM items").fetchone() == (8,)


def test_executemany_failure_inserts_none(con):
    rows = [(10, "ok", [1.0, 2.0, 3.0]), (11, "bad", [1.0, 2.0]), (12, "ok", [1.0, 2.0, 3.0])]
    with pytest.raises(vsql.DataError, match="expected 3 dimensions, not 2"):
        con.executemany("INSERT INTO items VALUES (?, ?, ?)", rows)
    assert con.execute("SELECT count(*) FROM items").fetchone() == (3,)


def test_failing_multi_row_insert_inserts_none(con):
    with pytest.raises(vsql.DataError):
        con.execute("INSERT INTO items VALUES (7, 'x', [1, 2, 3]), (8, 'y', [1, 2])")
    assert con.execute("SELECT count(*) FROM items").fetchone() == (3,)


def test_context_manager_commits(tmp_path):
    path = tmp_path / "ctx.duckdb"
    with vsql.connect(str(path)) as connection:
        connection.execute("BEGIN")
        connection.execute("CREATE TABLE t AS SELECT 42 AS x")
    with vsql.connect(str(path)) as connection:
        assert connection.execute("SELECT x FROM t").fetchone() == (42,)


def test_read_only_connection(tmp_path):
    path = tmp_path / "ro.duckdb"
    with vsql.connect(str(path)) as connection:
        connection.execute("CREATE TABLE t AS SELECT 1 AS x")
    with vsql.connect(str(path), read_only=True) as connection:
        assert connection.execute("SELECT x FROM t").fetchone() == (1,)
        with pytest.raises(vsql.Error):
            connection.execute("INSERT INTO t VALUES (2)")


@pytest.mark.parametrize(
    "value",
    [
        [0.0, 1.0, 0.0],
        (0.0, 1.0, 0.0),
        np.array([0, 1, 0], dtype=np.float32),
        np.array([0, 1, 0], dtype=np.float64),
        pa.array([0.0, 1.0, 0.0], pa.float32()),
    ],
    ids=["list", "tuple", "float32", "float64", "pyarrow"],
)
def test_vector_parameter_kinds(con, value):
    sql = "SELECT id FROM items ORDER BY l2_distance(embedding, ?) LIMIT 1"
    assert con.execute(sql, [value]).fetchall() == [(2,)]


def test_numbered_parameters(con):
    sql = "SELECT id, l2_distance(embedding, $1) AS d FROM items WHERE id <> $2 ORDER BY d LIMIT 1"
    assert con.execute(sql, [[0.0, 0.0, 1.0], 3]).fetchall()[0][0] in (1, 2)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1.0, float("nan"), 0.0], "NaN not allowed in vector"),
        (np.array([1.0, np.inf, 0.0]), "infinite value not allowed in vector"),
    ],
)
def test_non_finite_parameter_rejected(con, value, message):
    with pytest.raises(vsql.DataError, match=message):
        con.execute("SELECT l2_distance(embedding, ?) FROM items", [value])


def test_parameters_with_several_statements_rejected(con):
    with pytest.raises(vsql.ProgrammingError, match="one statement only"):
        con.execute("SELECT ?; SELECT ?", [1, 2])


def test_several_statements_keep_last_result(con):
    assert con.execute("CREATE TABLE t2 (x INTEGER); INSERT INTO t2 VALUES (5); SELECT x FROM t2").fetchall() == [(5,)]
