"""Bad input through a vsql connection: pgvector's messages, and nothing changed afterwards."""

import pytest

import vsql


@pytest.fixture
def con():
    connection = vsql.connect()
    connection.execute("CREATE TABLE items (id INTEGER, embedding vector(3))")
    connection.execute("INSERT INTO items VALUES (1, '[1,2,3]')")
    yield connection
    connection.close()


def count(con):
    return con.execute("SELECT count(*) FROM items").fetchone()[0]


def test_wrong_dimensions_in_literal(con):
    with pytest.raises(vsql.DataError, match=r"^expected 3 dimensions, not 2$"):
        con.execute("INSERT INTO items VALUES (2, '[1,2]'::vector(3))")
    assert count(con) == 1


def test_wrong_dimensions_in_list(con):
    with pytest.raises(vsql.DataError, match=r"^expected 3 dimensions, not 2$"):
        con.execute("INSERT INTO items VALUES (2, [1, 2])")
    assert count(con) == 1


def test_wrong_dimensions_in_parameter(con):
    with pytest.raises(vsql.DataError, match=r"^expected 3 dimensions, not 4$"):
        con.execute("INSERT INTO items VALUES (2, ?)", [[1.0, 2.0, 3.0, 4.0]])
    assert count(con) == 1


def test_nan_in_literal(con):
    with pytest.raises(vsql.DataError, match=r"^NaN not allowed in vector$"):
        con.execute("INSERT INTO items VALUES (2, '[1,NaN,3]'::vector(3))")
    assert count(con) == 1


def test_nan_in_parameter(con):
    with pytest.raises(vsql.DataError, match=r"^NaN not allowed in vector$"):
        con.execute("INSERT INTO items VALUES (2, ?)", [[1.0, float("nan"), 3.0]])
    assert count(con) == 1


def test_infinity_in_literal(con):
    with pytest.raises(vsql.DataError, match=r"^infinite value not allowed in vector$"):
        con.execute("SELECT '[1,Infinity,3]'::vector(3)")


def test_invalid_syntax(con):
    with pytest.raises(vsql.DataError, match=r'^invalid input syntax for type vector: "\[1,,2\]"$'):
        con.execute("SELECT '[1,,2]'::vector(3)")


def test_empty_vector(con):
    with pytest.raises(vsql.DataError, match=r"^vector must have at least 1 dimension$"):
        con.execute("SELECT '[]'::vector")


def test_different_dimensions_in_distance(con):
    with pytest.raises(vsql.DataError, match=r"^different vector dimensions 3 and 2$"):
        con.execute("SELECT embedding <-> '[1,2]' FROM items")


@pytest.mark.parametrize(
    ("type_sql", "message"),
    [
        ("vector(0)", "dimensions for type vector must be at least 1"),
        ("vector(100001)", "dimensions for type vector cannot exceed 100000"),
    ],
)
def test_vector_type_bounds(con, type_sql, message):
    with pytest.raises(vsql.ProgrammingError, match=message):
        con.execute(f"CREATE TABLE bad (v {type_sql})")
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'bad'").fetchone() == (0,)


def test_unknown_index_method(con):
    with pytest.raises(vsql.ProgrammingError, match=r'access method "btree2" does not exist; valid methods are hnsw, ivfflat, ivfpq and DuckDB.s art'):
        con.execute("CREATE INDEX i ON items USING btree2 (embedding)")


def test_unknown_operator_class(con):
    with pytest.raises(vsql.ProgrammingError, match=r'operator class "vector_foo_ops" does not exist for access method "hnsw"; valid operator classes are'):
        con.execute("CREATE INDEX i ON items USING hnsw (embedding vector_foo_ops)")
    assert con.indexes.get("i") is None


def test_unknown_index_option(con):
    with pytest.raises(vsql.ProgrammingError, match=r'unrecognized parameter "lists" for access method "hnsw"; valid parameters are m, ef_construction'):
        con.execute("CREATE INDEX i ON items USING hnsw (embedding vector_l2_ops) WITH (lists = 10)")


def test_index_option_out_of_range(con):
    with pytest.raises(vsql.ProgrammingError, match=r'value 1 out of bounds for option "m": valid values are between 2 and 100'):
        con.execute("CREATE INDEX i ON items USING hnsw (embedding vector_l2_ops) WITH (m = 1)")
    assert con.indexes.get("i") is None
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'vsql' AND table_name = 'indexes'").fetchone()[0] in (0, 1)


def test_setting_out_of_range(con):
    with pytest.raises(vsql.ProgrammingError, match=r'0 is outside the valid range for parameter "hnsw.ef_search" \(1 .. 1000\)'):
        con.execute("SET hnsw.ef_search = 0")
    assert con.execute("SHOW hnsw.ef_search").fetchone() == ("80",)


def test_unknown_setting(con):
    with pytest.raises(vsql.ProgrammingError, match=r'unrecognized configuration parameter "hnsw.ef_serch"'):
        con.execute("SET hnsw.ef_serch = 10")


def test_boolean_setting_value(con):
    with pytest.raises(vsql.ProgrammingError, match=r'parameter "vsql.enable_index_scan" requires a Boolean value'):
        con.execute("SET vsql.enable_index_scan = 5")


def test_set_local_lasts_for_transaction(con):
    con.execute("BEGIN")
    con.execute("SET LOCAL hnsw.ef_search = 200")
    assert con.execute("SHOW hnsw.ef_search").fetchone() == ("200",)
    con.execute("COMMIT")
    assert con.execute("SHOW hnsw.ef_search").fetchone() == ("80",)


def test_reset_all(con):
    con.execute("SET ivfflat.probes = 7")
    con.execute("RESET ALL")
    assert con.execute("SHOW ivfflat.probes").fetchone() == ("1",)


def test_create_extension_vector(con):
    con.execute("CREATE EXTENSION IF NOT EXISTS vector")
    assert con.execute("SELECT l2_distance([3.0, 4.0], [0.0, 0.0])").fetchone() == (5.0,)


def test_create_other_extension_rejected(con):
    with pytest.raises(vsql.ProgrammingError, match='extension "postgis" is not available'):
        con.execute("CREATE EXTENSION postgis")


def test_error_in_transaction_keeps_earlier_work_until_rollback(con):
    con.execute("BEGIN")
    con.execute("INSERT INTO items VALUES (2, '[4,5,6]')")
    with pytest.raises(vsql.DataError, match="expected 3 dimensions"):
        con.execute("INSERT INTO items VALUES (3, '[1,2]'::vector(3))")
    assert count(con) == 2
    con.execute("ROLLBACK")
    assert count(con) == 1


def test_wrong_dimensions_in_text_literal(con):
    with pytest.raises(vsql.DataError, match=r"^expected 3 dimensions, not 2$"):
        con.execute("INSERT INTO items VALUES (2, '[1,2]')")
    assert count(con) == 1


def test_null_vectors_give_null(con):
    con.execute("INSERT INTO items VALUES (2, NULL)")
    row = con.execute(
        "SELECT l2_distance(embedding, '[1,1,1]'), cosine_distance(embedding, '[1,1,1]'), "
        "vector_norm(embedding), l2_normalize(embedding) FROM items WHERE id = 2"
    ).fetchone()
    assert row == (None, None, None, None)
