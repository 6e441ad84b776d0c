"""Run every lesson in sql_examples/ through the vsql shell and check its results with numpy.

Each script runs once, in ``-json`` mode, on a new in-memory database with the repository root as
the working directory (lessons 2 and 8 read files under ``sql_examples/data``). The shell prints
one JSON array per result, so results are found by their column names.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "sql_examples"
SCRIPTS = sorted(path.name for path in EXAMPLES.glob("*.sql"))


class ScriptRun:
    """The exit status, output and parsed results of one script run."""

    def __init__(self, completed: subprocess.CompletedProcess) -> None:
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.results = _parse_json_results(completed.stdout)

    def with_columns(self, *columns: str) -> list[list[dict]]:
        """Return the non-empty results whose columns are exactly ``columns``, in order."""
        return [rows for rows in self.results if rows and tuple(rows[0]) == columns]

    def one(self, *columns: str) -> list[dict]:
        found = self.with_columns(*columns)
        assert len(found) == 1, f"expected one result with columns {columns}, found {len(found)}"
        return found[0]

    def plans(self) -> list[list[str]]:
        """Return vsql's plan lines of every EXPLAIN result, in order."""
        return [[row["explain_value"] for row in rows if row["explain_key"] == "vsql_plan"]
                for rows in self.results if rows and "explain_key" in rows[0]]


def _parse_json_results(text: str) -> list[list[dict]]:
    decoder = json.JSONDecoder()
    results, position = [], 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return results
        value, position = decoder.raw_decode(text, position)
        results.append(value)


@cache
def run_script(name: str) -> ScriptRun:
    with open(EXAMPLES / name, encoding="utf-8") as script:
        completed = subprocess.run(
            [sys.executable, "-m", "vsql", ":memory:", "-json"],
            stdin=script, capture_output=True, text=True, cwd=REPO, timeout=600,
        )
    return ScriptRun(completed)


def inserted_rows(name: str, table: str) -> dict[int, list[str]]:
    """Return the fields of each row of ``INSERT INTO table VALUES ...;`` in a script, by id.

    Quoted fields keep their text without the quotes; the first field is the integer id.
    """
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    block = re.search(rf"INSERT INTO {table} VALUES(.*?);", text, re.DOTALL)
    assert block is not None, f"{name} has no INSERT INTO {table} VALUES"
    rows = {}
    for row in re.findall(r"\(([^()]*)\)", block.group(1)):
        fields = [field.strip("'") for field in re.findall(r"'[^']*'|[^,\s][^,]*", row)]
        rows[int(fields[0])] = fields
    return rows


def as_vector(field: str) -> np.ndarray:
    return np.array(json.loads(field), np.float32)


def nearest(vectors: dict[int, np.ndarray], query, metric: str, k: int,
            allowed=None) -> list[tuple[int, float]]:
    """Return the exact k nearest (id, distance) pairs by ``metric``, computed in float64."""
    q = np.asarray(query, np.float64)
    scored = []
    for i, v in vectors.items():
        if allowed is not None and i not in allowed:
            continue
        v = v.astype(np.float64)
        if metric == "l2":
            d = float(np.linalg.norm(v - q))
        elif metric == "ip":
            d = -float(v @ q)
        else:
            d = 1.0 - float(v @ q) / (np.linalg.norm(v) * np.linalg.norm(q))
        scored.append((d, i))
    scored.sort()
    return [(i, d) for d, i in scored[:k]]


def assert_neighbours(rows: list[dict], expected: list[tuple[int, float]], column: str,
                      sign: float = 1.0) -> None:
    assert [row["id"] for row in rows] == [i for i, _ in expected]
    np.testing.assert_allclose([sign * row[column] for row in rows], [d for _, d in expected],
                               rtol=1e-5, atol=1e-6)


# -- every script -------------------------------------------------------------------------------


def test_every_lesson_listed():
    assert len(SCRIPTS) == 9
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in SCRIPTS:
        assert f"`{name}`" in readme


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_runs_cleanly(name):
    run = run_script(name)
    assert "Error:" not in run.stderr
    assert "Error:" not in run.stdout
    assert run.returncode == 0


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_starts_with_lesson_comment(name):
    first_line = (EXAMPLES / name).read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith("-- Lesson ")


# -- one test per lesson ------------------------------------------------------------------------


def test_01_vector_tables():
    run = run_script("01_vector_tables.sql")
    describe_columns = ("column_name", "column_type", "null", "key", "default", "extra")
    described = {row["column_name"]: row["column_type"] for row in run.one(*describe_columns)}
    assert described["embedding"] == "FLOAT[3]"

    rows = run.one("id", "label", "embedding")
    assert [row["embedding"] for row in rows] == [[1, 2, 3], [4, 5, 6], [0.5, 0.25, 0]]
    copies = run.one("id", "embedding", "column_type")
    assert [row["embedding"] for row in copies] == [row["embedding"] for row in rows]
    assert {row["column_type"] for row in copies} == {"FLOAT[3]"}

    cast_columns = ("fixed_size", "fixed_type", "any_length", "any_length_type", "dims", "as_text")
    [casts] = run.one(*cast_columns)
    assert casts["fixed_type"] == "FLOAT[3]"
    assert casts["any_length"] == [1, 2, 3, 4]
    assert casts["any_length_type"] == "FLOAT[]"
    assert casts["dims"] == 4
    assert casts["as_text"] == "[1.0, 2.0, 3.0]"


def test_02_loading():
    run = run_script("02_loading.sql")
    with open(EXAMPLES / "data" / "items.csv", encoding="utf-8") as handle:
        csv_rows = list(csv.DictReader(handle))

    loaded = run.one("id", "category", "embedding", "column_type")
    assert [row["id"] for row in loaded] == [int(row["id"]) for row in csv_rows]
    np.testing.assert_allclose([row["embedding"] for row in loaded],
                               [json.loads(row["embedding"]) for row in csv_rows], rtol=1e-6)
    assert {row["column_type"] for row in loaded} == {"FLOAT[3]"}

    assert run.one("stored_type") == [{"stored_type": "FLOAT[]"}]
    parquet = pq.read_table(EXAMPLES / "data" / "packages_500.parquet")
    [summary] = run.one("packages", "dims", "column_type")
    assert summary == {"packages": parquet.num_rows, "dims": 384, "column_type": "FLOAT[384]"}
    assert run.one("min_norm", "max_norm") == [{"min_norm": 1.0, "max_norm": 1.0}]

    expected_counts: dict[str, int] = {}
    for row in csv_rows:
        expected_counts[row["category"]] = expected_counts.get(row["category"], 0) + 1
    expected_counts["grain"] *= 2  # the grain rows are appended a second time
    counts = {row["category"]: row["items"] for row in run.one("category", "items")}
    assert counts == expected_counts


def test_03_distance_functions():
    run = run_script("03_distance_functions.sql")
    text = (EXAMPLES / "03_distance_functions.sql").read_text(encoding="utf-8")
    pairs = {
        int(i): (np.array(a.split(","), np.float64), np.array(b.split(","), np.float64))
        for i, a, b in re.findall(r"\((\d+), '\[([-0-9, ]+)\]', '\[([-0-9, ]+)\]'\)", text)
    }
    assert len(pairs) == 4

    operators = run.one("pair_id", "l2", "negative_inner_product", "cosine", "l1")
    functions = run.one("pair_id", "l2", "inner_product", "cosine", "l1")
    for op_row, fn_row in zip(operators, functions, strict=True):
        a, b = pairs[op_row["pair_id"]]
        cosine = 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
        expected = [np.linalg.norm(a - b), -(a @ b), cosine, np.abs(a - b).sum()]
        got = [op_row["l2"], op_row["negative_inner_product"], op_row["cosine"], op_row["l1"]]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
        got = [fn_row["l2"], -fn_row["inner_product"], fn_row["cosine"], fn_row["l1"]]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)

    for row in run.one("pair_id", "dims", "norm", "unit"):
        a, _ = pairs[row["pair_id"]]
        assert row["dims"] == 3
        np.testing.assert_allclose(row["norm"], np.linalg.norm(a), rtol=1e-6)
        np.testing.assert_allclose(row["unit"], a / np.linalg.norm(a), rtol=1e-6, atol=1e-7)

    [similarity] = run.one("pair_id", "cosine_similarity", "unit_inner_product", "unit_l2")
    a, b = pairs[2]
    cosine_similarity = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    np.testing.assert_allclose(similarity["cosine_similarity"], cosine_similarity, rtol=1e-6)
    np.testing.assert_allclose(similarity["unit_inner_product"], cosine_similarity, rtol=1e-6)
    np.testing.assert_allclose(similarity["unit_l2"], np.sqrt(2 * (1 - cosine_similarity)),
                               rtol=1e-5)
    assert run.one("literal_distance") == [{"literal_distance": 2.0}]


def test_04_indexes_and_settings():
    run = run_script("04_indexes_and_settings.sql")
    listing = [tuple(row.values())
               for row in run.one("index_name", "method", "metric", "options", "rows")]
    assert listing == [
        ("points_cosine", "hnsw", "cosine", "ef_construction=32, m=8", 200),
        ("points_embedding_idx", "hnsw", "l1", "ef_construction=64, m=16", 200),
        ("points_ip", "hnsw", "ip", "ef_construction=64, m=8", 200),
        ("points_ivfflat", "ivfflat", "l2", "lists=4", 200),
        ("points_ivfpq", "ivfpq", "l2", "lists=4, m=3, nbits=4", 200),
        ("points_l2", "hnsw", "l2", "ef_construction=64, m=16", 200),
    ]
    ef_search_values = [rows[0]["hnsw.ef_search"] for rows in run.with_columns("hnsw.ef_search")]
    assert ef_search_values == ["80", "100", "80", "200", "80"]
    assert run.one("ivfflat.probes") == [{"ivfflat.probes": "2"}]
    assert run.one("indexes_left") == [{"indexes_left": 5}]


def test_05_knn():
    run = run_script("05_knn.sql")
    items = inserted_rows("05_knn.sql", "items")
    vectors = {i: as_vector(fields[2]) for i, fields in items.items()}
    names = {i: fields[1] for i, fields in items.items()}
    assert len(vectors) == 10

    l2_pages = run.with_columns("id", "name", "l2_distance")
    assert len(l2_pages) == 3
    first, second, by_leek = l2_pages
    ranked = nearest(vectors, [1, 0, 0], "l2", 6)
    assert_neighbours(first, ranked[:3], "l2_distance")
    assert_neighbours(second, ranked[3:], "l2_distance")
    assert [row["name"] for row in first] == [names[i] for i, _ in ranked[:3]]
    leek = next(i for i, name in names.items() if name == "leek")
    assert_neighbours(by_leek, nearest(vectors, vectors[leek], "l2", 4), "l2_distance")

    cosine = run.one("id", "name", "cosine_distance")
    assert_neighbours(cosine, nearest(vectors, [0, 2, 0], "cosine", 3), "cosine_distance")
    by_ip = nearest(vectors, [0, 0, 1], "ip", 3)
    assert_neighbours(run.one("id", "name", "negative_inner_product"), by_ip,
                      "negative_inner_product")
    assert_neighbours(run.one("id", "name", "inner_product"), by_ip, "inner_product", sign=-1.0)


def test_06_filtered_knn():
    run = run_script("06_filtered_knn.sql")
    items = inserted_rows("06_filtered_knn.sql", "items")
    vectors = {i: as_vector(fields[3]) for i, fields in items.items()}
    category = {i: fields[1] for i, fields in items.items()}
    price = {i: float(fields[2]) for i, fields in items.items()}
    assert len(vectors) == 10

    by_category = run.with_columns("id", "category", "distance")
    assert len(by_category) == 2
    vegetables = {i for i, c in category.items() if c == "vegetable"}
    assert_neighbours(by_category[0], nearest(vectors, [1, 0, 0], "l2", 3, vegetables), "distance")
    assert {row["category"] for row in by_category[0]} == {"vegetable"}
    same_as_5 = {i for i in vectors if category[i] == category[5]}
    assert_neighbours(by_category[1], nearest(vectors, [0, 0, 1], "l2", 2, same_as_5), "distance")

    cheap = {i for i in vectors if category[i] in ("fruit", "grain") and price[i] < 2}
    rows = run.one("id", "category", "price", "distance")
    assert_neighbours(rows, nearest(vectors, [1, 0, 0], "l2", 3, cheap), "distance")

    expensive = {i for i in vectors if price[i] >= 2.5}
    assert len(expensive) == 2
    rows = run.one("id", "price", "distance")
    assert_neighbours(rows, nearest(vectors, [1, 0, 0], "l2", 5, expensive), "distance")

    assert [] in run.results  # WHERE price > 100 matches no row


def test_07_knn_in_joins_and_ctes():
    run = run_script("07_knn_in_joins_and_ctes.sql")
    items = inserted_rows("07_knn_in_joins_and_ctes.sql", "items")
    vectors = {i: as_vector(fields[3]) for i, fields in items.items()}
    names = {i: fields[1] for i, fields in items.items()}
    category_of = {i: int(fields[2]) for i, fields in items.items()}
    categories = {int(f[0]): f[1]
                  for f in inserted_rows("07_knn_in_joins_and_ctes.sql", "categories").values()}
    searches = {i: as_vector(fields[1])
                for i, fields in inserted_rows("07_knn_in_joins_and_ctes.sql", "searches").items()}
    assert len(vectors) == 8
    assert len(searches) == 3

    rows = run.one("search_id", "id", "distance")
    expected = [(search_id, i, d) for search_id, q in sorted(searches.items())
                for i, d in nearest(vectors, q, "l2", 2)]
    assert [(row["search_id"], row["id"]) for row in rows] == [(s, i) for s, i, _ in expected]
    np.testing.assert_allclose([row["distance"] for row in rows], [d for _, _, d in expected],
                               rtol=1e-5)

    rows = run.one("id", "name", "category", "distance")
    ranked = nearest(vectors, [0.5, 0.5, 0], "l2", 3)
    assert_neighbours(rows, ranked, "distance")
    assert [row["category"] for row in rows] == [categories[category_of[i]] for i, _ in ranked]

    union = run.one("query", "id")
    expected_union = sorted(
        [("near [0,0,1]", i) for i, _ in nearest(vectors, [0, 0, 1], "l2", 2)]
        + [("near [1,0,0]", i) for i, _ in nearest(vectors, [1, 0, 0], "l2", 2)]
    )
    assert [(row["query"], row["id"]) for row in union] == expected_union

    kale = next(i for i, name in names.items() if name == "kale")
    saved = run.one("id", "name")
    assert [row["id"] for row in saved] == [i for i, _ in nearest(vectors, vectors[kale], "l2", 3)]


def test_08_measuring_recall():
    run = run_script("08_measuring_recall.sql")
    table = pq.read_table(EXAMPLES / "data" / "packages_500.parquet", columns=["id", "embedding"])
    ids = np.asarray(table.column("id").to_numpy())
    x = np.asarray(table.column("embedding").to_pylist(), np.float64)
    is_query = ids % 10 == 0
    xb, base_ids = x[~is_query], ids[~is_query]
    assert run.one("packages", "queries") == [{"packages": len(xb), "queries": int(is_query.sum())}]

    first_query = x[is_query][np.argmin(ids[is_query])]
    cosine = 1 - xb @ first_query / (np.linalg.norm(xb, axis=1) * np.linalg.norm(first_query))
    order = np.argsort(cosine, kind="stable")[:10]
    rows = run.one("id", "name", "exact_distance")
    assert [row["id"] for row in rows] == base_ids[order].tolist()
    np.testing.assert_allclose([row["exact_distance"] for row in rows], cosine[order], rtol=1e-4,
                               atol=1e-6)

    recall = {row["ef_search"]: row["recall_at_10"] for row in run.one("ef_search", "recall_at_10")}
    assert set(recall) == {10, 100}
    assert 0.0 < recall[10] <= 1.0
    assert recall[100] >= 0.9


def test_09_explain():
    run = run_script("09_explain.sql")
    plans = run.plans()
    assert len(plans) == 8
    index_scan = "HNSW Index Scan using items_cosine on items (cosine, ef_search={}, k=5)"
    assert plans[0] == [index_scan.format(80)]
    assert plans[1][0] == index_scan.format(80)
    # 25 of the 100 rows have id % 4 = 0.
    assert plans[1][1].startswith("Filter: 25 of 100 rows match (25.0%): exact scan")
    assert plans[2] == [index_scan.format(120)]
    for plan, reason in zip(plans[3:6], ["l2", "DESC", "vsql.enable_index_scan is off"],
                            strict=True):
        assert len(plan) == 1
        assert plan[0].startswith("Exact scan: ")
        assert reason in plan[0]
    assert plans[6] == [index_scan.format(80)]
    assert plans[7] == [
        "HNSW Index Only Scan using items_covering on items (cosine, ef_search=80, k=5)",
        "DuckDB runs no statement: vsql builds the rows from the index",
    ]
    i = np.arange(100)
    x = np.stack([np.cos(i / 7), np.sin(i / 7), (i % 10) / 10], axis=1).astype(np.float32).astype(np.float64)
    distance = 1 - x[:, 0] / np.linalg.norm(x, axis=1)
    rows = run.one("id", "distance")
    assert [row["id"] for row in rows] == list(np.argsort(distance, kind="stable")[:5])
    assert [row["distance"] for row in rows] == pytest.approx(np.sort(distance)[:5], abs=1e-6)
