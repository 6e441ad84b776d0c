"""Index arrays stored inside the database file as BLOB chunks.

Each array of an index becomes rows of ``vsql.index_data`` (or ``vsql.index_rows`` for the copy of
its rows) holding its dtype, shape and raw bytes split into chunks of at most 16 MiB, since very
large single BLOB values are slow to write. An index is always written in one transaction, so a
process killed while writing leaves the previous version (or none) and never a mix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from vsql.catalog import SCHEMA

if TYPE_CHECKING:
    from vsql.connection import Connection

CHUNK_BYTES = 16 * 1024 * 1024
# Arrays as large as the table's vector column live in their own table. DuckDB reads every BLOB
# of a table it scans, even of rows its filter drops, so this lets an index load its graph alone.
ROW_ARRAYS = ("xb",)
DATA_TABLE = f"{SCHEMA}.index_data"
ROWS_TABLE = f"{SCHEMA}.index_rows"


def write_arrays(connection: Connection, index_name: str, arrays: dict[str, np.ndarray]) -> None:
    """Replace the stored arrays of ``index_name``; the caller runs this inside a transaction."""
    for table in (DATA_TABLE, ROWS_TABLE):
        connection.send(f"DELETE FROM {table} WHERE index_name = ?", [index_name])
    for array_name, array in arrays.items():
        table = ROWS_TABLE if array_name in ROW_ARRAYS else DATA_TABLE
        # np.ascontiguousarray would turn a 0-d array into a 1-d one.
        array = np.asarray(array)
        if not array.flags.c_contiguous:
            array = array.copy(order="C")
        raw = array.tobytes()
        shape = json.dumps(list(array.shape))
        parts = [raw[i : i + CHUNK_BYTES] for i in range(0, len(raw), CHUNK_BYTES)] or [b""]
        for part, chunk in enumerate(parts):
            connection.send(
                f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?)",
                [index_name, array_name, part, array.dtype.str, shape, chunk],
            )


def read_arrays(connection: Connection, index_name: str) -> dict[str, np.ndarray]:
    """Return the stored arrays of ``index_name`` but the large row arrays (empty when none)."""
    return _read(connection, DATA_TABLE, index_name)


def read_rows(connection: Connection, index_name: str) -> dict[str, np.ndarray]:
    """Return the stored row arrays (``xb``) of ``index_name``."""
    return _read(connection, ROWS_TABLE, index_name)


def _read(connection: Connection, table: str, index_name: str) -> dict[str, np.ndarray]:
    result = connection.query_arrow(
        f"SELECT array_name, dtype, shape, data FROM {table} WHERE index_name = ? ORDER BY array_name, part",
        [index_name],
    )
    headers: dict[str, tuple[str, list[int]]] = {}
    parts: dict[str, list[np.ndarray]] = {}
    names = result.column("array_name").to_pylist()
    dtypes = result.column("dtype").to_pylist()
    shapes = result.column("shape").to_pylist()
    for array_name, dtype, shape, chunk in zip(names, dtypes, shapes, _blob_views(result), strict=True):
        headers[array_name] = (dtype, json.loads(shape))
        parts.setdefault(array_name, []).append(chunk)
    arrays = {}
    for array_name, chunks in parts.items():
        dtype, shape = headers[array_name]
        # One copy from DuckDB's Arrow buffers into a writable array: kernels append to some.
        raw = np.concatenate(chunks) if len(chunks) > 1 else chunks[0].copy()
        arrays[array_name] = raw.view(np.dtype(dtype)).reshape(shape)
    return arrays


def _blob_views(table: pa.Table) -> Iterator[np.ndarray]:
    """Yield each BLOB of the ``data`` column as a read-only uint8 view of the Arrow buffer."""
    for chunk in table.column("data").chunks:
        for value in chunk:
            buffer = value.as_buffer()
            yield np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.empty(0, np.uint8)
