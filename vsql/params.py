"""Conversion of query parameters before DuckDB binds them.

DuckDB 2.0 binds a Python list of 384 floats in about 0.2 ms, so vectors travel as lists or numpy
arrays bound to placeholders and never as SQL text (a 384-element literal costs about 3 ms to
parse). Vectors are checked here for NaN and infinite elements, which pgvector rejects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vsql.errors import DataError, ProgrammingError

try:
    import pyarrow as pa
except ImportError:  # pragma: no cover - pyarrow is a dependency, kept optional here for clarity
    pa = None


def _check_finite_array(values: np.ndarray) -> None:
    if values.dtype.kind != "f":
        return
    if not np.isfinite(values).all():
        if np.isnan(values).any():
            raise DataError("NaN not allowed in vector")
        raise DataError("infinite value not allowed in vector")


def _check_finite_floats(values: Sequence[Any]) -> None:
    for value in values:
        if isinstance(value, float) and not math.isfinite(value):
            if math.isnan(value):
                raise DataError("NaN not allowed in vector")
            raise DataError("infinite value not allowed in vector")


def convert_value(value: Any) -> Any:
    """Return ``value`` in a form DuckDB binds as a list, checking vectors for NaN and infinity."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise DataError(
                f"a vector parameter must be one-dimensional, not an array of shape {value.shape}; "
                "pass one row at a time or use executemany"
            )
        _check_finite_array(value)
        if value.dtype.kind == "f":
            # float16 has no DuckDB counterpart, and float32/float64 bind as FLOAT[]/DOUBLE[].
            return value.astype(np.float32) if value.dtype == np.float16 else value
        return value
    if pa is not None and isinstance(value, (pa.Array, pa.ChunkedArray)):
        array = value.to_numpy(zero_copy_only=False)
        return convert_value(np.asarray(array))
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list) and value and isinstance(value[0], (float, int, np.floating)):
        _check_finite_floats(value)
    return value


def convert_parameters(parameters: Sequence[Any] | Mapping[str, Any] | None) -> Any:
    """Return the parameters with each value converted by :func:`convert_value`."""
    if parameters is None:
        return None
    if isinstance(parameters, Mapping):
        return {name: convert_value(value) for name, value in parameters.items()}
    if isinstance(parameters, (str, bytes)):
        raise ProgrammingError(
            "parameters must be a sequence or a mapping, not a string; "
            "wrap a single value in a list: execute(sql, [value])"
        )
    return [convert_value(value) for value in parameters]
