"""A stored index reopens with exactly the rows it was built on, wherever load() takes them from.

load() takes an index's rows from the table when every node's row is unchanged, and from the
copy stored in ``vsql.index_rows`` when another client changed or deleted some.
"""

import duckdb
import numpy as np
import pytest

import vsql
from vsql import persistence

DIM = 12
N = 800


def vectors(seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, DIM)).astype(np.float32)
    x[20:25] = x[0]  # exact copies
    return x


@pytest.fixture
def stored(tmp_path):
    """A file with a cosine HNSW index; returns its path and the index's rows at close."""
    path = str(tmp_path / "stored.duckdb")
    x = vectors()
    with vsql.connect(path) as con:
        con.execute(f"CREATE TABLE docs (id INTEGER, embedding FLOAT[{DIM}])")
        rows = [(i, x[i].tolist()) for i in range(N)]
        rows[7] = (7, None)
        rows[8] = (8, [0.0] * DIM)
        con.executemany("INSERT INTO docs VALUES (?, ?)", rows)
        con.execute("CREATE INDEX docs_cos ON docs USING hnsw (embedding vector_cosine_ops)")
    return path


def index_rows(con):
    index = con.indexes.get("docs_cos")
    return index.kernel.rows(np.arange(len(index.node_rowids))).copy(), index.node_rowids.copy()


def top_ids(con, q, k=10):
    return [r[0] for r in con.execute(f"SELECT id FROM docs ORDER BY embedding <=> ? LIMIT {k}", [q]).fetchall()]


def exact_ids(con, q, k=10):
    con.execute("SET vsql.enable_index_scan = off")
    try:
        return top_ids(con, q, k)
    finally:
        con.execute("RESET vsql.enable_index_scan")


def count_row_reads(monkeypatch):
    calls = []
    original = persistence.read_rows

    def spy(connection, index_name):
        calls.append(index_name)
        return original(connection, index_name)

    monkeypatch.setattr(persistence, "read_rows", spy)
    return calls


def test_table_rows_load_bit_for_bit(stored, monkeypatch):
    x = vectors()
    with vsql.connect(stored) as con:
        top_ids(con, x[1].tolist())
        before, before_rowids = index_rows(con)
    calls = count_row_reads(monkeypatch)
    with vsql.connect(stored) as con:
        got = top_ids(con, x[1].tolist())
        after, after_rowids = index_rows(con)
        assert got == exact_ids(con, x[1].tolist())
    assert calls == []
    np.testing.assert_array_equal(after_rowids, before_rowids)
    assert after.tobytes() == before.tobytes()


def test_deleted_rows_stored_apart(stored, monkeypatch):
    x = vectors()
    with vsql.connect(stored) as con:
        con.execute("DELETE FROM docs WHERE id % 4 = 0")
        top_ids(con, x[1].tolist())  # syncs, and persists: more than 10% of the rows changed
        before, before_rowids = index_rows(con)
        assert (before_rowids < 0).sum() == len(range(0, N, 4)) - 1  # row 8 (zero vector) is excluded
    calls = count_row_reads(monkeypatch)
    with vsql.connect(stored) as con:
        q = x[3].tolist()
        got = top_ids(con, q)
        after, _ = index_rows(con)
        assert got == exact_ids(con, q)
        assert all(i % 4 for i in got)
    assert calls == []
    assert after.tobytes() == before.tobytes()


def test_foreign_changes_read_stored_rows(stored, monkeypatch):
    x = vectors()
    with vsql.connect(stored) as con:
        top_ids(con, x[1].tolist())
        before, _ = index_rows(con)
    plain = duckdb.connect(stored)
    plain.execute("DELETE FROM docs WHERE id = 2")
    plain.execute(f"UPDATE docs SET embedding = list_value({', '.join(['1.0'] * DIM)})::FLOAT[{DIM}] WHERE id = 3")
    plain.close()
    calls = count_row_reads(monkeypatch)
    with vsql.connect(stored) as con:
        got = top_ids(con, [1.0] * DIM, 5)
        assert got[0] == 3
        assert got == exact_ids(con, [1.0] * DIM, 5)
        assert 2 not in top_ids(con, x[2].tolist(), 50)
        after, _ = index_rows(con)
    assert calls == ["docs_cos"]
    # The old nodes keep their old rows; the new version of row 3 is a new node.
    assert after[: len(before)].tobytes() == before.tobytes()


def test_old_layout_still_loads(stored):
    # Files written before vsql.index_rows existed kept the rows with the other arrays.
    plain = duckdb.connect(stored)
    plain.execute("INSERT INTO vsql.index_data SELECT * FROM vsql.index_rows")
    plain.execute("DROP TABLE vsql.index_rows")
    plain.close()
    x = vectors()
    with vsql.connect(stored) as con:
        assert top_ids(con, x[4].tolist()) == exact_ids(con, x[4].tolist())
        con.execute("DELETE FROM docs WHERE id < 200")  # a write that persists the index again
        assert top_ids(con, x[300].tolist()) == exact_ids(con, x[300].tolist())
        stored_in = con.execute("SELECT DISTINCT array_name FROM vsql.index_rows").fetchall()
        assert stored_in == [("xb",)]


@pytest.fixture
def background(monkeypatch):
    from vsql import index_manager

    monkeypatch.setattr(index_manager, "BACKGROUND_LOAD_ROWS", 100)


def test_large_index_loads_in_background(stored, background, caplog):
    x = vectors()
    with vsql.connect(stored) as con:
        with caplog.at_level("INFO", logger="vsql"):
            first = top_ids(con, x[6].tolist())
        assert "exact scan: index docs_cos is loading in the background" in caplog.text
        assert first == exact_ids(con, x[6].tolist())
        index = con.indexes.get("docs_cos")
        index._loader.result()
        plan = con.execute("EXPLAIN SELECT id FROM docs ORDER BY embedding <=> ? LIMIT 5", [x[6]]).fetchall()
        assert plan[0][1].startswith("HNSW Index Scan using docs_cos")
        assert top_ids(con, x[6].tolist()) == first


def test_write_during_background_load_is_seen(stored, background):
    x = vectors()
    with vsql.connect(stored) as con:
        top_ids(con, x[1].tolist())  # starts the load
        con.execute("INSERT INTO docs VALUES (5000, ?)", [(x[1] * 3).tolist()])
        con.execute("DELETE FROM docs WHERE id = 1")
        con.indexes.get("docs_cos")._loader.result()
        got = top_ids(con, x[1].tolist())
        assert got[0] == 5000
        assert 1 not in got
        assert got == exact_ids(con, x[1].tolist())


def test_close_during_background_load(stored, background):
    x = vectors()
    con = vsql.connect(stored)
    top_ids(con, x[1].tolist())
    con.close()
    with vsql.connect(stored) as con:
        assert top_ids(con, x[2].tolist()) == exact_ids(con, x[2].tolist())


def test_no_background_load_in_a_transaction(stored, background):
    x = vectors()
    with vsql.connect(stored) as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM docs WHERE id = 3")
        plan = con.execute("EXPLAIN SELECT id FROM docs ORDER BY embedding <=> ? LIMIT 5", [x[3]]).fetchall()
        assert plan[0][1].startswith("HNSW Index Scan using docs_cos")
        assert 3 not in top_ids(con, x[3].tolist())
        con.execute("ROLLBACK")
        assert top_ids(con, x[3].tolist())[0] == 3


def test_no_background_load_after_use(stored, background, tmp_path):
    x = vectors()
    other = str(tmp_path / "other.duckdb")
    with vsql.connect(other) as con:
        con.execute(f"CREATE TABLE docs (id INTEGER, embedding FLOAT[{DIM}])")
    with vsql.connect(stored) as con:
        con.execute(f"ATTACH '{other}' AS other")
        con.execute("USE other")
        con.execute("USE stored")
        assert con.indexes.get("docs_cos").loading()  # back in the default database
    with vsql.connect(stored) as con:
        con.execute(f"ATTACH '{other}' AS other")
        con.execute("USE other.main")
        assert not con.indexes.get("docs_cos").loading()
        assert con.execute("SELECT count(*) FROM docs").fetchall() == [(0,)]
    with vsql.connect(stored) as con:
        assert top_ids(con, x[5].tolist()) == exact_ids(con, x[5].tolist())
