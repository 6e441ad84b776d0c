"""Index arrays stored inside the database file as BLOB chunks.

Each array of an index's ``to_arrays()`` becomes rows of ``vsql.index_data`` holding its dtype,
shape and raw bytes split into chunks of at most 16 MiB, since very large single BLOB values are
slow to write. An index is always written in one transaction, so a process killed while writing
leaves the previous version (or none) and never a mix.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from vsql.catalog import SCHEMA

if TYPE_CHECKING:
    from vsql.connection import Connection

CHUNK_BYTES = 16 * 1024 * 1024


def write_arrays(connection: Connection, index_name: str, arrays: dict[str, np.ndarray]) -> None:
    """Replace the stored arrays of ``index_name``; the caller runs this inside a transaction."""
    connection.send(f"DELETE FROM {SCHEMA}.index_data WHERE index_name = ?", [index_name])
    for array_name, array in arrays.items():
        # np.ascontiguousarray would turn a 0-d array into a 1-d one.
        array = np.asarray(array)
        if not array.flags.c_contiguous:
            array = array.copy(order="C")
        raw = array.tobytes()
        shape = json.dumps(list(array.shape))
        parts = [raw[i : i + CHUNK_BYTES] for i in range(0, len(raw), CHUNK_BYTES)] or [b""]
        for part, chunk in enumerate(parts):
            connection.send(
                f"INSERT INTO {SCHEMA}.index_data VALUES (?, ?, ?, ?, ?, ?)",
                [index_name, array_name, part, array.dtype.str, shape, chunk],
            )


def read_arrays(connection: Connection, index_name: str) -> dict[str, np.ndarray]:
    """Return the stored arrays of ``index_name`` (empty when none were stored)."""
    table = connection.query_arrow(
        f"SELECT array_name, dtype, shape, data FROM {SCHEMA}.index_data "
        f"WHERE index_name = ? ORDER BY array_name, part",
        [index_name],
    )
    names = table.column("array_name").to_pylist()
    dtypes = table.column("dtype").to_pylist()
    shapes = table.column("shape").to_pylist()
    data = table.column("data").to_pylist()
    chunks: dict[str, list[bytes]] = {}
    headers: dict[str, tuple[str, list[int]]] = {}
    for array_name, dtype, shape, chunk in zip(names, dtypes, shapes, data, strict=True):
        chunks.setdefault(array_name, []).append(chunk)
        headers[array_name] = (dtype, json.loads(shape))
    arrays = {}
    for array_name, parts in chunks.items():
        dtype, shape = headers[array_name]
        raw = parts[0] if len(parts) == 1 else b"".join(parts)
        # frombuffer over bytes is read-only; kernels append to some arrays, so copy once.
        arrays[array_name] = np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy()
    return arrays
