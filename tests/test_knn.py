"""kNN queries through an HNSW index: same rows as exact search, for every SQL shape.

Each query runs twice on seeded clustered data, once with the index and once with
``SET vsql.enable_index_scan = off``, and the two answers must agree (tie-aware: a row counts as
correct when its exact distance is within 1e-5 of the exact answer's row at that position).
"""

import numpy as np
import pytest

import vsql

DIM = 16
N = 600


def clustered(n=N, dim=DIM, seed=7):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(12, dim)).astype(np.float32) * 4
    x = centers[rng.integers(0, 12, n)] + rng.normal(size=(n, dim)).astype(np.float32)
    x[10:20] = x[0]  # exact duplicates
    return x.astype(np.float32)


@pytest.fixture
def con():
    connection = vsql.connect()
    x = clustered()
    connection.execute(f"CREATE TABLE docs (id INTEGER, lang VARCHAR, year INTEGER, embedding FLOAT[{DIM}])")
    rows = [(i, "en" if i % 3 else "de", 2000 + i % 25, x[i].tolist()) for i in range(N)]
    rows[5] = (5, "en", 2010, None)  # a NULL vector
    rows[6] = (6, "en", 2010, [0.0] * DIM)  # a zero vector
    connection.executemany("INSERT INTO docs VALUES (?, ?, ?, ?)", rows)
    yield connection
    connection.close()


def exact_and_indexed(con, sql, params=()):
    with_index = con.execute(sql, list(params)).fetchall()
    con.execute("SET vsql.enable_index_scan = off")
    try:
        exact = con.execute(sql, list(params)).fetchall()
    finally:
        con.execute("RESET vsql.enable_index_scan")
    return with_index, exact


def assert_same_answer(with_index, exact, distance_column=1, min_recall=0.9):
    assert len(with_index) == len(exact)
    got = np.array([row[distance_column] for row in with_index], dtype=np.float64)
    want = np.array([row[distance_column] for row in exact], dtype=np.float64)
    assert np.all(np.diff(got[~np.isnan(got)]) >= -1e-6), "index answer is not in exact order"
    finite = want[~np.isnan(want)]
    bound = finite.max() + 1e-5 if len(finite) else np.inf
    hits = np.sum((got <= bound) | (np.isnan(got) & np.isnan(want)))
    assert hits / max(len(want), 1) >= min_recall


@pytest.mark.parametrize(
    ("opclass", "operator"),
    [("vector_l2_ops", "<->"), ("vector_cosine_ops", "<=>"), ("vector_ip_ops", "<#>"), ("vector_l1_ops", "<+>")],
)
def test_operator_queries_match_exact(con, opclass, operator):
    con.execute(f"CREATE INDEX docs_idx ON docs USING hnsw (embedding {opclass})")
    q = clustered(1, seed=99)[0]
    sql = f"SELECT id, embedding {operator} ? AS distance FROM docs ORDER BY distance LIMIT 10"
    assert_same_answer(*exact_and_indexed(con, sql, [q]))
    plan = "\n".join(str(row[1]) for row in con.execute(f"EXPLAIN {sql}", [q]).fetchall())
    assert "HNSW Index Scan using docs_idx on docs" in plan


SHAPES = [
    "SELECT id, l2_distance(embedding, ?) AS d FROM docs ORDER BY d LIMIT 7",
    "SELECT id, array_distance(embedding, ?::FLOAT[16]) AS d FROM docs ORDER BY d LIMIT 7",
    "SELECT id, embedding <-> ? AS d FROM docs ORDER BY embedding <-> ? LIMIT 7",
    "SELECT id, embedding <-> $1 AS d FROM docs ORDER BY 2 LIMIT 7 OFFSET 3",
    "WITH near AS (SELECT id, embedding <-> ? AS d FROM docs ORDER BY d LIMIT 7) SELECT id, d FROM near ORDER BY d",
    "SELECT id, d FROM (SELECT id, embedding <-> ? AS d FROM docs ORDER BY d LIMIT 7) ORDER BY d",
    "SELECT id, embedding <-> ? AS d FROM docs WHERE lang = 'en' ORDER BY d LIMIT 7",
    "SELECT id, embedding <-> ? AS d FROM docs WHERE year BETWEEN 2003 AND 2007 AND lang = 'de' ORDER BY d LIMIT 7",
]


@pytest.mark.parametrize("sql", SHAPES)
def test_sql_shapes_match_exact(con, sql):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    q = clustered(1, seed=3)[0].tolist()
    params = [q] * sql.count("?") if "?" in sql else [q]
    with_index, exact = exact_and_indexed(con, sql, params)
    assert_same_answer(with_index, exact)
    plan = "\n".join(str(row[1]) for row in con.execute("EXPLAIN " + sql, params).fetchall())
    assert "HNSW Index Scan using docs_l2" in plan


def test_union_branches_both_rewritten(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    q = clustered(1, seed=3)[0].tolist()
    sql = ("(SELECT id, embedding <-> $1 AS d FROM docs WHERE lang = 'en' ORDER BY d LIMIT 3) UNION ALL "
           "(SELECT id, embedding <-> $1 AS d FROM docs WHERE lang = 'de' ORDER BY d LIMIT 3) ORDER BY d")
    with_index, exact = exact_and_indexed(con, sql, [q])
    assert_same_answer(with_index, exact)
    plan = [row[1] for row in con.execute("EXPLAIN " + sql, [q]).fetchall() if row[0] == "vsql_plan"]
    assert sum("HNSW Index Scan" in line for line in plan) == 2


def test_lateral_join_per_query_vector(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    con.execute("CREATE TABLE queries AS SELECT id AS qid, embedding AS qv FROM docs WHERE id IN (1, 50, 300)")
    sql = ("SELECT qid, n.id, n.d FROM queries, LATERAL (SELECT id, embedding <-> queries.qv AS d FROM docs "
           "ORDER BY d LIMIT 3) AS n ORDER BY qid, n.d")
    with_index, exact = exact_and_indexed(con, sql)
    assert len(with_index) == 9
    for qid in (1, 50, 300):
        assert_same_answer([r for r in with_index if r[0] == qid], [r for r in exact if r[0] == qid], distance_column=2)
    plan = [row[1] for row in con.execute("EXPLAIN " + sql).fetchall() if row[0] == "vsql_plan"]
    assert plan[0].startswith("HNSW Index Scan using docs_l2 on docs")


def test_scalar_subquery_query_vector(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    sql = ("SELECT id, embedding <-> (SELECT embedding FROM docs WHERE id = 42) AS d "
           "FROM docs ORDER BY d LIMIT 5")
    with_index, exact = exact_and_indexed(con, sql)
    assert with_index[0][0] == 42
    assert_same_answer(with_index, exact)


def test_similarity_desc_forms(con):
    con.execute("CREATE INDEX docs_ip ON docs USING hnsw (embedding vector_ip_ops)")
    con.execute("CREATE INDEX docs_cos ON docs USING hnsw (embedding vector_cosine_ops)")
    q = clustered(1, seed=5)[0].tolist()
    for sql in ("SELECT id, inner_product(embedding, ?) AS s FROM docs ORDER BY s DESC LIMIT 6",
                "SELECT id, 1 - cosine_distance(embedding, ?) AS s FROM docs ORDER BY s DESC LIMIT 6"):
        with_index, exact = exact_and_indexed(con, sql, [q])
        assert [r[1] for r in with_index] == pytest.approx([r[1] for r in exact], abs=1e-5, nan_ok=True)


def test_limit_above_ef_search_returns_all_rows(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    con.execute("SET hnsw.ef_search = 40")
    q = clustered(1, seed=3)[0].tolist()
    rows = con.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 500", [q]).fetchall()
    assert len(rows) == 500
    assert len({r[0] for r in rows}) == 500


def test_limit_above_row_count_includes_null_and_zero_rows(con):
    con.execute("CREATE INDEX docs_cos ON docs USING hnsw (embedding vector_cosine_ops)")
    q = clustered(1, seed=3)[0].tolist()
    rows = con.execute("SELECT id, embedding <=> ? AS d FROM docs ORDER BY d LIMIT 1000", [q]).fetchall()
    assert len(rows) == N
    assert rows[-1][0] == 5  # NULL vector sorts last
    assert rows[-1][1] is None
    assert rows[-2][0] == 6  # zero vector: NaN, just before NULL
    assert np.isnan(rows[-2][1])


def test_offset_pages_do_not_overlap(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    q = clustered(1, seed=11)[0].tolist()
    pages = [con.execute(f"SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 10 OFFSET {o}", [q]).fetchall()
             for o in (0, 10, 20, 30)]
    ids = [r[0] for page in pages for r in page]
    assert len(ids) == 40
    assert len(set(ids)) == 40
    whole = [r[0] for r in con.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 40", [q]).fetchall()]
    assert ids == whole


def test_deleted_rows_never_appear(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    q = clustered(1, seed=3)[0].tolist()
    nearest = [r[0] for r in con.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 40", [q]).fetchall()]
    con.execute(f"DELETE FROM docs WHERE id IN ({','.join(map(str, nearest))})")
    rows = con.execute("SELECT id, embedding <-> ? AS d FROM docs ORDER BY d LIMIT 10", [q]).fetchall()
    assert len(rows) == 10
    assert not set(nearest) & {r[0] for r in rows}
    con.execute("SET vsql.enable_index_scan = off")
    exact = con.execute("SELECT id, embedding <-> ? AS d FROM docs ORDER BY d LIMIT 10", [q]).fetchall()
    assert_same_answer(rows, exact)


def test_insert_and_update_are_seen(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    target = [100.0] * DIM
    con.execute("INSERT INTO docs VALUES (9999, 'en', 2024, ?)", [target])
    assert con.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 1", [target]).fetchall() == [(9999,)]
    con.execute("UPDATE docs SET embedding = ? WHERE id = 17", [[-100.0] * DIM])
    assert con.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 1", [[-100.0] * DIM]).fetchall() == [(17,)]


def test_explain_reports_exact_scan_reason(con):
    con.execute("CREATE INDEX docs_cos ON docs USING hnsw (embedding vector_cosine_ops)")
    plan = con.execute("EXPLAIN SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 3", [[0.0] * DIM]).fetchall()
    lines = [row[1] for row in plan if row[0] == "vsql_plan"]
    assert lines[0].startswith("Exact scan: no index on docs.embedding for l2 distance")


def test_enable_index_scan_off_in_explain(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    con.execute("SET vsql.enable_index_scan = off")
    plan = con.execute("EXPLAIN SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 3", [[0.0] * DIM]).fetchall()
    assert [row[1] for row in plan if row[0] == "vsql_plan"] == ["Exact scan: vsql.enable_index_scan is off"]


def test_index_persists_across_reopen(tmp_path):
    path = str(tmp_path / "knn.duckdb")
    x = clustered()
    with vsql.connect(path) as connection:
        connection.execute(f"CREATE TABLE docs (id INTEGER, embedding FLOAT[{DIM}])")
        connection.executemany("INSERT INTO docs VALUES (?, ?)", [(i, x[i].tolist()) for i in range(N)])
        connection.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
        before = connection.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 5", [x[3].tolist()]).fetchall()
    with vsql.connect(path) as connection:
        index = connection.indexes.get("docs_l2")
        assert index.kernel is None  # loaded on first use, not when the file opens
        assert index.load()  # the arrays are in the file: no rebuild needed
        after = connection.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 5", [x[3].tolist()]).fetchall()
        assert after == before
        listing = connection.execute("SELECT index_name, method, metric, rows FROM vsql_indexes").fetchall()
        assert listing == [("docs_l2", "hnsw", "l2", N)]


def test_changes_by_plain_duckdb_are_seen(tmp_path):
    import duckdb

    path = str(tmp_path / "foreign.duckdb")
    x = clustered()
    with vsql.connect(path) as connection:
        connection.execute(f"CREATE TABLE docs (id INTEGER, embedding FLOAT[{DIM}])")
        connection.executemany("INSERT INTO docs VALUES (?, ?)", [(i, x[i].tolist()) for i in range(N)])
        connection.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    plain = duckdb.connect(path)
    plain.execute("DELETE FROM docs WHERE id < 100")
    plain.execute(f"INSERT INTO docs VALUES (5000, [50.0] * {DIM})" if False else
                  f"INSERT INTO docs SELECT 5000, list_value({', '.join(['50.0'] * DIM)})::FLOAT[{DIM}]")
    plain.close()
    with vsql.connect(path) as connection:
        rows = connection.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 3", [[50.0] * DIM]).fetchall()
        assert rows[0] == (5000,)
        ids = [r[0] for r in connection.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 50", [x[0].tolist()]).fetchall()]
        assert min(ids) >= 100


def test_drop_index_and_table(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    con.execute("DROP INDEX docs_l2")
    assert con.indexes.get("docs_l2") is None
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    con.execute("DROP TABLE docs")
    assert con.indexes.get("docs_l2") is None


def test_index_on_list_column_rejected(con):
    con.execute("CREATE TABLE lists (v FLOAT[])")
    with pytest.raises(vsql.ProgrammingError, match=r'column "v" has type FLOAT\[\], but a vector index needs'):
        con.execute("CREATE INDEX bad ON lists USING hnsw (v vector_l2_ops)")


def test_duplicate_index_name_rejected(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    with pytest.raises(vsql.ProgrammingError, match='relation "docs_l2" already exists'):
        con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    con.execute("CREATE INDEX IF NOT EXISTS docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")


def test_vss_spelling(con):
    con.execute("CREATE INDEX docs_vss ON docs USING HNSW (embedding) WITH (metric = 'cosine')")
    assert con.indexes.get("docs_vss").definition.metric == "cosine"
    q = clustered(1, seed=8)[0].tolist()
    sql = "SELECT id, array_cosine_distance(embedding, ?::FLOAT[16]) AS d FROM docs ORDER BY d LIMIT 5"
    assert_same_answer(*exact_and_indexed(con, sql, [q]))


def test_unqualified_scalar_subquery_uses_index(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    sql = "SELECT id FROM docs ORDER BY embedding <-> (SELECT embedding FROM docs WHERE id = 42) LIMIT 3"
    plan = [row[1] for row in con.execute("EXPLAIN " + sql).fetchall() if row[0] == "vsql_plan"]
    assert plan[0].startswith("HNSW Index Scan using docs_l2")
    assert con.execute(sql).fetchall()[0] == (42,)


def test_explain_after_comment(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    rows = con.execute("-- a comment\nEXPLAIN SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 3", [[0.0] * DIM]).fetchall()
    assert rows[0] == ("vsql_plan", "HNSW Index Scan using docs_l2 on docs (l2, ef_search=80, k=3)")


def test_create_or_replace_table_drops_index(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    con.execute(f"CREATE OR REPLACE TABLE docs AS SELECT 1 AS id, NULL::FLOAT[{DIM}] AS embedding")
    assert con.indexes.get("docs_l2") is None


def test_correlated_filter_in_lateral(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    con.execute("CREATE TABLE queries AS SELECT id AS qid, embedding AS qv FROM docs WHERE id IN (1, 50)")
    sql = ("SELECT qid, n.id FROM queries, LATERAL (SELECT id, embedding <-> queries.qv AS d FROM docs "
           "WHERE docs.id <> queries.qid ORDER BY d LIMIT 2) AS n ORDER BY qid, n.d")
    with_index, exact = exact_and_indexed(con, sql)
    assert len(with_index) == 4
    assert all(row[0] != row[1] for row in with_index)
    plan = [row[1] for row in con.execute("EXPLAIN " + sql).fetchall() if row[0] == "vsql_plan"]
    assert any("outer query" in line for line in plan)


def test_truncate_then_insert(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    con.execute("TRUNCATE docs")
    assert con.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 5", [[0.0] * DIM]).fetchall() == []
    con.execute("INSERT INTO docs VALUES (1, 'en', 2020, ?), (2, 'en', 2020, ?)", [[1.0] * DIM, [2.0] * DIM])
    rows = con.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 5", [[2.1] * DIM]).fetchall()
    assert rows == [(2,), (1,)]


def test_rename_table_and_column(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    con.execute("ALTER TABLE docs RENAME TO articles")
    con.execute("ALTER TABLE articles RENAME COLUMN embedding TO vec")
    definition = con.indexes.get("docs_l2").definition
    assert (definition.table_name, definition.column_name) == ("articles", "vec")
    q = clustered(1, seed=3)[0].tolist()
    sql = "SELECT id, vec <-> ? AS d FROM articles ORDER BY d LIMIT 5"
    plan = [row[1] for row in con.execute("EXPLAIN " + sql, [q]).fetchall() if row[0] == "vsql_plan"]
    assert plan[0].startswith("HNSW Index Scan using docs_l2 on articles")
    assert_same_answer(*exact_and_indexed(con, sql, [q]))


def test_drop_indexed_column_drops_index(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    con.execute("ALTER TABLE docs DROP COLUMN embedding")
    assert con.indexes.get("docs_l2") is None


def test_rollback_of_insert_is_seen(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    far = [500.0] * DIM
    con.execute("BEGIN")
    con.execute("INSERT INTO docs VALUES (7777, 'en', 2020, ?)", [far])
    assert con.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 1", [far]).fetchall() == [(7777,)]
    con.execute("ROLLBACK")
    assert con.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 1", [far]).fetchall() != [(7777,)]
    con.execute("INSERT INTO docs VALUES (8888, 'en', 2020, ?)", [far])
    assert con.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 1", [far]).fetchall() == [(8888,)]


@pytest.mark.parametrize(("limit", "offset"), [(5, 0), (5, 7), (3.5, 0), ("4", 1), (None, 0), (700, 0), (6, None)])
def test_limit_and_offset_parameters(con, limit, offset):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    q = clustered(1, seed=9)[0]
    # The filter's parameter comes first in the text, the LIMIT's last: numbering must follow the text.
    sql = "SELECT id, embedding <-> ? AS d FROM docs WHERE year >= ? ORDER BY d LIMIT ? OFFSET ?"
    params = [q, 2005, limit, offset]
    plan = [row[1] for row in con.execute("EXPLAIN " + sql, params).fetchall() if row[0] == "vsql_plan"]
    assert plan[0] == "HNSW Index Scan using docs_l2 on docs (l2, ef_search=80, k=$3 + $4)"
    with_index, exact = exact_and_indexed(con, sql, params)
    matching = sum(1 for i in range(N) if 2000 + i % 25 >= 2005)
    rows_after_offset = matching - (offset and int(offset) or 0)
    expected = rows_after_offset if limit is None else min(round(float(limit) + 0.01), rows_after_offset)
    assert len(with_index) == len(exact) == expected
    assert_same_answer(with_index, exact)


@pytest.mark.parametrize(("limit", "offset", "message"), [
    ("ten", 0, "LIMIT must be a non-negative integer, not 'ten'"),
    (-1, 0, "LIMIT must be a non-negative integer, not -1"),
    (3, -2, "OFFSET must be a non-negative integer, not -2"),
])
def test_bad_limit_parameter(con, limit, offset, message):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    with pytest.raises(vsql.DataError, match=message):
        con.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT ? OFFSET ?", [[0.0] * DIM, limit, offset])


def test_limit_parameter_in_correlated_query_runs_exactly(con):
    con.execute("CREATE INDEX docs_l2 ON docs USING hnsw (embedding vector_l2_ops)")
    con.execute("CREATE TABLE queries AS SELECT id AS qid, embedding AS qv FROM docs WHERE id IN (1, 50)")
    sql = ("SELECT qid, n.id FROM queries, LATERAL (SELECT id FROM docs ORDER BY embedding <-> queries.qv "
           "LIMIT ?) AS n ORDER BY qid, n.id")
    plan = [row[1] for row in con.execute("EXPLAIN " + sql, [2]).fetchall() if row[0] == "vsql_plan"]
    assert plan == ["Exact scan: LIMIT and OFFSET must be integer constants in a correlated kNN query"]
    assert len(con.execute(sql, [2]).fetchall()) == 4
