"""The SQL vector functions of udfs.sql_functions, against numpy and pgvector's exact values."""

import math

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from udfs.sql_functions import FUNCTION_NAMES, FUNCTIONS_VERSION, install_functions

VECTOR_PAIR_FUNCTIONS = (
    "l2_distance",
    "inner_product",
    "negative_inner_product",
    "cosine_distance",
    "l1_distance",
)
BIT_PAIR_FUNCTIONS = ("hamming_distance", "jaccard_distance")
SINGLE_VECTOR_FUNCTIONS = ("vector_dims", "vector_norm", "l2_normalize")

# Float32 round-off: a sum of d float32 terms has relative error at most
# gamma_d = d * 2**-24 / (1 - d * 2**-24), about 3.8e-6 for the largest d tested (64), relative to
# the sum of the terms' magnitudes. The tolerances below allow that bound plus the rounding of each
# product or difference, with a margin of about 2.
FLOAT32_SUM_RTOL = 1e-5
# Cosine similarity is a dot product (error <= gamma_d |a| |b|) divided by a norm product (relative
# error <= gamma_d + 2 ulp), so its absolute error is at most about 2 * gamma_d + 2 * 2**-24 = 8e-6.
COSINE_ATOL = 2e-5
# Sums of squares of float32 values in float64 are exact per term, so only float64 summation error
# (d * 2**-53) remains.
FLOAT64_RTOL = 1e-12

# Elements are 0 or have a magnitude in [2**-10, 100]. The lower bound keeps squares above float32's
# underflow, which would turn a small non-zero vector's norm into 0 in single precision (in pgvector
# too). The upper bound keeps the product of two squared norms (at most (64 * 100**2)**2) finite.
elements = st.one_of(
    st.just(0.0),
    st.floats(2.0**-10, 100.0, width=32),
    st.floats(-100.0, -(2.0**-10), width=32),
)


@st.composite
def vectors(draw, dims):
    """Draw a float32 vector of `dims` elements, sometimes all zeros."""
    if draw(st.integers(0, 9)) == 0:
        return np.zeros(dims, dtype=np.float32)
    return np.array(draw(st.lists(elements, min_size=dims, max_size=dims)), dtype=np.float32)


@st.composite
def vector_pairs(draw):
    """Draw two float32 vectors of equal length: independent, duplicate, negated, scaled or zero."""
    dims = draw(st.integers(1, 64))
    a = draw(vectors(dims))
    kind = draw(st.sampled_from(["independent", "duplicate", "negated", "scaled", "zero"]))
    if kind == "duplicate":
        b = a.copy()
    elif kind == "negated":
        b = -a
    elif kind == "scaled":
        b = (a * np.float32(0.5)).astype(np.float32)
    elif kind == "zero":
        b = np.zeros(dims, dtype=np.float32)
    else:
        b = draw(vectors(dims))
    return a, b


bit_pairs = st.integers(1, 130).flatmap(
    lambda n: st.tuples(
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
)


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    install_functions(connection)
    yield connection
    connection.close()


def scalar(con, sql, params=None):
    return con.execute(sql, params).fetchall()[0][0]


def pair_value(con, function, a, b, element_type="FLOAT"):
    dims = len(a)
    sql = f"SELECT {function}(?::{element_type}[{dims}], ?::{element_type}[{dims}])"
    return scalar(con, sql, [a.tolist(), b.tolist()])


def bit_text(bits):
    return "".join("1" if bit else "0" for bit in bits)


# Property tests against numpy, on FLOAT[n] arrays.


@settings(max_examples=50, deadline=None)
@given(vector_pairs())
def test_l2_distance_matches_numpy(con, pair):
    a, b = pair
    expected = np.sqrt(np.sum((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    assert pair_value(con, "l2_distance", a, b) == pytest.approx(
        expected, rel=FLOAT32_SUM_RTOL, abs=1e-30
    )


@settings(max_examples=50, deadline=None)
@given(vector_pairs())
def test_inner_products_match_numpy(con, pair):
    a, b = pair
    products = a.astype(np.float64) * b.astype(np.float64)
    tolerance = FLOAT32_SUM_RTOL * np.sum(np.abs(products)) + 1e-30
    inner = pair_value(con, "inner_product", a, b)
    negative = pair_value(con, "negative_inner_product", a, b)
    assert inner == pytest.approx(np.sum(products), abs=tolerance)
    assert negative == pytest.approx(-np.sum(products), abs=tolerance)


@settings(max_examples=50, deadline=None)
@given(vector_pairs())
def test_cosine_distance_matches_numpy(con, pair):
    a, b = pair
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a64) * np.linalg.norm(b64)
    distance = pair_value(con, "cosine_distance", a, b)
    if norms == 0:
        assert math.isnan(distance)
        return
    expected = 1.0 - np.dot(a64, b64) / norms
    assert distance == pytest.approx(expected, abs=COSINE_ATOL)
    assert 0.0 <= distance <= 2.0


@settings(max_examples=50, deadline=None)
@given(vector_pairs())
def test_l1_distance_matches_numpy(con, pair):
    a, b = pair
    expected = np.sum(np.abs(a.astype(np.float64) - b.astype(np.float64)))
    # Each difference is rounded to float32 and the sum is taken in double.
    assert pair_value(con, "l1_distance", a, b) == pytest.approx(expected, rel=1e-6, abs=1e-30)


@settings(max_examples=50, deadline=None)
@given(vector_pairs())
def test_single_vector_functions_match_numpy(con, pair):
    a, _ = pair
    dims = len(a)
    row = con.execute(
        f"SELECT vector_dims(v), vector_norm(v), l2_normalize(v) FROM (SELECT ?::FLOAT[{dims}] v)",
        [a.tolist()],
    ).fetchall()[0]
    norm = np.linalg.norm(a.astype(np.float64))
    assert row[0] == dims
    assert row[1] == pytest.approx(norm, rel=FLOAT64_RTOL, abs=1e-30)
    if norm == 0:
        assert row[2] == [0.0] * dims
    else:
        # The quotient is computed in double and rounded once to float32.
        expected = (a.astype(np.float64) / norm).astype(np.float32)
        np.testing.assert_allclose(np.array(row[2], dtype=np.float32), expected, rtol=2e-7)


@settings(max_examples=50, deadline=None)
@given(vector_pairs())
def test_double_arrays_match_numpy(con, pair):
    a, b = pair
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    l2 = pair_value(con, "l2_distance", a, b, "DOUBLE")
    inner = pair_value(con, "inner_product", a, b, "DOUBLE")
    l1 = pair_value(con, "l1_distance", a, b, "DOUBLE")
    scale = np.sum(np.abs(a64 * b64)) + 1e-30
    assert l2 == pytest.approx(np.linalg.norm(a64 - b64), rel=FLOAT64_RTOL, abs=1e-30)
    assert inner == pytest.approx(np.dot(a64, b64), abs=FLOAT64_RTOL * scale)
    assert l1 == pytest.approx(np.sum(np.abs(a64 - b64)), rel=FLOAT64_RTOL, abs=1e-30)


@settings(max_examples=50, deadline=None)
@given(bit_pairs)
def test_bit_distances_match_numpy(con, pair):
    a, b = np.array(pair[0]), np.array(pair[1])
    row = con.execute(
        "SELECT hamming_distance(?::BIT, ?::BIT), jaccard_distance(?::BIT, ?::BIT)",
        [bit_text(a), bit_text(b)] * 2,
    ).fetchall()[0]
    both = np.count_nonzero(a & b)
    either = np.count_nonzero(a | b)
    assert row[0] == np.count_nonzero(a != b)
    assert row[1] == (1.0 if both == 0 else 1.0 - both / either)


# Exact values worked out by hand. The bit-string cases repeat pgvector's regression tests.


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("l2_distance([0, 0]::FLOAT[2], [3, 4]::FLOAT[2])", 5.0),
        ("inner_product([1, 2]::FLOAT[2], [3, 4]::FLOAT[2])", 11.0),
        ("negative_inner_product([1, 2]::FLOAT[2], [3, 4]::FLOAT[2])", -11.0),
        ("cosine_distance([1, 2]::FLOAT[2], [2, 4]::FLOAT[2])", 0.0),
        ("cosine_distance([1, 2]::FLOAT[2], [0, 0]::FLOAT[2])", math.nan),
        ("cosine_distance([1, 1]::FLOAT[2], [1, 1]::FLOAT[2])", 0.0),
        ("cosine_distance([1, 0]::FLOAT[2], [0, 2]::FLOAT[2])", 1.0),
        ("cosine_distance([1, 1]::FLOAT[2], [-1, -1]::FLOAT[2])", 2.0),
        ("l1_distance([0, 0]::FLOAT[2], [3, 4]::FLOAT[2])", 7.0),
        ("vector_dims([1, 2, 3]::FLOAT[3])", 3),
        ("vector_norm([3, 4]::FLOAT[2])", 5.0),
        ("l2_normalize([3, 0, 4]::FLOAT[3])", [0.6000000238418579, 0.0, 0.800000011920929]),
        ("l2_normalize([0, 0, 0]::FLOAT[3])", [0.0, 0.0, 0.0]),
        ("l2_normalize([3, 0, 4]::DOUBLE[3])", [0.6, 0.0, 0.8]),
        ("hamming_distance('111', '111')", 0.0),
        ("hamming_distance('111', '110')", 1.0),
        ("hamming_distance('111'::BIT, '000'::BIT)", 3.0),
        ("jaccard_distance('1111', '1111')", 0.0),
        ("jaccard_distance('1111', '1110')", 0.25),
        ("jaccard_distance('1100', '1000')", 0.5),
        ("jaccard_distance('1111', '0000')", 1.0),
        ("jaccard_distance('0000', '0000')", 1.0),
    ],
)
def test_exact_values(con, sql, expected):
    value = scalar(con, f"SELECT {sql}")
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(value)
    else:
        assert value == expected


def test_cosine_self_is_exactly_zero(con):
    rng = np.random.default_rng(7)
    for dims in (1, 3, 17, 384):
        a = rng.standard_normal(dims).astype(np.float32) * np.float32(37.5)
        assert pair_value(con, "cosine_distance", a, a) == 0.0
        assert pair_value(con, "cosine_distance", a, a, "DOUBLE") == 0.0


def test_cosine_zero_vector_is_nan(con):
    zero = np.zeros(4, dtype=np.float32)
    a = np.array([1, -2, 3, 0.5], dtype=np.float32)
    assert math.isnan(pair_value(con, "cosine_distance", zero, a))
    assert math.isnan(pair_value(con, "cosine_distance", a, zero))
    assert math.isnan(pair_value(con, "cosine_distance", zero, zero))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("[1, 2, 3]::FLOAT[3]", "[1, 2, 4]::FLOAT[3]"),
        ("[1, 2, 3]::DOUBLE[3]", "[1, 2, 4]::DOUBLE[3]"),
        ("[1, 2, 3]::FLOAT[]", "[1, 2, 4]::FLOAT[]"),
        ("[1, 2, 3]::DOUBLE[]", "[1, 2, 4]::DOUBLE[]"),
        ("[1, 2, 3]", "[1, 2, 4]"),
        ("[1, 2, 3]::FLOAT[3]", "[1, 2, 4]"),
        ("[1, 2, 3]::DOUBLE[3]", "[1, 2, 4]::FLOAT[3]"),
        ("[1, 2, 3]::FLOAT[3]", "'[1, 2, 4]'"),
        ("'[1, 2, 3]'", "[1, 2, 4]::DOUBLE[3]"),
        ("'[1, 2, 3]'", "'[1, 2, 4]'"),
    ],
)
def test_input_types(con, a, b):
    row = con.execute(
        f"SELECT l2_distance({a}, {b}), inner_product({a}, {b}), cosine_distance({a}, {b}),"
        f" l1_distance({a}, {b}), vector_dims({a}), vector_norm({b})"
    ).fetchall()[0]
    assert row[0] == 1.0
    assert row[1] == 17.0
    assert row[2] == pytest.approx(1 - 17 / math.sqrt(14 * 21), abs=1e-7)
    assert row[3] == 1.0
    assert row[4] == 3
    assert row[5] == pytest.approx(math.sqrt(21), rel=1e-15)


@pytest.mark.parametrize(
    ("sql", "expected_type"),
    [
        ("l2_distance([1, 2]::FLOAT[2], [1, 2]::FLOAT[2])", "DOUBLE"),
        ("inner_product([1, 2], [1, 2])", "DOUBLE"),
        ("negative_inner_product([1, 2]::FLOAT[], [1, 2]::FLOAT[])", "DOUBLE"),
        ("cosine_distance([1, 2]::FLOAT[2], [1, 2]::FLOAT[2])", "DOUBLE"),
        ("l1_distance([1, 2]::FLOAT[2], [1, 2]::FLOAT[2])", "DOUBLE"),
        ("vector_dims([1, 2]::FLOAT[2])", "INTEGER"),
        ("vector_norm([1, 2]::FLOAT[2])", "DOUBLE"),
        ("l2_normalize([1, 2]::FLOAT[2])", "FLOAT[]"),
        ("l2_normalize('[1, 2]')", "FLOAT[]"),
        ("l2_normalize([1, 2]::DOUBLE[2])", "DOUBLE[]"),
        ("hamming_distance('10', '01')", "DOUBLE"),
        ("jaccard_distance('10', '01')", "DOUBLE"),
    ],
)
def test_result_types(con, sql, expected_type):
    assert scalar(con, f"SELECT typeof({sql})") == expected_type


def error_message(con, sql):
    with pytest.raises(duckdb.InvalidInputException) as excinfo:
        con.execute(sql).fetchall()
    return str(excinfo.value).removeprefix("Invalid Input Error: ")


@pytest.mark.parametrize("function", VECTOR_PAIR_FUNCTIONS)
@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ("[1, 2]::FLOAT[2]", "[1, 2, 3]::FLOAT[3]", "different vector dimensions 2 and 3"),
        ("[1, 2, 3]::FLOAT[3]", "[1, 2]::FLOAT[2]", "different vector dimensions 3 and 2"),
        ("[1, 2]", "[1, 2, 3]", "different vector dimensions 2 and 3"),
        ("[1, 2, 3]::DOUBLE[]", "[1, 2]::DOUBLE[]", "different vector dimensions 3 and 2"),
        ("[1, 2]::FLOAT[2]", "'[1, 2, 3]'", "different vector dimensions 2 and 3"),
        ("'[1, 2, 3]'", "'[1, 2]'", "different vector dimensions 3 and 2"),
    ],
)
def test_dimension_mismatch_message(con, function, a, b, message):
    assert error_message(con, f"SELECT {function}({a}, {b})") == message


def test_dimension_mismatch_in_column(con):
    con.execute("CREATE OR REPLACE TEMP TABLE mixed AS SELECT [1.0, 2.0] v UNION ALL SELECT [1.0]")
    message = error_message(con, "SELECT l2_distance(v, [1, 2]) FROM mixed")
    assert message == "different vector dimensions 1 and 2"


@pytest.mark.parametrize("function", BIT_PAIR_FUNCTIONS)
def test_bit_length_mismatch_message(con, function):
    assert error_message(con, f"SELECT {function}('111', '00')") == "different bit lengths 3 and 2"
    assert error_message(con, f"SELECT {function}('11'::BIT, '000'::BIT)") == (
        "different bit lengths 2 and 3"
    )


@pytest.mark.parametrize("function", VECTOR_PAIR_FUNCTIONS + BIT_PAIR_FUNCTIONS)
def test_null_argument_gives_null(con, function):
    vector_type = "BIT" if function in BIT_PAIR_FUNCTIONS else "FLOAT[2]"
    value = "'10'::BIT" if function in BIT_PAIR_FUNCTIONS else "[1, 2]::FLOAT[2]"
    assert scalar(con, f"SELECT {function}({value}, NULL)") is None
    assert scalar(con, f"SELECT {function}(NULL, {value})") is None
    assert scalar(con, f"SELECT {function}(NULL::{vector_type}, NULL::{vector_type})") is None
    assert scalar(con, f"SELECT {function}(NULL, NULL)") is None


@pytest.mark.parametrize("function", SINGLE_VECTOR_FUNCTIONS)
def test_null_vector_gives_null(con, function):
    assert scalar(con, f"SELECT {function}(NULL::FLOAT[3])") is None
    assert scalar(con, f"SELECT {function}(NULL::DOUBLE[])") is None
    assert scalar(con, f"SELECT {function}(NULL)") is None


def test_function_names_are_macros(con):
    rows = con.execute(
        "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'macro'"
    ).fetchall()
    assert set(FUNCTION_NAMES) <= {name for (name,) in rows}
    assert len(FUNCTION_NAMES) == 10
    assert isinstance(FUNCTIONS_VERSION, int)


def test_functions_version_comment(con):
    rows = con.execute(
        "SELECT DISTINCT comment FROM duckdb_functions() WHERE list_contains(?, function_name)",
        [list(FUNCTION_NAMES)],
    ).fetchall()
    assert rows == [(f"vsql {FUNCTIONS_VERSION}",)]


def test_install_twice_replaces(con):
    install_functions(con)
    assert scalar(con, "SELECT l2_distance([0, 0], [3, 4])") == 5.0


def test_macros_persist_in_file(tmp_db_path):
    with duckdb.connect(str(tmp_db_path)) as writer:
        install_functions(writer)
    with duckdb.connect(str(tmp_db_path), read_only=True) as reader:
        assert scalar(reader, "SELECT l2_distance([0, 0], [3, 4])") == 5.0


def test_temporary_functions_on_read_only_file(tmp_db_path):
    duckdb.connect(str(tmp_db_path)).close()
    with duckdb.connect(str(tmp_db_path), read_only=True) as reader:
        with pytest.raises(duckdb.Error):
            install_functions(reader)
        install_functions(reader, temporary=True)
        assert scalar(reader, "SELECT cosine_distance([1, 0], [0, 1])") == 1.0
        rows = reader.execute(
            "SELECT DISTINCT database_name FROM duckdb_functions() WHERE function_name = ?",
            ["l2_distance"],
        ).fetchall()
        assert rows == [("temp",)]
        comment = scalar(
            reader, "SELECT comment FROM duckdb_functions() WHERE function_name = 'l2_normalize'"
        )
        assert comment == f"vsql {FUNCTIONS_VERSION}"
