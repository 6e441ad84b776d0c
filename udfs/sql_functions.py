"""pgvector's SQL functions as DuckDB macros, stored in the database file.

``install_functions(con)`` creates the macros below with ``CREATE OR REPLACE MACRO``. Because a
macro is SQL and not Python, it is saved in the database file's catalog, and the plain DuckDB
command-line client can call it without vsql. The macros are written over DuckDB's native vector
functions (``list_distance``, ``list_inner_product``, ``list_cosine_distance``, ...), so these
distances cost what the native functions cost. ``l1_distance`` has no native function and is
about 11 times slower than ``l2_distance``.

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
or text literals such as ``'[1,2,3]'``, which are read as FLOAT[]. The distances are summed in
single precision, as pgvector sums its float4 ``vector``, unless an argument has DOUBLE elements:
then they are summed in double precision. ``l1_distance`` rounds each difference to the element
type and sums in DOUBLE. ``vector_norm`` and ``l2_normalize`` always sum in DOUBLE, as pgvector
does. ``l2_normalize`` returns FLOAT[] for FLOAT and text input and DOUBLE[] for DOUBLE, integer
and decimal input. A text column (as opposed to a literal) needs an explicit cast.

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
FUNCTIONS_VERSION = 2

# The storage format for new database files, passed to DuckDB as
# config={"storage_compatibility_version": DEFAULT_STORAGE_VERSION} or as
# ATTACH ... (STORAGE_VERSION ...). By default duckdb 2.0.1 writes storage format 69, which the
# DuckDB 1.5.6 client rejects ("can only read versions between 64 and 68"), and PyPI has no 2.x
# client. Files written by duckdb 2.0.1 with "v1.5.0", "v1.5.6" or "v1.4.0" open in the 1.5.6
# client with their tables, typed macros and lambdas, while "v1.3.0" and older reject the typed
# macro parameters. "v1.4.0" could not be checked against a 1.4 client, so vsql uses "v1.5.0",
# which the option defines as readable by DuckDB 1.5.0 and later. The version is recorded in the
# file: later writes by connections opened without the option keep the file readable.
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
    """Return SQL that raises ``message {length_a} and {length_b}`` when the lengths differ.

    A NULL argument gives a NULL length and so a NULL result before ``value`` is reached: DuckDB
    2.0.1's list_distance raises "can not contain NULL values" on a NULL array row otherwise,
    because it reads the row's child elements even though the row itself is NULL.
    """
    return (
        f"CASE WHEN {length_a} IS NULL OR {length_b} IS NULL THEN NULL "
        f"WHEN {length_a} <> {length_b} "
        f"THEN error(format('{message} {{}} and {{}}', {length_a}, {length_b})) "
        f"ELSE {value} END"
    )


def _vector_pair(native_function: str) -> str:
    """Return the macro body for a native two-vector function, checked for equal lengths."""
    a, b = _vector("a"), _vector("b")
    value = f"CAST({native_function}({a}, {b}) AS DOUBLE)"
    return _same_length(f"len({a})", f"len({b})", "different vector dimensions", value)


def _cosine_distance() -> str:
    # The native distance of a zero vector is NaN in DuckDB 2.0 but 2 in the 1.5 client, which
    # clamps the NaN similarity to -1. So results of 2 or more (NaN too, because DuckDB orders NaN
    # above every number) become NULL, and COALESCE, which evaluates its second argument only for
    # those rows, separates zero vectors (NaN) from opposite vectors (2).
    # The one-element list names the distance `d` so that it is computed once per row.
    distance = _vector_pair("list_cosine_distance")
    below_two = "CASE WHEN d < 0.0 THEN 0.0 WHEN d >= 2.0 THEN NULL ELSE d END"
    clamped = f"list_transform([{distance}], lambda d: {below_two})[1]"
    a, b = _vector("a"), _vector("b")
    at_least_two = (
        f"CASE WHEN a IS NULL OR b IS NULL THEN NULL "
        f"WHEN list_dot_product({a}, {a}) = 0 OR list_dot_product({b}, {b}) = 0 "
        f"THEN CAST('nan' AS DOUBLE) ELSE 2.0 END"
    )
    return f"COALESCE({clamped}, {at_least_two})"


def _l1_distance() -> str:
    # DuckDB 2.0 has no native L1 distance, so this one is a lambda over list_zip's element pairs,
    # about 11 times slower than l2_distance. A lambda that indexes b[i] instead is slower still
    # when b is a column, because the captured list is re-read for every element.
    a, b = _vector("a"), _vector("b")
    pairs = f"list_zip({a}, {b})"
    value = f"CAST(list_sum(list_transform({pairs}, lambda p: abs(p[1] - p[2]))) AS DOUBLE)"
    return _same_length(f"len({a})", f"len({b})", "different vector dimensions", value)


def _vector_norm() -> str:
    # The CASE keeps NULL rows away from list_dot_product, which fails on them in DuckDB 2.0.1.
    as_double = f"CAST({_vector('a')} AS DOUBLE[])"
    return f"CASE WHEN a IS NULL THEN NULL ELSE sqrt(list_dot_product({as_double}, {as_double})) END"


def _l2_normalize(element_type: str, arg: str) -> str:
    # The outer one-element list computes the norm once per row and passes it in as the lambda
    # parameter `norm`: an outer expression written inside the inner lambda would be evaluated
    # again for every element. A zero vector has norm 0 and is returned unchanged, as in pgvector.
    norm = f"sqrt(list_dot_product(CAST({arg} AS DOUBLE[]), CAST({arg} AS DOUBLE[])))"
    scaled = f"CAST(CASE WHEN norm > 0 THEN x / norm ELSE x END AS {element_type})"
    normalized = f"list_transform([{norm}], lambda norm: list_transform({arg}, lambda x: {scaled}))[1]"
    return f"CASE WHEN {arg} IS NULL THEN NULL ELSE {normalized} END"


def _bit_pair(value_of_bits: str) -> str:
    """Return the macro body for a function of two bit strings ``{a}`` and ``{b}``."""
    a, b = _bits("a"), _bits("b")
    value = value_of_bits.format(a=a, b=b)
    return _same_length(f"bit_length({a})", f"bit_length({b})", "different bit lengths", value)


# Macro name -> parameter list and body, as written after CREATE MACRO name.
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
    Each macro gets the comment ``vsql {FUNCTIONS_VERSION}``, which shows in duckdb_functions()
    which version of the definitions a file contains.
    """
    kind = "TEMP MACRO" if temporary else "MACRO"
    logger.debug("installing %d SQL functions (version %d)", len(_MACROS), FUNCTIONS_VERSION)
    for name, definition in _MACROS.items():
        con.execute(f"CREATE OR REPLACE {kind} {name}{definition}")
        con.execute(f"COMMENT ON MACRO {name} IS 'vsql {FUNCTIONS_VERSION}'")
