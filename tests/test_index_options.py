"""Tests of vector index definitions: methods, operator classes, options, defaults and errors."""

from __future__ import annotations

import pytest

from planner.index_options import IndexSpec, default_subquantizers, validate_index
from vsql.errors import ProgrammingError


def error_message(method, opclass, options, dims=384) -> str:
    with pytest.raises(ProgrammingError) as error:
        validate_index(method, opclass, options, dims)
    return str(error.value)


# Accepted definitions and their defaults.


def test_hnsw_defaults():
    spec = validate_index("hnsw", "vector_l2_ops", {}, 3)
    assert spec == IndexSpec("hnsw", "l2", "vector_l2_ops", {"m": 16, "ef_construction": 64})


def test_hnsw_without_opclass_uses_l2():
    spec = validate_index("HNSW", None, {}, 3)
    assert spec.method == "hnsw"
    assert spec.opclass == "vector_l2_ops"
    assert spec.metric == "l2"


@pytest.mark.parametrize(
    ("opclass", "metric"),
    [
        ("vector_l2_ops", "l2"),
        ("vector_ip_ops", "ip"),
        ("Vector_Cosine_Ops", "cosine"),
        ("vector_l1_ops", "l1"),
    ],
)
def test_hnsw_opclasses(opclass, metric):
    spec = validate_index("hnsw", opclass, {}, 3)
    assert spec.metric == metric
    assert spec.opclass == opclass.lower()


@pytest.mark.parametrize(
    ("vss_metric", "opclass", "metric"),
    [
        ("l2sq", "vector_l2_ops", "l2"),
        ("COSINE", "vector_cosine_ops", "cosine"),
        ("ip", "vector_ip_ops", "ip"),
    ],
)
def test_hnsw_vss_metric(vss_metric, opclass, metric):
    spec = validate_index("hnsw", None, {"metric": vss_metric}, 3)
    assert spec.opclass == opclass
    assert spec.metric == metric
    assert spec.options == {"m": 16, "ef_construction": 64}


def test_hnsw_vss_metric_agreeing_with_opclass():
    spec = validate_index("hnsw", "vector_cosine_ops", {"metric": "cosine"}, 3)
    assert spec.metric == "cosine"


def test_hnsw_options_given():
    spec = validate_index("hnsw", "vector_ip_ops", {"M": 8, "ef_construction": "16"}, 3)
    assert spec.options == {"m": 8, "ef_construction": 16}


@pytest.mark.parametrize(("m", "ef_construction"), [(2, 4), (100, 1000), (50, 100)])
def test_hnsw_option_bounds_accepted(m, ef_construction):
    spec = validate_index("hnsw", None, {"m": m, "ef_construction": ef_construction}, 3)
    assert spec.options == {"m": m, "ef_construction": ef_construction}


@pytest.mark.parametrize(("lists", "expected"), [(None, 100), (1, 1), (32768, 32768)])
def test_ivfflat_lists(lists, expected):
    options = {} if lists is None else {"lists": lists}
    spec = validate_index("ivfflat", None, options, 3)
    assert spec == IndexSpec("ivfflat", "l2", "vector_l2_ops", {"lists": expected})


def test_ivfpq_defaults():
    spec = validate_index("ivfpq", "vector_cosine_ops", {}, 384)
    assert spec == IndexSpec(
        "ivfpq", "cosine", "vector_cosine_ops", {"lists": 100, "m": 96, "nbits": 8}
    )


def test_ivfpq_options_given():
    spec = validate_index("ivfpq", None, {"lists": 50, "m": 48, "nbits": 4}, 384)
    assert spec.options == {"lists": 50, "m": 48, "nbits": 4}


def test_ivfpq_m_without_dimensions():
    spec = validate_index("ivfpq", None, {"m": 7}, None)
    assert spec.options["m"] == 7


@pytest.mark.parametrize(
    ("dims", "m"), [(384, 96), (768, 192), (100, 25), (8, 2), (7, 1), (3, 1), (13, 1), (18, 3)]
)
def test_default_subquantizers(dims, m):
    assert default_subquantizers(dims) == m
    assert dims % m == 0
    assert m == 1 or dims // m >= 4


# Errors: one test per message.


def test_unknown_method():
    assert error_message("diskann", None, {}) == (
        'access method "diskann" does not exist; valid methods are hnsw, ivfflat, ivfpq'
    )


def test_unknown_opclass_hnsw():
    assert error_message("hnsw", "vector_foo_ops", {}) == (
        'operator class "vector_foo_ops" does not exist for access method "hnsw"; valid operator '
        "classes are vector_l2_ops, vector_ip_ops, vector_cosine_ops, vector_l1_ops"
    )


def test_l1_opclass_not_for_ivfflat():
    assert error_message("ivfflat", "vector_l1_ops", {}) == (
        'operator class "vector_l1_ops" does not exist for access method "ivfflat"; valid '
        "operator classes are vector_l2_ops, vector_ip_ops, vector_cosine_ops"
    )


def test_unknown_parameter_hnsw():
    assert error_message("hnsw", None, {"foo": 1}) == (
        'unrecognized parameter "foo" for access method "hnsw"; valid parameters are m, '
        "ef_construction, metric"
    )


def test_unknown_parameter_ivfflat():
    assert error_message("ivfflat", None, {"m": 16}) == (
        'unrecognized parameter "m" for access method "ivfflat"; valid parameters are lists'
    )


def test_unknown_parameter_ivfpq():
    assert error_message("ivfpq", None, {"metric": "ip"}) == (
        'unrecognized parameter "metric" for access method "ivfpq"; valid parameters are lists, '
        "m, nbits"
    )


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        (
            "hnsw",
            {"m": 1},
            'value 1 out of bounds for option "m": valid values are between 2 and 100',
        ),
        (
            "hnsw",
            {"m": 101, "ef_construction": 1000},
            'value 101 out of bounds for option "m": valid values are between 2 and 100',
        ),
        (
            "hnsw",
            {"ef_construction": 3},
            'value 3 out of bounds for option "ef_construction": '
            "valid values are between 4 and 1000",
        ),
        (
            "hnsw",
            {"ef_construction": 1001},
            'value 1001 out of bounds for option "ef_construction": '
            "valid values are between 4 and 1000",
        ),
        (
            "ivfflat",
            {"lists": 0},
            'value 0 out of bounds for option "lists": valid values are between 1 and 32768',
        ),
        (
            "ivfflat",
            {"lists": 32769},
            'value 32769 out of bounds for option "lists": valid values are between 1 and 32768',
        ),
        (
            "ivfpq",
            {"nbits": 9},
            'value 9 out of bounds for option "nbits": valid values are between 1 and 8',
        ),
        (
            "ivfpq",
            {"nbits": 0},
            'value 0 out of bounds for option "nbits": valid values are between 1 and 8',
        ),
        (
            "ivfpq",
            {"m": 0},
            'value 0 out of bounds for option "m": valid values are between 1 and 100000',
        ),
        (
            "ivfpq",
            {"m": 385},
            'value 385 out of bounds for option "m": valid values are between 1 and 384',
        ),
    ],
)
def test_option_out_of_bounds(method, options, message):
    assert error_message(method, None, options) == message


def test_ef_construction_below_twice_m():
    assert error_message("hnsw", None, {"m": 40}) == (
        "ef_construction must be greater than or equal to 2 * m"
    )


@pytest.mark.parametrize("value", [1.5, "abc", True, None])
def test_option_not_an_integer(value):
    assert error_message("hnsw", None, {"m": value}) == (
        f'invalid value for integer option "m": {value}'
    )


def test_invalid_vss_metric():
    assert error_message("hnsw", None, {"metric": "l1"}) == (
        'invalid value for parameter "metric": "l1"; valid values are l2sq, cosine, ip'
    )


def test_vss_metric_conflicts_with_opclass():
    assert error_message("hnsw", "vector_ip_ops", {"metric": "cosine"}) == (
        'operator class "vector_ip_ops" conflicts with metric "cosine"; metric "cosine" goes '
        'with operator class "vector_cosine_ops"'
    )


def test_ivfpq_m_must_divide_dimensions():
    assert error_message("ivfpq", None, {"m": 5}) == (
        'option "m" must divide the number of dimensions: 384 is not divisible by 5; the '
        "nearest valid values are 4 and 6"
    )


def test_ivfpq_needs_m_without_dimensions():
    assert error_message("ivfpq", None, {}, dims=None) == (
        'ivfpq needs option "m" when the column has no declared dimensions; declare the column '
        "as vector(n) or set m"
    )
