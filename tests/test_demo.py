"""The semantic search demo (``python -m vsql.demo``) on the bundled sample, checked with numpy."""

from __future__ import annotations

import datetime
import io
import re

import numpy as np
import pytest

from vsql import demo, sample


@pytest.fixture(scope="module")
def base():
    """The sample's names, release dates, ranks and float32 vectors, by row."""
    table = sample.load_base(sample.dataset_path(full=False))
    xb = np.asarray(table.column("embedding").combine_chunks().values.to_numpy(), np.float32)
    return {
        "name": table.column("name").to_pylist(),
        "released": table.column("released").to_pylist(),
        "popularity_rank": table.column("popularity_rank").to_pylist(),
        "xb": xb.reshape(table.num_rows, -1),
    }


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    database = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    out = io.StringIO()
    results = demo.run(str(database), sample.dataset_path(full=False), n_queries=50, out=out)
    return database, results, out.getvalue()


def exact_cosine(base, name: str) -> np.ndarray:
    xb = base["xb"].astype(np.float64)
    q = xb[base["name"].index(name)]
    return 1 - xb @ q / (np.linalg.norm(xb, axis=1) * np.linalg.norm(q))


def test_demo_reference_is_in_sample(demo_run, base):
    _, results, _ = demo_run
    assert results.reference in base["name"]
    assert results.rows_loaded == len(base["name"])


def test_demo_similar_matches_numpy(demo_run, base):
    _, results, _ = demo_run
    rows = results.questions["similar"].rows
    distances = exact_cosine(base, results.reference)
    order = np.argsort(distances, kind="stable")[:10]
    assert len(rows) == 10
    assert rows[0][0] == base["name"][order[0]]
    assert rows[0][1] == pytest.approx(distances[order[0]], abs=1e-5)
    overlap = {row[0] for row in rows} & {base["name"][i] for i in order}
    assert len(overlap) >= 9
    for name, distance, _ in rows:
        assert distance == pytest.approx(distances[base["name"].index(name)], abs=1e-5)


def test_demo_filtered_results_satisfy_filters(demo_run):
    _, results, _ = demo_run
    recent = results.questions["recent"].rows
    popular = results.questions["popular"].rows
    assert len(recent) == 10
    assert all(row[2] >= datetime.date(2025, 1, 1) for row in recent)
    assert len(popular) == 10
    assert all(row[2] is not None for row in popular)


def test_demo_filtered_results_are_nearest(demo_run, base):
    _, results, _ = demo_run
    distances = exact_cosine(base, results.reference)
    ranked = np.isin(np.arange(len(distances)),
                     [i for i, rank in enumerate(base["popularity_rank"]) if rank is not None])
    expected = np.sort(distances[ranked])[:10]
    got = [row[1] for row in results.questions["popular"].rows]
    # 312 rows match, fewer than the exact-scan threshold, so the result is exact.
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_demo_near_duplicates_are_close(demo_run, base):
    _, results, _ = demo_run
    rows = results.questions["duplicates"].rows
    assert rows
    xb = base["xb"].astype(np.float64)
    for package, near_duplicate, distance, _ in rows:
        a, b = xb[base["name"].index(package)], xb[base["name"].index(near_duplicate)]
        assert package < near_duplicate
        assert distance < demo.DUPLICATE_DISTANCE
        assert distance == pytest.approx(1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)),
                                         abs=1e-5)


def test_demo_explain_shows_index(demo_run):
    _, results, _ = demo_run
    assert results.plan[0] == (
        "HNSW Index Scan using packages_hnsw on packages (cosine, ef_search=80, k=10)"
    )
    assert results.plan[1].startswith("Filter: ")


def test_demo_prints_recall(demo_run):
    _, results, output = demo_run
    match = re.search(r"(\d+) held-out queries: recall@10 = ([0-9.]+)", output)
    assert match is not None
    assert int(match.group(1)) == 50
    assert float(match.group(2)) >= 0.9
    assert results.recall == pytest.approx(float(match.group(2)), abs=5e-4)


def test_demo_prints_next_steps(demo_run):
    database, _, output = demo_run
    assert f"vsql {database}" in output
    assert f"duckdb {database}" in output


def test_demo_reuses_database(demo_run):
    database, first, _ = demo_run
    out = io.StringIO()
    again = demo.run(str(database), sample.dataset_path(full=False), n_queries=0, out=out)
    assert "Reusing table packages (20,000 rows)." in out.getvalue()
    assert "Reusing index packages_hnsw stored in the database file." in out.getvalue()
    assert again.questions["similar"].rows == first.questions["similar"].rows


def test_format_table_cuts_last_column():
    lines = demo.format_table(["name", "distance", "summary"],
                              [("numpy", 0.5, "x" * 200), ("a", None, "short")], width=40)
    assert all(len(line) <= 40 for line in lines)
    assert lines[2].endswith("...")
    assert lines[2].startswith("numpy    0.5000  ")
    assert lines[3].rstrip() == "a                short"


def test_main_rejects_missing_full_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(sample.DATASET_DIR_VARIABLE, str(tmp_path / "absent"))
    assert demo.main(["--db", str(tmp_path / "x.duckdb"), "--full"]) == 1
    assert "Error: full dataset not found in" in capsys.readouterr().err
