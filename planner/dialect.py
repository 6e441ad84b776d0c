"""The vsql SQL dialect: DuckDB's SQL plus pgvector's vector type, operators, index DDL, settings.

``Vsql`` extends sqlglot's DuckDB dialect in its tokenizer, parser and generator:

- ``vector(n)`` is a column and cast type, written to DuckDB as ``FLOAT[n]``;
- ``<->`` ``<#>`` ``<=>`` ``<+>`` ``<~>`` ``<%>`` are distance operators (`VectorDistance`),
  written to DuckDB as calls of vsql's distance functions;
- ``CREATE INDEX ... USING hnsw|ivfflat|ivfpq``, ``SET``/``RESET``/``SHOW`` of the ``hnsw.*``,
  ``ivfflat.*``, ``ivfpq.*`` and ``vsql.*`` settings and ``CREATE EXTENSION vector`` become vsql
  statements, which the connection runs itself.

>>> [tree] = parse("SELECT id FROM items ORDER BY embedding <=> '[1,2,3]' LIMIT 5")
>>> to_duckdb(tree)
"SELECT id FROM items ORDER BY COSINE_DISTANCE(embedding, CAST('[1,2,3]' AS FLOAT[3])) LIMIT 5"

Everything else parses as DuckDB's SQL does in sqlglot. A statement without vsql syntax
(`uses_vsql_syntax` is False) should be sent to DuckDB as its original text, because sqlglot's
regenerated SQL can differ from it.
"""

from __future__ import annotations

import logging
import typing as t

from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ParseError, TokenError
from sqlglot.generators.duckdb import DuckDBGenerator
from sqlglot.parsers.duckdb import DuckDBParser
from sqlglot.tokens import Token, TokenType

from planner.vectors import MAX_DIMENSIONS, is_vector_type, parse_vector_text, vector_dimensions
from vsql.errors import NotSupportedError, ProgrammingError

logger = logging.getLogger("vsql.dialect")

# Metric of each distance operator, with the metric names of `udfs.metrics`.
DISTANCE_OPERATORS = {
    "<->": "l2",
    "<#>": "ip",
    "<=>": "cosine",
    "<+>": "l1",
    "<~>": "hamming",
    "<%>": "jaccard",
}
OPERATOR_BY_METRIC = {metric: operator for operator, metric in DISTANCE_OPERATORS.items()}

# vsql's SQL function for each metric. The `ip` metric is the negative inner product, as in
# pgvector's <#>.
DISTANCE_FUNCTIONS = {
    "l2": "l2_distance",
    "ip": "negative_inner_product",
    "cosine": "cosine_distance",
    "l1": "l1_distance",
    "hamming": "hamming_distance",
    "jaccard": "jaccard_distance",
}

# Function spellings that `distance_call` recognizes. "inner_product" is the inner product itself,
# whose larger values are closer, unlike the "ip" metric.
_FUNCTION_METRICS = {
    **{name: metric for metric, name in DISTANCE_FUNCTIONS.items()},
    "inner_product": "inner_product",
    "array_distance": "l2",
    "list_distance": "l2",
    "array_cosine_distance": "cosine",
    "list_cosine_distance": "cosine",
    "array_negative_inner_product": "ip",
    "array_negative_dot_product": "ip",
    "list_negative_inner_product": "ip",
    "list_negative_dot_product": "ip",
    "array_inner_product": "inner_product",
    "array_dot_product": "inner_product",
    "list_inner_product": "inner_product",
    "list_dot_product": "inner_product",
}

SETTING_NAMESPACES = ("hnsw", "ivfflat", "ivfpq", "vsql")
VECTOR_INDEX_METHODS = ("hnsw", "ivfflat", "ivfpq")
EXTENSION_NAME = "vector"

# The one token type of all distance operators, whose token text identifies the operator.
# sqlglot's DuckDB dialect uses this type for `<->` only, as a factor, and vsql's parser drops
# that use.
_DISTANCE_TOKEN = TokenType.LR_ARROW


class SqlSyntaxError(ProgrammingError):
    """sqlglot could not parse the statement in the vsql dialect.

    DuckDB may still accept the text, so the caller can send it unchanged. Other errors from
    `parse` (such as ``vector(0)``) are definite and must reach the user.
    """


# Expressions of vsql's syntax.


class VectorDistance(exp.Expression, exp.Binary):
    """A distance operator: ``this <-> expression`` with ``metric`` one of DISTANCE_OPERATORS."""

    arg_types = {"this": True, "expression": True, "metric": True}


class CreateVectorIndex(exp.Expression):
    """``CREATE INDEX name ON table USING method (column opclass) [INCLUDE (columns)] WITH (options)``.

    ``this`` is the index name and ``table`` an ``exp.Table``. ``column`` is the column name as
    written, ``method`` is lower case and ``opclass`` lower case or None. ``include`` lists the
    names of the columns the index keeps a copy of (PostgreSQL's covering indexes). ``options``
    maps lower-case names to int, float, str or bool values. ``exists`` is True for IF NOT EXISTS.
    """

    arg_types = {
        "this": True,
        "table": True,
        "column": True,
        "method": True,
        "opclass": False,
        "include": False,
        "options": False,
        "exists": False,
    }

    def __hash__(self) -> int:
        # sqlglot hashes every arg value, and a dict is not hashable.
        if self._hash is None:
            args = self.args
            options = tuple(sorted((args.get("options") or {}).items()))
            self._hash = hash(
                (
                    self.key,
                    args["this"],
                    hash(args["table"]),
                    args["column"],
                    args["method"],
                    args.get("opclass"),
                    tuple(args.get("include") or ()),
                    options,
                    bool(args.get("exists")),
                )
            )
        return self._hash


class VsqlSet(exp.Expression):
    """``SET [LOCAL] name = value`` of a vsql setting.

    ``value`` is an int, float, str or bool (from on/off/true/false), or None for DEFAULT.
    """

    arg_types = {"name": True, "value": False, "local": False}


class VsqlReset(exp.Expression):
    """``RESET name``, or ``RESET ALL`` when ``name`` is None."""

    arg_types = {"name": False}


class VsqlShow(exp.Expression):
    """``SHOW name`` of a vsql setting."""

    arg_types = {"name": True}


class CreateExtension(exp.Expression):
    """``CREATE EXTENSION [IF NOT EXISTS] vector``, accepted so that pgvector scripts run."""

    arg_types = {"name": True, "exists": False}


class Explain(exp.Expression):
    """``EXPLAIN [ANALYZE] statement``, parsed so that the statement can be rewritten."""

    arg_types = {"this": True, "analyze": False}


VSQL_STATEMENTS = (CreateVectorIndex, VsqlSet, VsqlReset, VsqlShow, CreateExtension)


class VsqlTokenizer(DuckDB.Tokenizer):
    KEYWORDS = {
        **DuckDB.Tokenizer.KEYWORDS,
        **{operator: _DISTANCE_TOKEN for operator in DISTANCE_OPERATORS},
    }
    # As commands, RESET and EXPLAIN would take the rest of the statement as one string token.
    # As plain words the parser can read `RESET hnsw.ef_search` and the statement after EXPLAIN.
    KEYWORDS.pop("RESET")
    KEYWORDS.pop("EXPLAIN")
    # `?::` is Databricks' try-cast operator. In DuckDB, `?::vector(3)` is a cast parameter.
    KEYWORDS.pop("?::")


def _is_word(token: Token) -> bool:
    return (
        token.token_type not in (TokenType.STRING, TokenType.NUMBER)
        and token.text.replace("_", "").isalnum()
    )


class VsqlParser(DuckDBParser):
    # cosine_distance is vsql's own SQL function, so it stays a call by that name instead of
    # sqlglot's rename to DuckDB's list_cosine_distance.
    FUNCTIONS = {
        name: builder
        for name, builder in DuckDBParser.FUNCTIONS.items()
        if name.lower() not in _FUNCTION_METRICS or name.lower().startswith(("list_", "array_"))
    }
    FACTOR = {
        token: expression
        for token, expression in DuckDBParser.FACTOR.items()
        if token != _DISTANCE_TOKEN
    }
    STATEMENT_PARSERS = {
        **DuckDBParser.STATEMENT_PARSERS,
        TokenType.SET: lambda self: self._parse_vsql_set(),
        TokenType.SHOW: lambda self: self._parse_vsql_show(),
    }

    def _warn_unsupported(self) -> None:
        # sqlglot warns on every statement it keeps as a Command. For vsql that is the normal
        # path to DuckDB for `RESET threads`, `CALL ...` and others, so it is logged at debug.
        logger.debug("sqlglot keeps the statement as a Command: %s", self.sql[:100])

    def _parse_statement(self) -> exp.Expr | None:
        if self._curr.token_type == TokenType.VAR:
            word = self._curr.text.upper()
            if word == "RESET":
                self._advance()
                return self._parse_vsql_reset()
            if word == "EXPLAIN":
                self._advance()
                return self._parse_explain()
        return super()._parse_statement()

    # Distance operators bind like PostgreSQL's other user-defined operators: looser than
    # + - * / and tighter than comparisons, so `a <-> b < 5` is `(a <-> b) < 5`. sqlglot's
    # bitwise level (| & || << >>) is the closest, so they are read there, left-associative.
    # NOTE: an operand to the right of a distance operator takes the bitwise operators along,
    # so `a <-> b || c` reads as `a <-> (b || c)`, where PostgreSQL reads `(a <-> b) || c`.
    def _parse_bitwise(self) -> exp.Expr | None:
        this = super()._parse_bitwise()
        while self._match(_DISTANCE_TOKEN):
            metric = DISTANCE_OPERATORS[self._prev.text]
            comments = self._prev_comments
            right = super()._parse_bitwise()
            this = self.expression(
                VectorDistance(this=this, expression=right, metric=metric), comments=comments
            )
        return this

    def _parse_types(self, *args: t.Any, **kwargs: t.Any) -> exp.Expr | None:
        data_type = super()._parse_types(*args, **kwargs)
        if is_vector_type(data_type):
            _check_vector_type(t.cast(exp.DataType, data_type))
        return data_type

    def _parse_create(self) -> exp.Expr:
        if self._match_text_seq("EXTENSION"):
            return self._parse_create_extension()
        create = super()._parse_create()
        if isinstance(create, exp.Create) and create.kind == "INDEX":
            return _vector_index_from_create(create) or create
        return create

    def _parse_create_extension(self) -> CreateExtension:
        exists = bool(self._parse_exists(not_=True))
        name = self._parse_id_var(any_token=True)
        if name is None:
            self.raise_error("Expected an extension name")
        if name.name.lower() != EXTENSION_NAME:
            raise ProgrammingError(
                f'extension "{name.name}" is not available; vsql provides only "{EXTENSION_NAME}"'
            )
        return self.expression(CreateExtension(name=EXTENSION_NAME, exists=exists))

    def _parse_setting_name(self) -> str | None:
        """Read `namespace.name` when the namespace is vsql's, else return None and read nothing."""
        if self._index + 2 >= self._tokens_size:
            return None
        namespace, dot, name = self._tokens[self._index : self._index + 3]
        if (
            namespace.token_type not in (TokenType.VAR, TokenType.IDENTIFIER)
            or namespace.text.lower() not in SETTING_NAMESPACES
            or dot.token_type != TokenType.DOT
            or not _is_word(name)
        ):
            return None
        self._advance(3)
        return f"{namespace.text.lower()}.{name.text.lower()}"

    def _parse_setting_value(self) -> int | float | str | bool | None:
        if self._match_set((TokenType.DASH, TokenType.PLUS)):
            sign = -1 if self._prev.token_type == TokenType.DASH else 1
            if not self._match(TokenType.NUMBER):
                self.raise_error("Expected a number after the sign")
            return sign * _number(self._prev.text)
        if self._match(TokenType.NUMBER):
            return _number(self._prev.text)
        if self._match(TokenType.STRING):
            return self._prev.text
        if self._match(TokenType.DEFAULT):
            return None
        if self._curr and _is_word(self._curr):
            self._advance()
            word = self._prev.text.lower()
            return {"on": True, "true": True, "off": False, "false": False}.get(word, word)
        self.raise_error("Expected a setting value")
        return None

    def _parse_vsql_set(self) -> exp.Expr:
        index = self._index
        local = self._match_text_seq("LOCAL")
        if not local:
            self._match_text_seq("SESSION")
        name = self._parse_setting_name()
        if name is None:
            self._retreat(index)
            return self._parse_set()

        if not (self._match(TokenType.EQ) or self._match_text_seq("TO")):
            self.raise_error(f"Expected = or TO after {name}")
        value = self._parse_setting_value()
        return self.expression(VsqlSet(name=name, value=value, local=local))

    def _parse_vsql_show(self) -> exp.Expr | None:
        name = self._parse_setting_name()
        if name is None:
            return self._parse_show()
        return self.expression(VsqlShow(name=name))

    def _parse_vsql_reset(self) -> exp.Expr:
        start = self._prev
        if self._match(TokenType.ALL):
            return self.expression(VsqlReset(name=None))
        name = self._parse_setting_name()
        if name is None:
            return self._parse_as_command(start)
        return self.expression(VsqlReset(name=name))

    def _parse_explain(self) -> exp.Expr:
        start = self._prev
        if self._curr.token_type == TokenType.L_PAREN:
            # DuckDB's options list, as in EXPLAIN (FORMAT json) SELECT ...
            return self._parse_as_command(start)
        analyze = self._match(TokenType.ANALYZE)
        statement = self._parse_statement()
        if statement is None:
            self.raise_error("Expected a statement after EXPLAIN")
        return self.expression(Explain(this=statement, analyze=analyze))


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _check_vector_type(data_type: exp.DataType) -> None:
    params = data_type.expressions
    if not params:
        return
    if (
        len(params) != 1
        or not isinstance(params[0], exp.DataTypeParam)
        or not params[0].this.is_int
    ):
        raise ProgrammingError(
            f"invalid type modifier for type vector: {data_type.sql('duckdb')}; "
            "write vector(n) with n the number of dimensions"
        )
    dims = vector_dimensions(data_type)
    if dims < 1:
        raise ProgrammingError("dimensions for type vector must be at least 1")
    if dims > MAX_DIMENSIONS:
        raise ProgrammingError(f"dimensions for type vector cannot exceed {MAX_DIMENSIONS}")


def _vector_index_from_create(create: exp.Create) -> CreateVectorIndex | None:
    """Convert sqlglot's CREATE INDEX into CreateVectorIndex when its method is a vector one."""
    index = create.this
    params = index.args.get("params") if isinstance(index, exp.Index) else None
    using = params.args.get("using") if params else None
    if using is None or using.name.lower() not in VECTOR_INDEX_METHODS:
        return None
    method = using.name.lower()

    _check_index_shape(create, params, method)
    column, opclass = _index_column(params.args["columns"][0], method)
    table = index.args["table"]
    # PostgreSQL's name for an unnamed index.
    name = index.name or f"{table.name}_{column}_idx"
    options = {
        prop.name.lower(): _option_value(prop) for prop in params.args.get("with_storage") or []
    }
    return CreateVectorIndex(
        this=name,
        table=table,
        column=column,
        method=method,
        opclass=opclass,
        include=_included_columns(params, method),
        options=options,
        exists=bool(create.args.get("exists")),
    )


def _included_columns(params: exp.IndexParameters, method: str) -> list[str]:
    names = []
    for entry in params.args.get("include") or []:
        if not isinstance(entry, (exp.Identifier, exp.Column)) or (isinstance(entry, exp.Column) and entry.table):
            raise NotSupportedError(
                f'access method "{method}" can include only columns of the table, not {entry.sql(dialect=Vsql)}'
            )
        names.append(entry.name)
    return names


def _check_index_shape(create: exp.Create, params: exp.IndexParameters, method: str) -> None:
    if create.args.get("unique"):
        raise ProgrammingError(f'access method "{method}" does not support unique indexes')
    if len(params.args.get("columns") or []) != 1:
        raise ProgrammingError(f'access method "{method}" does not support multicolumn indexes')
    if params.args.get("where"):
        raise NotSupportedError(
            "partial vector indexes are not supported; remove the WHERE clause and filter in "
            "the query instead"
        )
    for key in ("partition_by", "tablespace", "on"):
        if params.args.get(key):
            raise NotSupportedError(f"vector indexes do not support {key.upper()}")


def _index_column(ordered: exp.Expr, method: str) -> tuple[str, str | None]:
    """Return the column name and operator class of an index's column entry."""
    if isinstance(ordered, exp.Ordered) and ordered.args.get("desc"):
        raise ProgrammingError(f'access method "{method}" does not support ASC/DESC options')
    entry = ordered.this if isinstance(ordered, exp.Ordered) else ordered

    opclass = None
    if isinstance(entry, exp.Opclass):
        opclass = entry.expression.name.lower()
        entry = entry.this
    if not isinstance(entry, exp.Column) or entry.table:
        expression = entry.sql(dialect=Vsql)
        raise NotSupportedError(
            f"vector indexes support only a column of the table, not the expression {expression}"
        )
    return entry.name, opclass


def _option_value(prop: exp.Property) -> int | float | str | bool:
    value = prop.args.get("value")
    if isinstance(value, exp.Neg) and isinstance(value.this, exp.Literal) and value.this.is_number:
        return -_number(value.this.this)
    if isinstance(value, exp.Literal):
        return _number(value.this) if value.is_number else value.this
    if isinstance(value, exp.Boolean):
        return value.to_py()
    if isinstance(value, (exp.Column, exp.Var, exp.Identifier)):
        return value.name.lower()
    value_sql = value.sql(dialect=Vsql) if value else "nothing"
    raise ProgrammingError(f'invalid value for parameter "{prop.name}": {value_sql}')


# SQL generation.

# Operators that bind tighter than the distance operators, so a distance among their operands
# needs parentheses.
_TIGHTER_OPERATORS = (
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.IntDiv,
    exp.Mod,
    exp.Pow,
    exp.Neg,
    exp.Dot,
    exp.Bracket,
    exp.Collate,
)


def _distance_operand(generator: DuckDBGenerator, node: exp.Expr, right: bool) -> str:
    sql = generator.sql(node)
    if isinstance(node, VectorDistance):
        looser = right
    else:
        looser = isinstance(node, (exp.Binary, exp.Predicate, exp.Not)) and not isinstance(
            node, _TIGHTER_OPERATORS
        )
    return f"({sql})" if looser else sql


def _vector_distance_sql(generator: DuckDBGenerator, node: VectorDistance) -> str:
    left = _distance_operand(generator, node.this, right=False)
    right = _distance_operand(generator, node.expression, right=True)
    sql = f"{left} {OPERATOR_BY_METRIC[node.args['metric']]} {right}"
    return f"({sql})" if isinstance(node.parent, _TIGHTER_OPERATORS) else sql


def _explain_sql(generator: DuckDBGenerator, node: Explain) -> str:
    analyze = " ANALYZE" if node.args.get("analyze") else ""
    return f"EXPLAIN{analyze} {generator.sql(node.this)}"


def _setting_value_sql(generator: DuckDBGenerator, value: object) -> str:
    if value is None:
        return "DEFAULT"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return repr(value)
    return generator.sql(exp.Literal.string(str(value)))


def _create_vector_index_sql(generator: DuckDBGenerator, node: CreateVectorIndex) -> str:
    exists = " IF NOT EXISTS" if node.args.get("exists") else ""
    opclass = f" {node.args['opclass']}" if node.args.get("opclass") else ""
    sql = (
        f"CREATE INDEX{exists} {node.this} ON {generator.sql(node.args['table'])} "
        f"USING {node.args['method']} ({node.args['column']}{opclass})"
    )
    if node.args.get("include"):
        sql += f" INCLUDE ({', '.join(generator.sql(exp.to_identifier(name)) for name in node.args['include'])})"
    options = node.args.get("options")
    if options:
        pairs = ", ".join(
            f"{name} = {_setting_value_sql(generator, value)}" for name, value in options.items()
        )
        sql += f" WITH ({pairs})"
    return sql


def _vsql_set_sql(generator: DuckDBGenerator, node: VsqlSet) -> str:
    local = " LOCAL" if node.args.get("local") else ""
    value = _setting_value_sql(generator, node.args.get("value"))
    return f"SET{local} {node.args['name']} = {value}"


class VsqlGenerator(DuckDBGenerator):
    """Writes trees back in the vsql dialect, with its operators and statements."""

    TRANSFORMS = {
        **DuckDBGenerator.TRANSFORMS,
        VectorDistance: _vector_distance_sql,
        Explain: _explain_sql,
        CreateVectorIndex: _create_vector_index_sql,
        VsqlSet: _vsql_set_sql,
        VsqlReset: lambda self, e: f"RESET {e.args.get('name') or 'ALL'}",
        VsqlShow: lambda self, e: f"SHOW {e.args['name']}",
        CreateExtension: lambda self, e: (
            f"CREATE EXTENSION{' IF NOT EXISTS' if e.args.get('exists') else ''} {e.args['name']}"
        ),
    }


def _vector_operand(node: exp.Expr, metric: str) -> exp.Expr:
    """Cast a string literal operand such as '[1,2,3]' to FLOAT[3].

    PostgreSQL gives an untyped literal next to a vector operator the vector type, while DuckDB
    would pass a VARCHAR. Binary vectors (hamming, jaccard) are not in pgvector's text form, so
    their literals stay as written.
    """
    if metric in ("hamming", "jaccard") or not (isinstance(node, exp.Literal) and node.is_string):
        return node
    dims = exp.Literal.number(len(parse_vector_text(node.this)))
    vector_type = exp.DataType(this=exp.DType.VECTOR, expressions=[exp.DataTypeParam(this=dims)])
    return exp.cast(node.copy(), vector_type)


def _distance_function_sql(generator: DuckDBGenerator, node: VectorDistance) -> str:
    metric = node.args["metric"]
    left = _vector_operand(node.this, metric)
    right = _vector_operand(node.expression, metric)
    return generator.func(DISTANCE_FUNCTIONS[metric], left, right)


class DuckDBOutputGenerator(DuckDBGenerator):
    """Writes trees as DuckDB SQL: distance operators become calls of vsql's distance
    functions and ``vector(n)`` becomes ``FLOAT[n]``."""

    TRANSFORMS = {
        **DuckDBGenerator.TRANSFORMS,
        VectorDistance: _distance_function_sql,
        Explain: _explain_sql,
    }

    def datatype_sql(self, expression: exp.DataType) -> str:
        if is_vector_type(expression):
            dims = vector_dimensions(expression)
            return f"FLOAT[{dims}]" if dims is not None else "FLOAT[]"
        return super().datatype_sql(expression)


class Vsql(DuckDB):
    """DuckDB's SQL with pgvector's vector syntax; see the module docstring."""

    Tokenizer = VsqlTokenizer
    Parser = VsqlParser
    Generator = VsqlGenerator


_VSQL = Vsql()
_DUCKDB = DuckDB()


# Public helpers.


def parse(sql: str) -> list[exp.Expr]:
    """Parse a script in the vsql dialect into one tree per statement.

    Raises ``SqlSyntaxError`` (a ``ProgrammingError``) with the line and column when sqlglot
    cannot parse the text, and ``ProgrammingError`` or ``NotSupportedError`` for vsql syntax that
    parses but is invalid, such as ``vector(0)``.
    """
    try:
        trees = _VSQL.parse(sql)
    except ParseError as error:
        raise SqlSyntaxError(_syntax_error_message(error)) from error
    except TokenError as error:
        raise SqlSyntaxError(f"syntax error: {error}") from error
    return [tree for tree in trees if tree is not None]


def _syntax_error_message(error: ParseError) -> str:
    if not error.errors:
        return f"syntax error: {error}"
    details = error.errors[0]
    near = details.get("highlight") or "end of input"
    return (
        f'syntax error at or near "{near}" at line {details.get("line")}, column '
        f"{details.get('col')}: {details.get('description')}"
    )


def number_placeholders(sql: str) -> str:
    """Return ``sql`` with each ``?`` placeholder written as ``$1``, ``$2``, ... in text order.

    sqlglot keeps a SELECT's clauses in the order it first met their slots, not the order they
    are written (LIMIT comes before FROM), so the trees cannot tell which ``?`` came first.
    """
    if "?" not in sql:
        return sql
    try:
        tokens = _VSQL.tokenize(sql)
    except TokenError as error:
        raise SqlSyntaxError(f"syntax error: {error}") from error
    marks = [token for token in tokens if token.token_type == TokenType.PLACEHOLDER and token.text == "?"]
    for number, token in reversed(list(enumerate(marks, start=1))):
        sql = f"{sql[: token.start]}${number}{sql[token.end + 1 :]}"
    return sql


def split_statements(sql: str) -> list[str]:
    """Split a script into the original text of each statement, without the semicolons.

    The vsql tokenizer finds the semicolons, so strings, quoted identifiers, comments and
    ``$$`` bodies may contain them. Statements with no tokens (only comments) are dropped.
    """
    try:
        tokens = _VSQL.tokenize(sql)
    except TokenError as error:
        raise SqlSyntaxError(f"syntax error: {error}") from error

    statements = []
    start = 0
    has_tokens = False
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if has_tokens:
                statements.append(sql[start : token.start].strip())
            start = token.end + 1
            has_tokens = False
        else:
            has_tokens = True
    if has_tokens:
        statements.append(sql[start:].strip())
    return statements


def uses_vsql_syntax(tree: exp.Expr) -> bool:
    """Return True when ``tree`` contains syntax that DuckDB does not accept as vsql means it:
    a vector type, a distance operator or a vsql statement."""
    for node in tree.walk():
        if isinstance(node, (VectorDistance, *VSQL_STATEMENTS)) or is_vector_type(node):
            return True
    return False


def to_duckdb(tree: exp.Expr) -> str:
    """Write ``tree`` as DuckDB SQL.

    Raises ``ValueError`` for the vsql statements (index DDL, settings, CREATE EXTENSION), which
    have no DuckDB form because the connection runs them itself. Raises ``DataError`` for an
    invalid vector literal next to a distance operator.
    """
    if isinstance(tree, VSQL_STATEMENTS):
        raise ValueError(f"{type(tree).__name__} has no DuckDB form; the connection runs it")
    return DuckDBOutputGenerator(dialect=_DUCKDB).generate(tree)


def distance_call(node: exp.Expr) -> tuple[str, exp.Expr, exp.Expr] | None:
    """Return ``(metric, left, right)`` when ``node`` computes a vector distance, else None.

    Recognizes the distance operators and the function spellings of vsql and DuckDB
    (``l2_distance``, ``array_cosine_distance``, ``list_inner_product``, ...). The metric is one of
    DISTANCE_OPERATORS' metrics, or "inner_product" for the inner product itself. Parentheses
    around ``node`` are looked through.
    """
    node = node.unnest()
    if isinstance(node, VectorDistance):
        return node.args["metric"], node.this, node.expression

    if isinstance(node, exp.Anonymous):
        name, args = node.name.lower(), node.expressions
    elif isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous):
        name, args = node.sql_name().lower(), [node.this, node.args.get("expression")]
    else:
        return None

    metric = _FUNCTION_METRICS.get(name) or _TYPED_FUNCTION_METRICS.get(type(node))
    if metric is None or len(args) != 2 or args[1] is None:
        return None
    return metric, args[0], args[1]


# sqlglot's own classes for some of DuckDB's distance functions (list_distance parses as
# EuclideanDistance, list_cosine_distance as CosineDistance).
_TYPED_FUNCTION_METRICS: dict[type, str] = {
    exp.EuclideanDistance: "l2",
    exp.CosineDistance: "cosine",
}
