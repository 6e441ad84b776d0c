"""Index-only scans: an index with INCLUDE columns returns kNN results that need no other column.

Every result is compared with the same statement run by DuckDB (``vsql.enable_index_scan = off``),
and EXPLAIN shows which path ran.
"""

import duckdb
import numpy as np
import pytest

import vsql

DIM = 10
N = 700


def rows(seed=11):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, DIM)).astype(np.float32)


@pytest.fixture
def con():
    connection = vsql.connect()
    x = rows()
    connection.execute(
        "CREATE TABLE docs (id INTEGER, title VARCHAR, released DATE, score DOUBLE, tags VARCHAR[], "
        f"embedding FLOAT[{DIM}])"
    )
    connection.executemany(
        "INSERT INTO docs VALUES (?, ?, DATE '2020-01-01' + ?::INTEGER, ?, ?, ?)",
        [(i, f"doc {i}", i, i / 7, [f"t{i % 3}"], x[i].tolist()) for i in range(N)],
    )
    connection.execute(
        "CREATE INDEX docs_cos ON docs USING hnsw (embedding vector_cosine_ops) INCLUDE (id, title, released, tags)"
    )
    yield connection
    connection.close()


def plan_line(con, sql, params):
    return [row[1] for row in con.execute("EXPLAIN " + sql, params).fetchall() if row[0] == "vsql_plan"][0]


def both(con, sql, params):
    cursor = con.execute(sql, params)
    got, description = cursor.fetchall(), cursor.description
    con.execute("SET vsql.enable_index_scan = off")
    try:
        cursor = con.execute(sql, params)
        return got, description, cursor.fetchall(), cursor.description
    finally:
        con.execute("RESET vsql.enable_index_scan")


def assert_same(got, want, distance_column):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[:distance_column] + g[distance_column + 1 :] == w[:distance_column] + w[distance_column + 1 :]
        assert g[distance_column] == pytest.approx(w[distance_column], abs=1e-6)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, title, released, embedding <=> ? AS distance FROM docs ORDER BY distance LIMIT 10",
        "SELECT id, embedding <=> ? AS distance FROM docs WHERE id % 10 = 3 ORDER BY distance LIMIT 10",
        "SELECT id, embedding <=> ? AS distance FROM docs WHERE score > 20 AND title LIKE '%1%' "
        "ORDER BY distance LIMIT 10 OFFSET 2",
        "SELECT id, embedding <=> ? AS distance FROM docs WHERE id IN (SELECT 3 * range FROM range(200)) "
        "ORDER BY distance LIMIT 10",
        "SELECT id, embedding <=> ? AS distance FROM docs WHERE id = 12345 ORDER BY distance LIMIT 10",
        "SELECT d.title AS t, d.id, embedding <=> ? AS distance FROM docs AS d ORDER BY distance LIMIT 7 OFFSET 3",
        "SELECT ID, Title AS \"Heading\", embedding <=> ? AS distance FROM docs ORDER BY distance LIMIT 4",
        "SELECT title, cosine_distance(embedding, ?) AS distance FROM docs ORDER BY distance LIMIT 5",
    ],
)
def test_index_only_matches_duckdb(con, sql):
    q = rows(12)[0]
    assert plan_line(con, sql, [q]).startswith("HNSW Index Only Scan using docs_cos on docs (cosine")
    got, description, want, want_description = both(con, sql, [q])
    assert description == want_description
    assert_same(got, want, distance_column=[d[0] for d in description].index("distance"))


def test_limit_and_offset_parameters(con):
    q = rows(12)[1]
    sql = "SELECT id, embedding <=> ? AS distance FROM docs ORDER BY distance LIMIT ? OFFSET ?"
    assert plan_line(con, sql, [q, 4, 2]) == "HNSW Index Only Scan using docs_cos on docs (cosine, ef_search=80, k=$2 + $3)"
    for limit, offset in [(4, 2), (None, 650), (0, 0)]:
        got, _, want, _ = both(con, sql, [q, limit, offset])
        assert [r[0] for r in got] == [r[0] for r in want]


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("SELECT id, score, embedding <=> ? AS distance FROM docs ORDER BY distance LIMIT 5", "score is not included"),
        ("SELECT id, embedding <=> ? FROM docs ORDER BY 2 LIMIT 5", "an unnamed distance"),
        ("SELECT id + 1 AS n FROM docs ORDER BY embedding <=> ? LIMIT 5", "an expression"),
        ("SELECT * FROM (SELECT id FROM docs ORDER BY embedding <=> ? LIMIT 5)", "a subquery"),
        ("SELECT id FROM docs ORDER BY embedding <=> ? DESC LIMIT 5", "farthest first"),
        ("SELECT id, tags, embedding <=> ? AS d FROM docs ORDER BY d LIMIT 5", "a LIST column"),
        ("SELECT id FROM docs AS a WHERE EXISTS (SELECT 1 FROM docs AS b WHERE b.id = a.id + 1) "
         "ORDER BY embedding <=> ? LIMIT 5", "a correlated filter"),
    ],
)
def test_other_shapes_use_the_ordinary_index_scan(con, sql, why):
    q = rows(12)[2]
    assert "Index Only" not in plan_line(con, sql, [q]), why
    got, _, want, _ = both(con, sql, [q])
    assert len(got) == len(want)


def test_changes_to_included_columns_are_seen(con):
    x = rows()
    sql = "SELECT id, title FROM docs ORDER BY embedding <=> ? LIMIT 1"
    con.execute("UPDATE docs SET title = 'renamed' WHERE id = 5")
    assert con.execute(sql, [x[5]]).fetchall() == [(5, "renamed")]
    con.execute("BEGIN")
    con.execute("UPDATE docs SET title = 'in a transaction' WHERE id = 5")
    assert con.execute(sql, [x[5]]).fetchall() == [(5, "in a transaction")]
    con.execute("ROLLBACK")
    assert con.execute(sql, [x[5]]).fetchall() == [(5, "renamed")]
    con.execute("DELETE FROM docs WHERE id = 5")
    assert con.execute(sql, [x[5]]).fetchall()[0][0] != 5


def test_null_vectors_fall_back_to_duckdb(con):
    zero = "[" + ", ".join(["0.0"] * DIM) + "]"
    con.execute(f"INSERT INTO docs VALUES (9000, 'no vector', NULL, 0, NULL, NULL), (9001, 'zero', NULL, 0, NULL, {zero})")
    sql = "SELECT id, embedding <=> ? AS distance FROM docs ORDER BY distance LIMIT 800"
    assert plan_line(con, sql, [rows(12)[3]]).startswith("HNSW Index Scan using docs_cos")
    got, _, want, _ = both(con, sql, [rows(12)[3]])
    assert [r[0] for r in got][-2:] == [r[0] for r in want][-2:] == [9001, 9000]
    assert len(got) == len(want) == 702


def test_arrow_fetch_matches_duckdb(con):
    q = rows(12)[4]
    sql = "SELECT id, title, embedding <=> ? AS distance FROM docs ORDER BY distance LIMIT 6"
    got = con.execute(sql, [q]).fetch_arrow_table()
    con.execute("SET vsql.enable_index_scan = off")
    want = con.execute(sql, [q]).fetch_arrow_table()
    assert got.schema == want.schema
    assert got.column("id").to_pylist() == want.column("id").to_pylist()


def test_include_survives_reopen_and_plain_duckdb_writes(tmp_path):
    path = str(tmp_path / "covering.duckdb")
    x = rows()
    with vsql.connect(path) as con:
        con.execute(f"CREATE TABLE docs (id INTEGER, title VARCHAR, embedding FLOAT[{DIM}])")
        con.executemany("INSERT INTO docs VALUES (?, ?, ?)", [(i, f"doc {i}", x[i].tolist()) for i in range(N)])
        con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops) INCLUDE (title)")
    plain = duckdb.connect(path)
    plain.execute("UPDATE docs SET title = 'changed by duckdb' WHERE id = 8")
    plain.close()
    with vsql.connect(path) as con:
        listing = con.execute("SELECT options FROM vsql_indexes").fetchall()
        assert listing == [("ef_construction=64, m=16, include=(title)",)]
        sql = "SELECT title, embedding <-> ? AS distance FROM docs ORDER BY distance LIMIT 1"
        assert plan_line(con, sql, [x[8]]).startswith("HNSW Index Only Scan")
        assert con.execute(sql, [x[8]]).fetchall()[0][0] == "changed by duckdb"
        assert con.execute(sql, [x[9]]).fetchall()[0][0] == "doc 9"


def test_dropping_an_included_column_drops_the_index(con):
    con.execute("ALTER TABLE docs DROP COLUMN tags")
    assert con.indexes.get("docs_cos") is None


def test_include_of_a_missing_column(con):
    with pytest.raises(vsql.ProgrammingError, match='column "missing" does not exist in table "docs"'):
        con.execute("CREATE INDEX bad ON docs USING hnsw (embedding vector_l2_ops) INCLUDE (missing)")
    assert con.indexes.get("bad") is None


def test_explain_shows_what_duckdb_runs(con):
    q = rows(12)[5]
    plain = con.execute("EXPLAIN SELECT id, embedding <=> ? AS d FROM docs ORDER BY d LIMIT 3", [q]).fetchall()
    assert [row[0] for row in plain] == ["vsql_plan", "vsql_plan"]
    assert plain[1][1] == "DuckDB runs no statement: vsql builds the rows from the index"
    filtered = con.execute(
        "EXPLAIN SELECT id, embedding <=> ? AS d FROM docs WHERE score > ? ORDER BY d LIMIT 3", [q, 50]
    ).fetchall()
    lines = [row[1] for row in filtered if row[0] == "vsql_plan"]
    assert lines[-1] == "DuckDB runs only the filter, planned below; vsql builds the rows from the index"
    duckdb_plan = "\n".join(row[1] for row in filtered if row[0] != "vsql_plan")
    assert "score" in duckdb_plan
    assert "__vsql" not in duckdb_plan  # the filter alone, not the statement that joins the rows back
