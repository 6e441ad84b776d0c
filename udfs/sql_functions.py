"""pgvector's SQL functions as DuckDB macros, stored in the database file.

``install_functions(con)`` creates the macros below with ``CREATE OR REPLACE MACRO``. Because a
macro is SQL and not Python, it is saved in the database file's catalog, and the plain DuckDB
command-line client can call it without vsql. Each macro is written over DuckDB's native vector
functions (``list_distance``, ``list_inner_product``, ``list_cosine_distance``, ...), so a
distance costs what the native function costs.

=========================  ============================================  ==================
function                   value                                         result type
=========================  ============================================  ==================
``l2_distance(a, b)``      sqrt(sum((a_i - b_i)^2))                      DOUBLE
``inner_product(a, b)``    sum(a_i * b_i)                                DOUBLE
``negative_inner_product`` -sum(a_i * b_i)                               DOUBLE
``cosine_distance(a, b)``  1 - a.b / (|a| |b|), clamped to [0, 2]        DOUBLE
``l1_distance(a, b)``      sum(|a_i - b_i|)                              DOUBLE
``vector_dims(a)``         number of elements                            INTEGER
``vector_norm(a)``         sqrt(sum(a_i^2)), summed in DOUBLE            DOUBLE
``l2_normalize(a)``        a / |a|; a zero vector is returned unchanged  FLOAT[] or DOUBLE[]
``hamming_distance(a, b)`` number of differing bits                      DOUBLE
``jaccard_distance(a, b)`` 1 - |a AND b| / |a OR b|; 1 when no bit is    DOUBLE
                           set in both, as in pgvector
=========================  ============================================  ==================

Vector arguments may be FLOAT[n] or DOUBLE[n] arrays, lists of any numeric type (``[1, 2, 3]``),
or text literals such as ``'[1,2,3]'``, which are read as FLOAT[]. Like pgvector, the distances
accumulate in the element type: FLOAT inputs are summed in single precision, as pgvector sums its
float4 ``vector``, and DOUBLE inputs in double precision. ``vector_norm`` and ``l2_normalize``
always sum in DOUBLE, as pgvector does. ``l2_normalize`` returns DOUBLE[] for DOUBLE and integer
input and FLOAT[] otherwise. A text column (as opposed to a literal) needs an explicit cast.

Binary vectors are DuckDB ``BIT`` values (bit strings such as ``'1010'::BIT``), the type closest to
PostgreSQL's ``bit(n)`` that pgvector uses. Text literals such as ``'1010'`` are read as BIT.

A NULL argument gives NULL. Cosine distance with a zero vector is NaN, as in pgvector. Vectors of
different lengths raise ``different vector dimensions 2 and 3`` and bit strings of different
lengths raise ``different bit lengths 3 and 4``, pgvector's messages, through DuckDB's ``error()``
so that the DuckDB client shows them too.

Storage: the typed parameters of ``l2_normalize`` need a database file with storage version
v1.4.0 or newer. ``DEFAULT_STORAGE_VERSION`` is such a version.
"""

from __future__ import annotations

import logging

import duckdb

logger = logging.getLogger("vsql.sql_functions")

# Increase when any macro definition below changes, so that files holding an older set can be
# recognised and re-installed.
FUNCTIONS_VERSION = 1

# The storage format that vsql writes new database files in, passed to DuckDB as
# config={"storage_compatibility_version": DEFAULT_STORAGE_VERSION} (or ATTACH ... (STORAGE_VERSION
# ...)). DuckDB 2.0.1 writes storage format 69 by default, which the DuckDB 1.5.6 client rejects
# ("can only read versions between 64 and 68"), and no 2.x client is on PyPI. Files written by
# duckdb 2.0.1 with "v1.5.0", "v1.5.6" and "v1.4.0" open in the 1.5.6 client, with tables, typed
# macros and lambdas intact, while "v1.3.0" and older reject typed macro parameters. "v1.5.0" is
# the oldest version whose client could be checked, and every 1.5.x client reads it. DuckDB records
# the version in the file, so a file written this way stays readable after later writes by
# connections opened without the option.
DEFAULT_STORAGE_VERSION = "v1.5.0"


def _vector(arg: str) -> str:
    """Return SQL that reads a text literal argument as FLOAT[] and leaves other types alone.

    typeof() is a constant for each call site, so the optimizer removes the branch not taken.
    The CASE also gives NULL the type FLOAT[], so two NULL arguments still bind.
    """
    return f"(CASE WHEN typeof({arg}) = 'VARCHAR' THEN CAST({arg} AS FLOAT[]) ELSE {arg} END)"


def _bits(arg: str) -> str:
    """Return SQL that reads a text literal argument as BIT and leaves other types alone."""
    return f"(CASE WHEN typeof({arg}) = 'VARCHAR' THEN CAST({arg} AS BIT) ELSE {arg} END)"


def _same_length(length_a: str, length_b: str, message: str, value: str) -> str:
    """Return SQL that raises ``message {length_a} and {length_b}`` when the lengths differ."""
    return (
        f"CASE WHEN {length_a} <> {length_b} "
        f"THEN error(format('{message} {{}} and {{}}', {length_a}, {length_b})) "
        f"ELSE {value} END"
    )


def _vector_pair(native_function: str) -> str:
    """Return the macro body for a native two-vector function, checked for equal lengths."""
    a, b = _vector("a"), _vector("b")
    value = f"CAST({native_function}({a}, {b}) AS DOUBLE)"
    return _same_length(f"len({a})", f"len({b})", "different vector dimensions", value)


def _cosine_distance() -> str:
    # DuckDB orders NaN above every number, so NaN > 2 is true: the NaN of a zero vector is let
    # through before the upper clamp. greatest() and least() would turn NULL into a bound, hence
    # the CASE. The one-element list names the distance `d` so that it is computed once per row.
    distance = _vector_pair("list_cosine_distance")
    clamped = "CASE WHEN d < 0.0 THEN 0.0 WHEN d > 2.0 AND NOT isnan(d) THEN 2.0 ELSE d END"
    return f"list_transform([{distance}], lambda d: {clamped})[1]"


def _l1_distance() -> str:
    # DuckDB 2.0 has no native L1 distance, so this one is a lambda over list_zip's element pairs,
    # about 11 times slower than l2_distance. A lambda that indexes b[i] instead is slower still
    # when b is a column, because the captured list is re-read for every element.
    a, b = _vector("a"), _vector("b")
    value = f"CAST(list_sum(list_transform(list_zip({a}, {b}), lambda p: abs(p[1] - p[2]))) AS DOUBLE)"
    return _same_length(f"len({a})", f"len({b})", "different vector dimensions", value)


def _vector_norm() -> str:
    as_double = f"CAST({_vector('a')} AS DOUBLE[])"
    return f"sqrt(list_dot_product({as_double}, {as_double}))"


def _l2_normalize(element_type: str, arg: str) -> str:
    # The outer one-element list computes the norm once per row and passes it in as the lambda
    # parameter `norm`: an outer expression written inside the inner lambda would be evaluated
    # again for every element. A zero vector has norm 0 and is returned unchanged, as in pgvector.
    norm = f"sqrt(list_dot_product(CAST({arg} AS DOUBLE[]), CAST({arg} AS DOUBLE[])))"
    scaled = f"CAST(CASE WHEN norm > 0 THEN x / norm ELSE x END AS {element_type})"
    return f"list_transform([{norm}], lambda norm: list_transform({arg}, lambda x: {scaled}))[1]"


def _bit_pair(value_of_bits: str) -> str:
    """Return the macro body for a function of two bit strings ``{a}`` and ``{b}``."""
    a, b = _bits("a"), _bits("b")
    value = value_of_bits.format(a=a, b=b)
    return _same_length(f"bit_length({a})", f"bit_length({b})", "different bit lengths", value)


# Macro name -> parameter lists and bodies, as written after CREATE MACRO name.
_MACROS: dict[str, str] = {
    "l2_distance": f"(a, b) AS {_vector_pair('list_distance')}",
    "inner_product": f"(a, b) AS {_vector_pair('list_inner_product')}",
    "negative_inner_product": f"(a, b) AS {_vector_pair('list_negative_inner_product')}",
    "cosine_distance": f"(a, b) AS {_cosine_distance()}",
    "l1_distance": f"(a, b) AS {_l1_distance()}",
    "vector_dims": f"(a) AS CAST(len({_vector('a')}) AS INTEGER)",
    "vector_norm": f"(a) AS {_vector_norm()}",
    # Typed overloads keep the element type: FLOAT[] in, FLOAT[] out. The VARCHAR overload takes
    # text literals and an untyped NULL, which would otherwise match both list overloads.
    "l2_normalize": (
        f"(a FLOAT[]) AS {_l2_normalize('FLOAT', 'a')}, "
        f"(a DOUBLE[]) AS {_l2_normalize('DOUBLE', 'a')}, "
        f"(a VARCHAR) AS {_l2_normalize('FLOAT', 'CAST(a AS FLOAT[])')}"
    ),
    "hamming_distance": "(a, b) AS " + _bit_pair("CAST(bit_count(xor({a}, {b})) AS DOUBLE)"),
    # |a OR b| is 0 only for two all-zero bit strings, whose distance pgvector defines as 1.
    "jaccard_distance": "(a, b) AS "
    + _bit_pair("1.0 - bit_count({a} & {b}) / greatest(bit_count({a} | {b}), 1)"),
}

FUNCTION_NAMES: tuple[str, ...] = tuple(_MACROS)


def install_functions(con: duckdb.DuckDBPyConnection, *, temporary: bool = False) -> None:
    """Create or replace every macro in FUNCTION_NAMES on ``con``.

    With ``temporary=True`` the macros are TEMP macros, which last for this connection only and
    work on a database opened read-only. Otherwise they are stored in the database's catalog.
    """
    kind = "TEMP MACRO" if temporary else "MACRO"
    logger.debug("installing %d SQL functions (version %d)", len(_MACROS), FUNCTIONS_VERSION)
    for name, definition in _MACROS.items():
        con.execute(f"CREATE OR REPLACE {kind} {name}{definition}")
