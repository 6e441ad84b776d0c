"""Vector text literals (`'[1,2,3]'`): parsing with pgvector's rules and messages, and formatting.

pgvector reads each element with C's ``strtof``, so an element may carry a sign, a decimal point,
an exponent and surrounding whitespace. Hexadecimal floats, which ``strtof`` also reads, are
rejected here as invalid syntax.
"""

from __future__ import annotations

import re

import numpy as np
from sqlglot import exp

from vsql.errors import DataError

# pgvector's limit is 16,000. vsql sets its own because its indexes have no page size to fit in.
MAX_DIMENSIONS = 100_000

# One element as strtof reads it, including the "inf", "infinity" and "nan" spellings that
# pgvector then rejects with their own messages.
_ELEMENT = r"\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)\s*"
_VECTOR_TEXT = re.compile(rf"\s*\[(?:{_ELEMENT}(?:,{_ELEMENT})*)?\]\s*", re.IGNORECASE)
_EMPTY_VECTOR = re.compile(r"\s*\[\s*\]\s*")


def parse_vector_text(text: str, dims: int | None = None) -> np.ndarray:
    """Parse pgvector's text form of a vector into a float32 array.

    Raises ``DataError`` with pgvector's message for malformed text, an empty vector, NaN or
    infinite elements, an element outside float32's range, and, when ``dims`` is given, a length
    other than ``dims``.

    >>> parse_vector_text(" [1, -2.5e1 ,3] ")
    array([  1., -25.,   3.], dtype=float32)
    """
    if _EMPTY_VECTOR.fullmatch(text):
        raise DataError("vector must have at least 1 dimension")
    if not _VECTOR_TEXT.fullmatch(text):
        raise DataError(f'invalid input syntax for type vector: "{text}"')

    elements = text.strip()[1:-1].split(",")
    if len(elements) > MAX_DIMENSIONS:
        raise DataError(f"vector cannot have more than {MAX_DIMENSIONS} dimensions")

    values = np.array([float(element) for element in elements], dtype=np.float64)
    vector = _check_elements(values, elements)

    if dims is not None and len(vector) != dims:
        raise DataError(f"expected {dims} dimensions, not {len(vector)}")
    return vector


def _check_elements(values: np.ndarray, elements: list[str]) -> np.ndarray:
    """Return ``values`` as float32 after checking for NaN, infinity and overflow."""
    with np.errstate(over="ignore"):
        rounded = values.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(rounded))
    if len(bad) == 0:
        return rounded

    # A finite number that rounds to infinity in float32 is what strtof reports as ERANGE.
    # Like pgvector, the first bad element in the text decides the message.
    element = elements[int(bad[0])].strip()
    if np.isnan(values[bad[0]]):
        raise DataError("NaN not allowed in vector")
    if "n" in element.lower():
        raise DataError("infinite value not allowed in vector")
    raise DataError(f'"{element}" is out of range for type vector')


def format_vector(values: np.ndarray | list[float]) -> str:
    """Format a vector in pgvector's text form, such as ``[1,2.5,-3]``."""
    array = np.asarray(values, dtype=np.float32).ravel()
    return "[" + ",".join(_format_element(value) for value in array) + "]"


def _format_element(value: np.float32) -> str:
    # numpy prints the shortest text that reads back to the same float32. pgvector writes
    # integral values without ".0".
    text = str(value)
    return text[:-2] if text.endswith(".0") else text


def vector_dimensions(data_type: exp.DataType) -> int | None:
    """Return n for the type ``vector(n)``, or None for ``vector`` without dimensions."""
    params = data_type.expressions
    if not params:
        return None
    return int(params[0].this.to_py())


def is_vector_type(node: exp.Expr | None) -> bool:
    return isinstance(node, exp.DataType) and node.this == exp.DType.VECTOR


def validate_vector_literals(tree: exp.Expr) -> None:
    """Check every string literal cast to a vector type in ``tree``, as in ``'[1,2]'::vector(2)``.

    Raises the ``DataError`` that ``parse_vector_text`` raises for the first invalid literal.
    """
    for cast in tree.find_all(exp.Cast):
        target = cast.args.get("to")
        literal = cast.this
        if is_vector_type(target) and isinstance(literal, exp.Literal) and literal.is_string:
            parse_vector_text(literal.this, vector_dimensions(target))
