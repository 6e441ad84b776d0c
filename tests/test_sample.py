"""The bundled pypi-minilm sample, its loaders and the choice between sample and full dataset."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vsql import sample
from vsql.errors import DataError, OperationalError, ProgrammingError

SAMPLE_DIR = sample.SAMPLE_DIR
FULL_DIR = sample.full_dataset_dir()
FULL_PRESENT = (FULL_DIR / "base.parquet").is_file()

EXPECTED_TYPES = [
    ("id", "BIGINT"),
    ("name", "VARCHAR"),
    ("version", "VARCHAR"),
    ("released", "DATE"),
    ("popularity_rank", "INTEGER"),
    ("summary", "VARCHAR"),
    ("embedding", "FLOAT[384]"),
]

# float16 rounds each element to a relative error of at most 2**-11, so a unit vector's norm
# after rounding lies within 2**-11 of 1 (plus float32 noise from the original normalization).
NORM_TOLERANCE = 2.0**-11


class WrappedConnection:
    """Stand-in for a vsql Connection: only the ``.duckdb`` attribute that create_table reads."""

    def __init__(self, raw: duckdb.DuckDBPyConnection) -> None:
        self.duckdb = raw


def column_types(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE {table}").fetchall()]


def check_truth(xq: np.ndarray, xb: np.ndarray, base_ids: np.ndarray, truth_ids, truth_ip) -> None:
    """Check one query's truth against float64 inner products over every base row, tie-aware."""
    scores = xb.astype(np.float64) @ xq.astype(np.float64)
    position_of_id = {int(base_id): position for position, base_id in enumerate(base_ids)}
    positions = np.array([position_of_id[int(base_id)] for base_id in truth_ids])

    assert len(set(truth_ids.tolist())) == len(truth_ids)
    np.testing.assert_allclose(scores[positions], truth_ip, rtol=0, atol=1e-6)
    assert np.all(np.diff(scores[positions]) <= 1e-6)

    others = np.delete(scores, positions)
    assert scores[positions].min() >= others.max() - 1e-6


def write_tiny_dataset(directory: Path, n_rows: int = 10, n_vectors: int | None = None) -> None:
    """Write the first ``n_rows`` sample rows as a dataset directory with base files only."""
    directory.mkdir(parents=True, exist_ok=True)
    base = pq.read_table(SAMPLE_DIR / "base.parquet").slice(0, n_rows)
    pq.write_table(base, directory / "base.parquet")
    xb16 = np.load(SAMPLE_DIR / "base_vectors_f16.npy")
    np.save(
        directory / "base_vectors_f16.npy", xb16[: n_vectors if n_vectors is not None else n_rows]
    )


@pytest.fixture
def no_full_dataset(monkeypatch, tmp_path):
    """Point the full-dataset location at an empty directory."""
    monkeypatch.delenv(sample.DATASET_DIR_VARIABLE, raising=False)
    monkeypatch.setattr(sample, "DEFAULT_FULL_DIR", tmp_path / "absent")


def test_sample_files_are_bundled():
    names = {path.name for path in SAMPLE_DIR.iterdir()}
    assert {
        "README.md",
        "base.parquet",
        "base_vectors_f16.npy",
        "queries.parquet",
        "query_vectors_f16.npy",
        "query_truth_ids.npy",
        "query_truth_ip.npy",
    } <= names
    total_bytes = sum(path.stat().st_size for path in SAMPLE_DIR.iterdir())
    assert total_bytes < 20_000_000


def test_sample_table_in_duckdb():
    con = duckdb.connect()
    n_rows = sample.create_table(con, "packages", SAMPLE_DIR)

    assert n_rows == 20_000
    assert column_types(con, "packages") == EXPECTED_TYPES
    assert con.execute("SELECT count(*), count(DISTINCT id) FROM packages").fetchone() == (
        20_000,
        20_000,
    )
    assert con.execute("SELECT min(id) >= 0, max(id) < 100000 FROM packages").fetchone() == (
        True,
        True,
    )


def test_sample_embedding_values_in_duckdb():
    con = duckdb.connect()
    sample.create_table(con, "packages", SAMPLE_DIR)
    xb = np.load(SAMPLE_DIR / "base_vectors_f16.npy").astype(np.float32)
    ids = pq.read_table(SAMPLE_DIR / "base.parquet", columns=["id"]).column("id").to_numpy()

    for position in (0, 1234, 19_999):
        row = con.execute(
            "SELECT embedding FROM packages WHERE id = ?", [int(ids[position])]
        ).fetchone()
        np.testing.assert_array_equal(np.array(row[0], dtype=np.float32), xb[position])


def test_create_table_through_wrapper():
    raw = duckdb.connect()
    n_rows = sample.create_table(WrappedConnection(raw), "my table", SAMPLE_DIR)

    assert n_rows == 20_000
    assert raw.execute('SELECT count(*) FROM "my table"').fetchone() == (20_000,)
    assert column_types(raw, '"my table"')[-1] == ("embedding", "FLOAT[384]")


def test_create_table_leaves_no_view():
    con = duckdb.connect()
    sample.create_table(con, "packages", SAMPLE_DIR)
    names = [row[0] for row in con.execute("SHOW TABLES").fetchall()]
    assert names == ["packages"]


def test_create_table_existing_name():
    con = duckdb.connect()
    sample.create_table(con, "packages", SAMPLE_DIR)
    with pytest.raises(ProgrammingError, match='Table with name "packages" already exists'):
        sample.create_table(con, "packages", SAMPLE_DIR)


def test_create_table_rejects_other_objects():
    with pytest.raises(TypeError, match="^expected a duckdb or vsql connection, not str$"):
        sample.create_table("duckdb.connect()", "packages", SAMPLE_DIR)


def test_load_base_arrow_types():
    base = sample.load_base(SAMPLE_DIR)

    assert base.column_names == [*sample.SCALAR_COLUMNS, "embedding"]
    assert base.schema.field("embedding").type == pa.list_(pa.float32(), 384)
    assert base.num_rows == 20_000
    xb = np.load(SAMPLE_DIR / "base_vectors_f16.npy").astype(np.float32)
    flat = base.column("embedding").combine_chunks().flatten().to_numpy()
    np.testing.assert_array_equal(flat.reshape(-1, 384), xb)


def test_sample_vectors_unit_norm():
    base = sample.load_base(SAMPLE_DIR)
    xb = base.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, 384)
    _, xq, _ = sample.load_queries(SAMPLE_DIR)

    assert np.abs(np.linalg.norm(xb, axis=1) - 1).max() < NORM_TOLERANCE
    assert np.abs(np.linalg.norm(xq, axis=1) - 1).max() < NORM_TOLERANCE


def test_load_queries_shapes():
    queries, xq, truth_ids = sample.load_queries(SAMPLE_DIR)

    assert queries.num_rows == 200
    assert queries.column_names == [*sample.SCALAR_COLUMNS, "embedding"]
    assert xq.dtype == np.float32
    assert xq.shape == (200, 384)
    assert truth_ids.dtype == np.int32
    assert truth_ids.shape == (200, 100)
    np.testing.assert_array_equal(
        queries.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, 384), xq
    )


def test_sample_truth_matches_numpy():
    base = pq.read_table(SAMPLE_DIR / "base.parquet", columns=["id"])
    xb = np.load(SAMPLE_DIR / "base_vectors_f16.npy").astype(np.float32)
    _, xq, truth_ids = sample.load_queries(SAMPLE_DIR)
    truth_ip = np.load(SAMPLE_DIR / "query_truth_ip.npy")

    rng = np.random.default_rng(3)
    for query in rng.choice(len(xq), size=5, replace=False):
        check_truth(xq[query], xb, base.column("id").to_numpy(), truth_ids[query], truth_ip[query])


def test_sample_truth_ids_in_sample():
    base_ids = pq.read_table(SAMPLE_DIR / "base.parquet", columns=["id"]).column("id").to_numpy()
    _, _, truth_ids = sample.load_queries(SAMPLE_DIR)
    assert np.isin(truth_ids, base_ids).all()


def test_dataset_path_prefers_full(monkeypatch, tmp_path):
    write_tiny_dataset(tmp_path / "full")
    monkeypatch.setenv(sample.DATASET_DIR_VARIABLE, str(tmp_path / "full"))

    assert sample.dataset_path() == tmp_path / "full"
    assert sample.dataset_path(full=True) == tmp_path / "full"
    assert sample.load_base().num_rows == 10


def test_dataset_path_default_location(monkeypatch, tmp_path):
    write_tiny_dataset(tmp_path / "full")
    monkeypatch.delenv(sample.DATASET_DIR_VARIABLE, raising=False)
    monkeypatch.setattr(sample, "DEFAULT_FULL_DIR", tmp_path / "full")

    assert sample.dataset_path() == tmp_path / "full"


def test_dataset_path_full_false(monkeypatch, tmp_path):
    write_tiny_dataset(tmp_path / "full")
    monkeypatch.setenv(sample.DATASET_DIR_VARIABLE, str(tmp_path / "full"))

    assert sample.dataset_path(full=False) == SAMPLE_DIR


def test_dataset_path_falls_back(no_full_dataset):
    assert sample.dataset_path() == SAMPLE_DIR
    assert sample.load_base().num_rows == 20_000


def test_dataset_path_variable_without_data(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv(sample.DATASET_DIR_VARIABLE, str(tmp_path))

    with caplog.at_level(logging.WARNING, logger="vsql.sample"):
        assert sample.dataset_path() == SAMPLE_DIR
    assert caplog.messages == [
        f"VSQL_DATASET_DIR={tmp_path} contains no dataset, using the sample in {SAMPLE_DIR}"
    ]


def test_dataset_path_full_required(no_full_dataset, tmp_path):
    with pytest.raises(OperationalError) as raised:
        sample.dataset_path(full=True)
    assert str(raised.value) == (
        f"full dataset not found in {tmp_path / 'absent'}: "
        "set VSQL_DATASET_DIR to the directory that contains base.parquet"
    )


def test_load_base_vector_count_mismatch(tmp_path):
    write_tiny_dataset(tmp_path, n_rows=10, n_vectors=9)
    with pytest.raises(DataError) as raised:
        sample.load_base(tmp_path)
    assert str(raised.value) == (
        f"{tmp_path / 'base_vectors_f16.npy'} has 9 vectors but its Parquet file has 10 rows: "
        "regenerate the dataset"
    )


@pytest.mark.slow
@pytest.mark.skipif(not FULL_PRESENT, reason=f"full dataset not found in {FULL_DIR}")
def test_full_dataset_in_duckdb():
    con = duckdb.connect()
    n_rows = sample.create_table(con, "packages", sample.dataset_path(full=True))

    assert n_rows == 100_000
    assert column_types(con, "packages") == EXPECTED_TYPES
    assert con.execute("SELECT min(id), max(id), count(DISTINCT id) FROM packages").fetchone() == (
        0,
        99_999,
        100_000,
    )


@pytest.mark.slow
@pytest.mark.skipif(not FULL_PRESENT, reason=f"full dataset not found in {FULL_DIR}")
def test_full_truth_matches_numpy():
    base = sample.load_base(FULL_DIR)
    xb = base.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, 384)
    queries, xq, truth_ids = sample.load_queries(FULL_DIR)
    truth_ip = np.load(FULL_DIR / "query_truth_ip.npy")

    assert queries.num_rows == 1000
    assert truth_ids.shape == (1000, 100)
    for query in (0, 999):
        check_truth(xq[query], xb, base.column("id").to_numpy(), truth_ids[query], truth_ip[query])
