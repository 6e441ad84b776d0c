"""Loaders for the pypi-minilm dataset: the full one when present, else the sample in ``vsql/data``.

Both directories have the layout described in ``vsql/data/README.md``. Scalar columns are in
``base.parquet`` and ``queries.parquet``, and float16 vectors in ``.npy`` files whose row i belongs
to row i of the matching Parquet file. ``query_truth_ids.npy`` lists each query's exact top-100
base ids by inner product.

    import duckdb
    from vsql import sample

    con = duckdb.connect()
    sample.create_table(con, "packages")
    queries, xq, truth_ids = sample.load_queries()
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vsql.errors import DataError, OperationalError, translate

logger = logging.getLogger("vsql.sample")

SAMPLE_DIR = Path(__file__).resolve().parent / "data"
# Default location of the full dataset: shared/datasets/pypi-minilm beside the repository root.
# NOTE: an installed copy in site-packages has no such sibling directory, so it finds the full
# dataset only through VSQL_DATASET_DIR.
DEFAULT_FULL_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "pypi-minilm"
DATASET_DIR_VARIABLE = "VSQL_DATASET_DIR"

SCALAR_COLUMNS = ["id", "name", "version", "released", "popularity_rank", "summary"]


def full_dataset_dir() -> Path:
    """Return where the full dataset is expected: ``$VSQL_DATASET_DIR`` if set, else the default."""
    configured = os.environ.get(DATASET_DIR_VARIABLE)
    return Path(configured) if configured else DEFAULT_FULL_DIR


def _has_dataset(path: Path) -> bool:
    return (path / "base.parquet").is_file() and (path / "base_vectors_f16.npy").is_file()


def dataset_path(full: bool | None = None) -> Path:
    """Return the dataset directory to load.

    ``full=None`` returns the full dataset when present and the bundled sample otherwise,
    ``full=True`` requires the full dataset and ``full=False`` always returns the sample.
    """
    if full is False:
        return SAMPLE_DIR

    full_dir = full_dataset_dir()
    if _has_dataset(full_dir):
        return full_dir
    if full:
        raise OperationalError(
            f"full dataset not found in {full_dir}: "
            f"set {DATASET_DIR_VARIABLE} to the directory that contains base.parquet"
        )

    if os.environ.get(DATASET_DIR_VARIABLE):
        logger.warning(
            "%s=%s contains no dataset, using the sample in %s",
            DATASET_DIR_VARIABLE,
            full_dir,
            SAMPLE_DIR,
        )
    else:
        logger.info("full dataset not found in %s, using the sample in %s", full_dir, SAMPLE_DIR)
    return SAMPLE_DIR


def _load_vectors(vectors_file: Path, n_rows: int) -> np.ndarray:
    """Load a float16 ``.npy`` file of ``n_rows`` vectors as one contiguous float32 array."""
    x16 = np.load(vectors_file)
    if x16.ndim != 2:
        raise DataError(f"expected a 2-dimensional array in {vectors_file}, not shape {x16.shape}")
    if x16.shape[0] != n_rows:
        raise DataError(
            f"{vectors_file} has {x16.shape[0]} vectors but its Parquet file has {n_rows} rows: "
            "regenerate the dataset"
        )
    return np.ascontiguousarray(x16, dtype=np.float32)


def _append_embedding(table: pa.Table, x: np.ndarray) -> pa.Table:
    """Append the float32 rows of ``x`` to ``table`` as a ``FixedSizeList<float32>`` column."""
    # pa.array() wraps the buffer of a contiguous float32 array without copying it.
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
    return table.append_column("embedding", embedding)


def load_base(path: Path | str | None = None) -> pa.Table:
    """Load the base rows with an ``embedding`` column of ``FixedSizeList<float32>[384]``.

    ``path`` is a dataset directory, ``dataset_path()`` by default.
    """
    directory = Path(path) if path is not None else dataset_path()
    base = pq.read_table(directory / "base.parquet", columns=SCALAR_COLUMNS)
    xb = _load_vectors(directory / "base_vectors_f16.npy", base.num_rows)
    return _append_embedding(base, xb)


def load_queries(path: Path | str | None = None) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Load the queries.

    Returns the query rows (the base columns, ``embedding`` included), ``xq`` as float32
    ``[nq, dim]`` and ``truth_ids`` as int32 ``[nq, 100]``: the base ids of each query's exact
    100 largest inner products, best first. ``xq`` shares its memory with the ``embedding``
    column, so write to a copy.
    """
    directory = Path(path) if path is not None else dataset_path()
    queries = pq.read_table(directory / "queries.parquet", columns=SCALAR_COLUMNS)
    xq = _load_vectors(directory / "query_vectors_f16.npy", queries.num_rows)
    truth_ids = np.load(directory / "query_truth_ids.npy")
    if truth_ids.shape[0] != queries.num_rows:
        raise DataError(
            f"query_truth_ids.npy has {truth_ids.shape[0]} rows for {queries.num_rows} queries "
            f"in {directory}: regenerate the dataset"
        )
    return _append_embedding(queries, xq), xq, truth_ids


def _raw_connection(con: Any) -> duckdb.DuckDBPyConnection:
    """Return the DuckDB connection itself, or the one a vsql ``Connection`` holds."""
    if isinstance(con, duckdb.DuckDBPyConnection):
        return con
    raw = getattr(con, "duckdb", None)
    if isinstance(raw, duckdb.DuckDBPyConnection):
        return raw
    raise TypeError(f"expected a duckdb or vsql connection, not {type(con).__name__}")


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_table(con: Any, name: str = "packages", path: Path | str | None = None) -> int:
    """Create table ``name`` from the base rows, with ``embedding FLOAT[384]``, and count its rows.

    ``con`` is a ``duckdb.DuckDBPyConnection`` or an object whose ``.duckdb`` attribute is one,
    such as a vsql ``Connection``. ``path`` is a dataset directory, ``dataset_path()`` by default.
    The table must not exist yet. Returns the number of rows loaded.
    """
    raw = _raw_connection(con)
    directory = Path(path) if path is not None else dataset_path()
    base = load_base(directory)

    # A FixedSizeList Arrow column arrives in DuckDB as a fixed-size ARRAY (FLOAT[384]), which
    # the vector functions and indexes require. A variable-size list would arrive as FLOAT[].
    view_name = f"vsql_sample_{id(base):x}"
    raw.register(view_name, base)
    try:
        table, view = _quote_identifier(name), _quote_identifier(view_name)
        raw.execute(f"CREATE TABLE {table} AS SELECT * FROM {view}")
    except duckdb.Error as error:
        raise translate(error) from error
    finally:
        raw.unregister(view_name)
    logger.info("created table %s with %d rows from %s", name, base.num_rows, directory)
    return base.num_rows
