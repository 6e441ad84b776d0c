"""IVF-Flat and IVF-PQ indexes through SQL: same rows as exact search, training, persistence."""

import logging

import numpy as np
import pytest

import vsql
from tests.test_knn import assert_same_answer, clustered, exact_and_indexed

DIM = 16
N = 1500


@pytest.fixture
def con():
    connection = vsql.connect()
    x = clustered(N, DIM)
    connection.execute(f"CREATE TABLE docs (id INTEGER, lang VARCHAR, embedding FLOAT[{DIM}])")
    connection.executemany("INSERT INTO docs VALUES (?, ?, ?)",
                           [(i, "en" if i % 4 else "de", x[i].tolist()) for i in range(N)])
    yield connection
    connection.close()


INDEXES = [
    ("ivfflat", "vector_l2_ops", "<->", "lists = 20", "SET ivfflat.probes = 4"),
    ("ivfflat", "vector_cosine_ops", "<=>", "lists = 20", "SET ivfflat.probes = 4"),
    ("ivfflat", "vector_ip_ops", "<#>", "lists = 20", "SET ivfflat.probes = 4"),
    ("ivfpq", "vector_l2_ops", "<->", "lists = 20, m = 4", "SET ivfpq.probes = 6"),
    ("ivfpq", "vector_cosine_ops", "<=>", "lists = 20, m = 8", "SET ivfpq.probes = 6"),
]


@pytest.mark.parametrize(("method", "opclass", "operator", "options", "setting"), INDEXES)
def test_matches_exact(con, method, opclass, operator, options, setting):
    con.execute(f"CREATE INDEX docs_ivf ON docs USING {method} (embedding {opclass}) WITH ({options})")
    con.execute(setting)
    recalls = []
    for seed in range(5):
        q = clustered(1, DIM, seed=100 + seed)[0]
        for sql in (f"SELECT id, embedding {operator} ? AS d FROM docs ORDER BY d LIMIT 10",
                    f"SELECT id, embedding {operator} ? AS d FROM docs WHERE lang = 'de' ORDER BY d LIMIT 10"):
            with_index, exact = exact_and_indexed(con, sql, [q])
            assert len(with_index) == 10
            assert_same_answer(with_index, exact, min_recall=0.0)
            bound = exact[-1][1] + 1e-5
            recalls.append(sum(row[1] <= bound for row in with_index) / 10)
    assert np.mean(recalls) >= 0.9
    title = {"ivfflat": "IVF-Flat", "ivfpq": "IVF-PQ"}[method]
    plan = con.execute(f"EXPLAIN SELECT id FROM docs ORDER BY embedding {operator} ? LIMIT 3", [q]).fetchall()
    assert plan[0][1].startswith(f"{title} Index Scan using docs_ivf on docs")


def test_one_probe_still_returns_k_rows(con):
    con.execute("CREATE INDEX docs_ivf ON docs USING ivfflat (embedding vector_l2_ops) WITH (lists = 100)")
    con.execute("SET ivfflat.probes = 1")
    q = clustered(1, DIM, seed=9)[0]
    rows = con.execute("SELECT id FROM docs WHERE lang = 'de' ORDER BY embedding <-> ? LIMIT 200", [q]).fetchall()
    assert len(rows) == 200
    assert len({r[0] for r in rows}) == 200
    assert all(r[0] % 4 == 0 for r in rows)


def test_little_data_warns_and_returns_rows(caplog):
    connection = vsql.connect()
    connection.execute("CREATE TABLE small (id INTEGER, embedding FLOAT[4])")
    connection.execute("INSERT INTO small SELECT range, [range, 1, 2, 3]::FLOAT[4] FROM range(30)")
    with caplog.at_level(logging.WARNING, logger="vsql"):
        connection.execute("CREATE INDEX small_ivf ON small USING ivfflat (embedding vector_l2_ops) WITH (lists = 100)")
    assert any("ivfflat index created with little data" in record.getMessage() for record in caplog.records)
    rows = connection.execute("SELECT id FROM small ORDER BY embedding <-> [5, 1, 2, 3] LIMIT 25").fetchall()
    assert len(rows) == 25
    assert rows[0] == (5,)


def test_index_on_empty_table_trains_when_data_arrives():
    connection = vsql.connect()
    connection.execute("CREATE TABLE later (id INTEGER, embedding FLOAT[4])")
    connection.execute("CREATE INDEX later_ivf ON later USING ivfflat (embedding vector_l2_ops) WITH (lists = 4)")
    assert connection.execute("SELECT id FROM later ORDER BY embedding <-> [1, 1, 1, 1] LIMIT 3").fetchall() == []
    connection.execute("INSERT INTO later SELECT range, [range, range, 0, 0]::FLOAT[4] FROM range(100)")
    rows = connection.execute("SELECT id FROM later ORDER BY embedding <-> [7, 7, 0, 0] LIMIT 3").fetchall()
    assert [r[0] for r in rows][0] == 7
    assert len(rows) == 3
    assert connection.indexes.get("later_ivf").kernel.is_trained


def test_deletes_and_persistence(tmp_path):
    path = str(tmp_path / "ivf.duckdb")
    x = clustered(N, DIM)
    with vsql.connect(path) as connection:
        connection.execute(f"CREATE TABLE docs (id INTEGER, embedding FLOAT[{DIM}])")
        connection.executemany("INSERT INTO docs VALUES (?, ?)", [(i, x[i].tolist()) for i in range(N)])
        connection.execute("CREATE INDEX docs_pq ON docs USING ivfpq (embedding vector_l2_ops) WITH (lists = 10, m = 4)")
        nearest = [r[0] for r in connection.execute(
            "SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 30", [x[0].tolist()]).fetchall()]
        connection.execute(f"DELETE FROM docs WHERE id IN ({','.join(map(str, nearest))})")
    with vsql.connect(path) as connection:
        assert connection.indexes.get("docs_pq").load()
        rows = connection.execute("SELECT id FROM docs ORDER BY embedding <-> ? LIMIT 10", [x[0].tolist()]).fetchall()
        assert len(rows) == 10
        assert not set(nearest) & {r[0] for r in rows}
