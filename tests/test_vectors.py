"""Tests of vector text literals: pgvector's parsing rules and messages, and formatting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.dialect import parse
from planner.vectors import format_vector, parse_vector_text, validate_vector_literals
from vsql.errors import DataError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1,2,3]", [1, 2, 3]),
        ("  [ 1 , 2 ,3 ]  ", [1, 2, 3]),
        ("[\t1,\n2]", [1, 2]),
        ("[+1.5,-2.25,.5,4.]", [1.5, -2.25, 0.5, 4.0]),
        ("[1e3,-2.5E-2,3e+1]", [1000.0, -0.025, 30.0]),
        ("[0]", [0.0]),
        ("[-0]", [-0.0]),
        ("[1e-50]", [0.0]),
    ],
)
def test_parse_vector_text_values(text, expected):
    values = parse_vector_text(text)

    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, np.array(expected, dtype=np.float32))


def test_parse_vector_text_rounds_to_float32():
    assert parse_vector_text("[0.1]")[0] == np.float32(0.1)


def test_parse_vector_text_with_dimensions():
    np.testing.assert_array_equal(parse_vector_text("[1,2,3]", dims=3), [1, 2, 3])


@pytest.mark.parametrize(
    "text",
    [
        "[1,,2]",
        "1,2",
        "[1,2",
        "1,2]",
        "[1,2]x",
        "[1 2]",
        "[a]",
        "[1_0]",
        "[0x10]",
        "[,]",
        "",
        "[1,]",
    ],
)
def test_invalid_syntax(text):
    with pytest.raises(DataError) as error:
        parse_vector_text(text)
    assert str(error.value) == f'invalid input syntax for type vector: "{text}"'


@pytest.mark.parametrize("text", ["[]", " [ ] "])
def test_empty_vector(text):
    with pytest.raises(DataError) as error:
        parse_vector_text(text)
    assert str(error.value) == "vector must have at least 1 dimension"


@pytest.mark.parametrize("text", ["[NaN]", "[1,nan,3]", "[1,nan,1e39]"])
def test_nan_element(text):
    with pytest.raises(DataError) as error:
        parse_vector_text(text)
    assert str(error.value) == "NaN not allowed in vector"


@pytest.mark.parametrize("text", ["[inf]", "[1,-Infinity]", "[INF, nan]"])
def test_infinite_element(text):
    with pytest.raises(DataError) as error:
        parse_vector_text(text)
    assert str(error.value) == "infinite value not allowed in vector"


@pytest.mark.parametrize(
    ("text", "element"), [("[1, 1e39]", "1e39"), ("[3.5e38]", "3.5e38"), ("[-1e400,nan]", "-1e400")]
)
def test_element_out_of_float32_range(text, element):
    with pytest.raises(DataError) as error:
        parse_vector_text(text)
    assert str(error.value) == f'"{element}" is out of range for type vector'


def test_float32_max_is_in_range():
    assert parse_vector_text("[3.4028235e38]")[0] == np.finfo(np.float32).max


def test_wrong_dimensions():
    with pytest.raises(DataError) as error:
        parse_vector_text("[1,2]", dims=3)
    assert str(error.value) == "expected 3 dimensions, not 2"


def test_too_many_dimensions():
    with pytest.raises(DataError) as error:
        parse_vector_text("[" + ",".join(["1"] * 100_001) + "]")
    assert str(error.value) == "vector cannot have more than 100000 dimensions"


def test_format_vector():
    assert format_vector([1, 2.5, -3]) == "[1,2.5,-3]"
    assert format_vector(np.array([0.1], dtype=np.float32)) == "[0.1]"
    assert format_vector(np.array([[1], [2]], dtype=np.float32)) == "[1,2]"


@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1, max_size=50)
)
def test_format_then_parse_round_trip(values):
    array = np.array(values, dtype=np.float32)
    np.testing.assert_array_equal(parse_vector_text(format_vector(array)), array)


def literal_check(sql: str) -> None:
    [tree] = parse(sql)
    validate_vector_literals(tree)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT '[1,2,3]'::vector(3)",
        "SELECT CAST('[1, 2]' AS vector)",
        "SELECT id FROM t ORDER BY v <-> '[1,2,3]'::vector(3) LIMIT 5",
        "SELECT '[1,,2]'::varchar, 'x'::FLOAT[3]",
        "SELECT ?::vector(3)",
    ],
)
def test_validate_vector_literals_accepts(sql):
    literal_check(sql)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT '[1,,2]'::vector", 'invalid input syntax for type vector: "[1,,2]"'),
        ("SELECT CAST('[]' AS vector(3))", "vector must have at least 1 dimension"),
        ("SELECT 1 WHERE '[1,2]'::vector(3) IS NULL", "expected 3 dimensions, not 2"),
        (
            "INSERT INTO t SELECT * FROM (SELECT '[1,nan]'::vector(2))",
            "NaN not allowed in vector",
        ),
        ("SELECT v <=> '[inf]'::vector(1) FROM t", "infinite value not allowed in vector"),
    ],
)
def test_validate_vector_literals_rejects(sql, message):
    with pytest.raises(DataError) as error:
        literal_check(sql)
    assert str(error.value) == message
