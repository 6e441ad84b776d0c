"""Hybrid search: kNN with WHERE predicates returns min(k, matching rows) rows, in exact order.

Every query runs through the HNSW index and as an exact scan (``vsql.enable_index_scan = off``);
the row count must be exactly min(k, matching rows) and recall@10 against the exact filtered
answer at least 0.95, at selectivities from one row to all of them.
"""

import numpy as np
import pytest

import vsql
import vsql.index_manager
from tests.test_knn import clustered

DIM = 16
N = 4000


@pytest.fixture(scope="module")
def con():
    connection = vsql.connect()
    x = clustered(N, DIM, seed=21)
    rng = np.random.default_rng(4)
    categories = rng.integers(0, 20, N)
    prices = np.round(rng.uniform(1, 100, N), 2)
    rows = []
    for i in range(N):
        note = None if i % 7 == 0 else f"item {i}"
        rows.append((i, int(categories[i]), float(prices[i]), note, x[i].tolist()))
    connection.execute(
        f"CREATE TABLE products (id INTEGER, category INTEGER, price DOUBLE, note VARCHAR, embedding FLOAT[{DIM}])"
    )
    connection.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?)", rows)
    connection.execute("CREATE TABLE featured AS SELECT range AS category FROM range(3)")
    connection.execute("CREATE INDEX products_l2 ON products USING hnsw (embedding vector_l2_ops)")
    connection.execute("SET hnsw.ef_search = 64")
    yield connection
    connection.close()


FILTERS = [
    "id = 17",  # one row
    "id < 5",  # fewer rows than k
    "category = 3 AND price < 10",
    "category IN (1, 2)",
    "price BETWEEN 20 AND 30",
    "note LIKE 'item 1%'",
    "note IS NULL",
    "NOT (category = 4) OR price > 99",
    "category IN (SELECT category FROM featured)",
    "price > 50",
    "price > 5",
    "true",
]


def matching_count(con, where):
    return con.execute(f"SELECT count(*) FROM products WHERE {where}").fetchone()[0]


@pytest.fixture(params=[100, 10_000], ids=["walks", "exact-scans"])
def exact_rows(request, monkeypatch):
    """Run each case with the default exact-scan threshold and with one low enough for walks."""
    monkeypatch.setattr(vsql.index_manager, "EXACT_FILTER_ROWS", request.param)
    return request.param


@pytest.mark.parametrize("where", FILTERS)
@pytest.mark.parametrize("offset", [0, 7])
def test_filtered_rows_and_recall(con, exact_rows, where, offset):
    k = 10
    matching = matching_count(con, where)
    recalls = []
    for seed in range(4):
        q = clustered(1, DIM, seed=300 + seed)[0].tolist()
        sql = (f"SELECT id, embedding <-> ? AS d FROM products WHERE {where} "
               f"ORDER BY d LIMIT {k} OFFSET {offset}")
        rows = con.execute(sql, [q]).fetchall()
        con.execute("SET vsql.enable_index_scan = off")
        exact = con.execute(sql, [q]).fetchall()
        con.execute("RESET vsql.enable_index_scan")
        assert len(rows) == max(0, min(k, matching - offset))
        assert len(rows) == len(exact)
        distances = [row[1] for row in rows]
        assert distances == sorted(distances)
        if exact:
            bound = exact[-1][1] + 1e-5
            recalls.append(sum(d <= bound for d in distances) / len(exact))
    if recalls:
        assert np.mean(recalls) >= 0.95


def test_filtered_rows_satisfy_predicate(con):
    q = clustered(1, DIM, seed=5)[0].tolist()
    rows = con.execute(
        "SELECT id, category, price FROM products WHERE category = 3 AND price < 50 "
        "ORDER BY embedding <-> ? LIMIT 25", [q]).fetchall()
    assert len(rows) == 25
    assert all(category == 3 and price < 50 for _, category, price in rows)


def test_filter_with_parameters(con):
    q = clustered(1, DIM, seed=6)[0].tolist()
    rows = con.execute(
        "SELECT id FROM products WHERE category = ? AND price < ? ORDER BY embedding <-> ? LIMIT 5",
        [2, 60.0, q]).fetchall()
    assert len(rows) == 5
    ids = [r[0] for r in rows]
    checked = con.execute(
        f"SELECT count(*) FROM products WHERE id IN ({','.join(map(str, ids))}) AND category = 2 AND price < 60"
    ).fetchone()[0]
    assert checked == 5


def test_filter_that_matches_nothing(con):
    q = clustered(1, DIM, seed=6)[0].tolist()
    assert con.execute("SELECT id FROM products WHERE price > 1000 ORDER BY embedding <-> ? LIMIT 5", [q]).fetchall() == []


@pytest.mark.parametrize(
    ("where", "strategy"),
    [
        ("id < 50", "exact scan of the matching rows"),
        ("category < 2", "filtered HNSW walk through the neighbours of non-matching rows"),
        ("price > 1", "HNSW walk that skips non-matching rows"),
    ],
)
def test_explain_shows_strategy_and_count(con, monkeypatch, where, strategy):
    monkeypatch.setattr(vsql.index_manager, "EXACT_FILTER_ROWS", 100)
    plan = [row[1] for row in con.execute(
        f"EXPLAIN SELECT id FROM products WHERE {where} ORDER BY embedding <-> ? LIMIT 5", [[0.0] * DIM]
    ).fetchall() if row[0] == "vsql_plan"]
    count = matching_count(con, where)
    assert plan[0].startswith("HNSW Index Scan using products_l2 on products")
    assert plan[1].startswith(f"Filter: {count:,} of {N:,} rows match")
    assert strategy in plan[1]
