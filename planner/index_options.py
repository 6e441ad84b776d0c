"""Validation of vector index definitions: access method, operator class and WITH (...) options.

Both spellings of a vector index are accepted:

- pgvector's, ``CREATE INDEX ON items USING hnsw (embedding vector_cosine_ops) WITH (m = 16)``,
  where the operator class picks the metric;
- duckdb-vss's, ``CREATE INDEX ON items USING HNSW (embedding) WITH (metric = 'cosine')``.

Errors follow pgvector's wording and always list the valid values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vsql.errors import ProgrammingError

# Metric of each operator class, with the metric names of `udfs.metrics`.
OPCLASS_METRICS = {
    "vector_l2_ops": "l2",
    "vector_ip_ops": "ip",
    "vector_cosine_ops": "cosine",
    "vector_l1_ops": "l1",
}
DEFAULT_OPCLASS = "vector_l2_ops"

# duckdb-vss's `metric` option values and the operator class each one stands for.
VSS_METRIC_OPCLASSES = {
    "l2sq": "vector_l2_ops",
    "cosine": "vector_cosine_ops",
    "ip": "vector_ip_ops",
}


@dataclass(frozen=True)
class IntegerOption:
    """An integer index option with inclusive bounds; ``default`` None means it is computed."""

    name: str
    low: int
    high: int
    default: int | None


@dataclass(frozen=True)
class AccessMethod:
    name: str
    opclasses: tuple[str, ...]
    options: tuple[IntegerOption, ...]
    accepts_vss_metric: bool = False

    @property
    def parameter_names(self) -> list[str]:
        names = [option.name for option in self.options]
        return names + ["metric"] if self.accepts_vss_metric else names


_IVF_OPCLASSES = ("vector_l2_ops", "vector_ip_ops", "vector_cosine_ops")
_LISTS = IntegerOption("lists", 1, 32768, 100)

ACCESS_METHODS = {
    "hnsw": AccessMethod(
        "hnsw",
        opclasses=tuple(OPCLASS_METRICS),
        options=(
            IntegerOption("m", 2, 100, 16),
            IntegerOption("ef_construction", 4, 1000, 64),
        ),
        accepts_vss_metric=True,
    ),
    "ivfflat": AccessMethod("ivfflat", opclasses=_IVF_OPCLASSES, options=(_LISTS,)),
    # The upper bound of m is the number of dimensions, checked in _check_ivfpq_subquantizers.
    "ivfpq": AccessMethod(
        "ivfpq",
        opclasses=_IVF_OPCLASSES,
        options=(_LISTS, IntegerOption("m", 1, 100_000, None), IntegerOption("nbits", 1, 8, 8)),
    ),
}


@dataclass(frozen=True)
class IndexSpec:
    """A validated index definition: every option of the access method is present."""

    method: str
    metric: str
    opclass: str
    options: dict[str, int] = field(default_factory=dict)


def validate_index(
    method: str,
    opclass: str | None,
    options: dict[str, int | float | str],
    dims: int | None,
) -> IndexSpec:
    """Check an index definition and return it with the defaults of missing options filled in.

    ``dims`` is the number of dimensions of the indexed column, or None when it is not known;
    only ivfpq's ``m`` depends on it.

    NOTE: pgvector requires an operator class for hnsw. vsql defaults to vector_l2_ops for every
    method, which is also duckdb-vss's default metric (l2sq) when `metric` is not given.

    >>> validate_index("hnsw", None, {"metric": "cosine", "m": 8}, 384).options
    {'m': 8, 'ef_construction': 64}
    """
    access_method = _find_access_method(method)
    options = {key.lower(): value for key, value in options.items()}
    _check_parameter_names(access_method, options)

    opclass = _choose_opclass(access_method, opclass, options.pop("metric", None))
    values = _integer_options(access_method, options)

    if access_method.name == "hnsw" and values["ef_construction"] < 2 * values["m"]:
        raise ProgrammingError("ef_construction must be greater than or equal to 2 * m")
    if access_method.name == "ivfpq":
        values["m"] = _check_ivfpq_subquantizers(values.get("m"), dims)

    return IndexSpec(access_method.name, OPCLASS_METRICS[opclass], opclass, values)


def _find_access_method(method: str) -> AccessMethod:
    access_method = ACCESS_METHODS.get(method.lower())
    if access_method is None:
        valid = ", ".join(ACCESS_METHODS)
        raise ProgrammingError(
            f'access method "{method}" does not exist; valid methods are {valid}'
        )
    return access_method


def _check_parameter_names(access_method: AccessMethod, options: dict[str, object]) -> None:
    valid = access_method.parameter_names
    for name in options:
        if name not in valid:
            raise ProgrammingError(
                f'unrecognized parameter "{name}" for access method "{access_method.name}"; '
                f"valid parameters are {', '.join(valid)}"
            )


def _choose_opclass(
    access_method: AccessMethod, opclass: str | None, vss_metric: object | None
) -> str:
    if opclass is not None:
        opclass = opclass.lower()
        if opclass not in access_method.opclasses:
            raise ProgrammingError(
                f'operator class "{opclass}" does not exist for access method '
                f'"{access_method.name}"; valid operator classes are '
                f"{', '.join(access_method.opclasses)}"
            )

    if vss_metric is None:
        return opclass or DEFAULT_OPCLASS

    metric_opclass = VSS_METRIC_OPCLASSES.get(str(vss_metric).lower())
    if metric_opclass is None:
        raise ProgrammingError(
            f'invalid value for parameter "metric": "{vss_metric}"; valid values are '
            f"{', '.join(VSS_METRIC_OPCLASSES)}"
        )
    if opclass is not None and opclass != metric_opclass:
        raise ProgrammingError(
            f'operator class "{opclass}" conflicts with metric "{vss_metric}"; '
            f'metric "{vss_metric}" goes with operator class "{metric_opclass}"'
        )
    return metric_opclass


def _integer_options(
    access_method: AccessMethod, options: dict[str, int | float | str]
) -> dict[str, int]:
    values: dict[str, int] = {}
    for option in access_method.options:
        if option.name not in options:
            if option.default is not None:
                values[option.name] = option.default
            continue
        value = _to_integer(option.name, options[option.name])
        if not option.low <= value <= option.high:
            raise ProgrammingError(
                f'value {value} out of bounds for option "{option.name}": '
                f"valid values are between {option.low} and {option.high}"
            )
        values[option.name] = value
    return values


def _to_integer(name: str, value: object) -> int:
    # PostgreSQL stores index options as text, so '16' is as valid as 16.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    raise ProgrammingError(f'invalid value for integer option "{name}": {value}')


def _check_ivfpq_subquantizers(m: int | None, dims: int | None) -> int:
    """Return ivfpq's number of subquantizers m, which must divide the number of dimensions."""
    if dims is None:
        if m is None:
            raise ProgrammingError(
                'ivfpq needs option "m" when the column has no declared dimensions; '
                "declare the column as vector(n) or set m"
            )
        return m

    if m is None:
        return default_subquantizers(dims)
    if m > dims:
        raise ProgrammingError(
            f'value {m} out of bounds for option "m": valid values are between 1 and {dims}'
        )
    if dims % m != 0:
        divisors = [d for d in range(1, dims + 1) if dims % d == 0]
        below = max(d for d in divisors if d < m)
        above = min(d for d in divisors if d > m)
        raise ProgrammingError(
            f'option "m" must divide the number of dimensions: {dims} is not divisible by {m}; '
            f"the nearest valid values are {below} and {above}"
        )
    return m


def default_subquantizers(dims: int) -> int:
    """Return the default ivfpq m: the largest divisor of ``dims`` that leaves at least 4
    dimensions per subvector, or 1 when no divisor above 1 does.

    For 384 dimensions this is 96 subvectors of 4 dimensions: 96 bytes of codes per row with
    8-bit codes, against 1536 bytes of float32.
    """
    for m in range(dims // 4, 1, -1):
        if dims % m == 0:
            return m
    return 1
