"""The planner: one statement's text in, a :class:`Plan` out.

The pipeline, in order:

1. parse the statement in the vsql dialect (text sqlglot cannot parse goes to DuckDB unchanged);
2. statements vsql runs itself (index DDL, vsql settings, CREATE EXTENSION) become commands;
3. vector literals are validated (pgvector's messages for bad vector text);
4. every ``ORDER BY distance LIMIT k`` that an index serves is rewritten (:mod:`planner.knn`);
5. a statement still free of vsql syntax is sent as its original text, anything else as DuckDB
   SQL generated from the tree.

Plans are cached by statement text, index catalog version and settings version.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from sqlglot import exp

from planner import knn
from planner.dialect import (
    CreateExtension,
    CreateVectorIndex,
    SqlSyntaxError,
    VsqlReset,
    VsqlSet,
    VsqlShow,
    number_placeholders,
    parse,
    to_duckdb,
    uses_vsql_syntax,
)
from planner.parameters import BoundSql, compile_sql
from planner.vectors import parse_vector_text, validate_vector_literals
from vsql.errors import DataError

if TYPE_CHECKING:
    from vsql.connection import Connection
    from vsql.index_manager import ManagedIndex

log = logging.getLogger("vsql")

# EXPLAIN, after any leading comments (the shell keeps a script's comments with each statement).
EXPLAIN_PREFIX = re.compile(
    r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*EXPLAIN\s+(ANALYZE\s+|ANALYSE\s+)?", re.IGNORECASE | re.DOTALL
)
READ_ONLY_KEYWORDS = {
    "select",
    "with",
    "from",
    "show",
    "describe",
    "summarize",
    "pragma",
    "values",
    "table",
    "call",
    "explain",
    "set",
    "reset",
    "load",
    "install",
}
CACHE_SIZE = 512


@dataclass
class Prefetch:
    """A kNN search vsql runs before sending the statement, whose results become parameters."""

    number: int
    index: ManagedIndex
    k: int  # rows to find: LIMIT + OFFSET, where constant
    limit_parameter: int | None = None  # the user parameter that gives LIMIT, if one does
    offset_parameter: int | None = None
    query_parameter: int | None = None  # the query vector is this user parameter
    query_value: np.ndarray | None = None  # or this literal
    query_sql: BoundSql | None = None  # or the value of this statement
    filter_sql: BoundSql | None = None  # rowids of the rows the WHERE clause keeps

    def run(self, connection: Connection, parameters: Any) -> dict[str, Any]:
        q = self._query_vector(connection, parameters)
        allowed = self.allowed_rowids(connection, parameters)
        rowids, distances, null = self.index.search(q, self._count(parameters), allowed)
        values: Any = distances
        if null.any():
            values = [None if is_null else float(d) for d, is_null in zip(distances, null, strict=True)]
        return {f"__vsql_rowids{self.number}": rowids, f"__vsql_distances{self.number}": values}

    def allowed_rowids(self, connection: Connection, parameters: Any) -> np.ndarray | None:
        """Return the sorted rowids of the rows the WHERE clause keeps, or None without one."""
        if self.filter_sql is None:
            return None
        table = connection.query_arrow(self.filter_sql.sql, self.filter_sql.bind(parameters))
        return np.sort(table.column(0).to_numpy().astype(np.int64, copy=False))

    def _count(self, parameters: Any) -> int:
        """Return LIMIT + OFFSET with the parameters' values, rounded up.

        DuckDB reads ``LIMIT NULL`` as no limit and ``OFFSET NULL`` as none, so a NULL LIMIT
        requests every row.
        """
        k = self.k
        for clause, position in (("LIMIT", self.limit_parameter), ("OFFSET", self.offset_parameter)):
            if position is None:
                continue
            count = _count_value(clause, parameters[position])
            if count is None and clause == "LIMIT":
                return len(self.index.node_rowids) + len(self.index.excluded_rowids)
            k += count or 0
        return k

    def _query_vector(self, connection: Connection, parameters: Any) -> np.ndarray | None:
        if self.query_value is not None:
            return self.query_value
        if self.query_parameter is not None:
            value = parameters[self.query_parameter]
        else:
            rows = connection.send(self.query_sql.sql, self.query_sql.bind(parameters)).fetchall()
            value = rows[0][0] if rows else None
        if value is None:
            return None
        return np.asarray(value, dtype=np.float32)


@dataclass
class IndexOnly:
    """A kNN SELECT whose result comes from the index's INCLUDE columns (see ``knn.covering_outputs``).

    Plain DuckDB needs about 1 ms to fetch 10 rows by rowid from a 100,000-row table, four times
    the HNSW search itself. A query that needs no other column skips that statement, and DuckDB
    evaluates only the WHERE clause, if there is one. The plan keeps the ordinary statement for
    the cases that ``covering_ready`` and ``covering_search`` send back to DuckDB.
    """

    prefetch: Prefetch
    outputs: list[tuple[str, str | None]]  # (name, INCLUDE column or None for the distance)
    limit: int | None  # the constant LIMIT, or None when a parameter gives it
    offset: int | None

    def usable(self) -> bool:
        return self.prefetch.index.covering_ready()

    def run(self, connection: Connection, parameters: Any) -> tuple[list[tuple], list[tuple], Callable] | None:
        """Return the description, the rows and a maker of their Arrow table, or None to let DuckDB
        run the statement."""
        prefetch = self.prefetch
        q = prefetch._query_vector(connection, parameters)
        if not prefetch.index.covering_ready():
            return None
        allowed = prefetch.allowed_rowids(connection, parameters)
        found = prefetch.index.covering_search(q, prefetch._count(parameters), allowed)
        if found is None:
            return None
        nodes, distances = found
        offset = self.offset
        if offset is None:
            offset = _count_value("OFFSET", parameters[prefetch.offset_parameter]) or 0
        limit = self.limit
        if limit is None:
            limit = _count_value("LIMIT", parameters[prefetch.limit_parameter])
        end = len(nodes) if limit is None else offset + limit
        nodes, distances = nodes[offset:end], distances[offset:end]
        columns = [column for _, column in self.outputs if column is not None]
        index = prefetch.index
        types, values = index.covering_columns(columns)
        gathered = [array[nodes] for array in values] + [distances]
        order = [len(columns) if column is None else columns.index(column) for _, column in self.outputs]
        names = [name for name, _ in self.outputs]
        description = [(name, types[i], None, None, None, None, None) for name, i in zip(names, order, strict=True)]
        rows = list(zip(*(gathered[i].tolist() for i in order), strict=True))
        included = index.included

        def arrow() -> pa.Table:
            selected = included.select([index._include_position(c) for c in columns]).take(pa.array(nodes, pa.int64()))
            arrays = [*selected.columns, pa.array(distances, pa.float64())]
            return pa.table([arrays[i] for i in order], names=names)

        return description, rows, arrow


def _count_value(clause: str, value: Any) -> int | None:
    """Return a LIMIT or OFFSET parameter as DuckDB reads it: None is no limit (or offset 0)."""
    if value is None:
        return None
    try:
        count = math.ceil(float(value))
    except (TypeError, ValueError, OverflowError):
        count = -1
    if count < 0:
        raise DataError(f"{clause} must be a non-negative integer, not {value!r}")
    return count


@dataclass
class Plan:
    """How to run one statement."""

    sql: str | None = None  # DuckDB SQL to send, when ``command`` is None
    command: Callable[[Connection, Any], Any] | None = None
    indexes: list[ManagedIndex] = field(default_factory=list)  # synced before running
    written_tables: set[str] | None = field(default_factory=set)  # None: unknown, mark all
    transaction: str | None = None  # "begin", "commit" or "rollback"
    notes: list[str] = field(default_factory=list)  # vsql's plan, shown by EXPLAIN
    matches: list[knn.KnnMatch] = field(default_factory=list)
    prefetch: list[Prefetch] = field(default_factory=list)
    main: BoundSql | None = None  # with prefetches: ``sql`` and the source of each parameter
    index_only: IndexOnly | None = None  # when set, tried before sending ``sql``


def _table_key(table: exp.Table) -> str:
    return table.name.lower()


def written_tables(tree: exp.Expression) -> set[str] | None:
    """Return the lower-case names of tables a statement may write, or None when unknown."""
    if isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Copy, exp.Alter)):
        target = tree.this
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(tree, exp.Copy) and not tree.args.get("kind"):
            return set()  # COPY ... TO writes a file, not a table
        return {_table_key(target)} if isinstance(target, exp.Table) else None
    if isinstance(tree, exp.TruncateTable):
        return {_table_key(t) for t in tree.expressions if isinstance(t, exp.Table)}
    if isinstance(tree, (exp.Drop, exp.Create)):
        target = tree.this
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(tree, exp.Drop) and tree.args.get("tables"):
            return {_table_key(t) for t in tree.args["tables"] if isinstance(t, exp.Table)}
        return {_table_key(target)} if isinstance(target, exp.Table) else set()
    if isinstance(tree, exp.Command):
        return None
    return set()


def _numbered_placeholders(tree: exp.Expression) -> None:
    """Turn ``?`` placeholders into ``$1, $2, ...`` so a rewrite may use a parameter twice."""
    # A depth-first walk visits a statement's arguments in the order they are written.
    placeholders = [p for p in tree.find_all(exp.Placeholder, bfs=False) if p.this is None]
    for number, placeholder in enumerate(placeholders, start=1):
        placeholder.set("this", str(number))


class Planner:
    """Plans statements for one connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._cache: dict[tuple, Plan] = {}

    def plan(self, text: str, exact_because: str | None = None) -> Plan:
        """Plan a statement; ``exact_because`` plans kNN queries as exact scans, giving the reason."""
        key = (text, self.connection.indexes.version, self.connection.settings.version, exact_because)
        plan = self._cache.get(key)
        if plan is None:
            plan = self._plan(text, exact_because)
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = plan
        return plan

    def _plan(self, text: str, exact_because: str | None = None) -> Plan:
        from vsql import commands

        explain = EXPLAIN_PREFIX.match(text)
        if explain:
            inner = self._plan(text[explain.end() :], exact_because)
            return commands.explain_plan(inner, analyze=bool(explain.group(1)))
        try:
            trees = parse(number_placeholders(text))
        except SqlSyntaxError as error:
            if any(op in text for op in ("<->", "<#>", "<=>", "<+>", "<~>", "<%>")):
                raise
            log.debug("sqlglot could not parse the statement, sending it unchanged: %s", error)
            return Plan(sql=text, written_tables=self._guess_writes(text))
        except (IndexError, KeyError, TypeError, AttributeError, ValueError) as error:
            # sqlglot itself failed on a statement it does not know (for example SHOW ALL):
            # DuckDB gets the text unchanged and reports any real error itself.
            log.debug("sqlglot failed on the statement (%r), sending it unchanged", error)
            return Plan(sql=text, written_tables=self._guess_writes(text))
        if not trees or trees[0] is None:
            return Plan(sql=text)
        tree = trees[0]
        plan = self._plan_command(tree, text)
        if plan is not None:
            return plan
        plan = Plan(written_tables=written_tables(tree))
        if isinstance(tree, exp.Transaction):
            plan.transaction = "begin"
        elif isinstance(tree, exp.Commit):
            plan.transaction = "commit"
        elif isinstance(tree, exp.Rollback):
            plan.transaction = "rollback"
        if isinstance(tree, exp.Command):
            plan.sql = text
            return plan
        validate_vector_literals(tree)
        changed = self._rewrite_knn(tree, plan, exact_because)
        if plan.prefetch:
            plan.main = compile_sql(tree)
            plan.sql = plan.main.sql
        else:
            plan.sql = to_duckdb(tree) if changed or uses_vsql_syntax(tree) else text
        if plan.sql != text:
            log.debug("rewrote statement: %s", plan.sql)
        if isinstance(tree, exp.Drop) and (tree.args.get("kind") or "").upper() == "TABLE":
            plan.command = commands.drop_table(plan.sql, written_tables(tree) or set())
        elif (
            isinstance(tree, exp.Create)
            and tree.args.get("replace")
            and (tree.args.get("kind") or "").upper() == "TABLE"
        ):
            plan.command = commands.replace_table(plan.sql, written_tables(tree) or set())
        elif isinstance(tree, exp.Alter):
            plan.command = commands.alter_table(plan.sql, tree)
        if any(t.name.lower() == "vsql_indexes" for t in tree.find_all(exp.Table)):
            plan.command = commands.with_index_listing(plan.sql)
        return plan

    @staticmethod
    def _prefetch(match: knn.KnnMatch, number: int) -> Prefetch:
        constant = sum(count for count in (match.k, match.offset) if isinstance(count, int))
        prefetch = Prefetch(number, match.index, constant)
        if not isinstance(match.k, int):
            prefetch.limit_parameter = int(match.k.this) - 1
        if not isinstance(match.offset, int):
            prefetch.offset_parameter = int(match.offset.this) - 1
        query = match.query
        if isinstance(query, exp.Cast) and isinstance(query.this, exp.Placeholder):
            query = query.this
        if isinstance(query, exp.Paren):
            query = query.this
        if isinstance(query, exp.Placeholder):
            prefetch.query_parameter = int(query.this) - 1
        elif isinstance(query, exp.Literal) and query.is_string:
            prefetch.query_value = parse_vector_text(query.this)
        else:
            cast = exp.cast(query.copy(), exp.DataType.build("DOUBLE[]", dialect="duckdb"))
            prefetch.query_sql = compile_sql(exp.select(cast))
        filter_tree = knn.filter_query(match)
        if filter_tree is not None:
            prefetch.filter_sql = compile_sql(filter_tree)
        return prefetch

    def _guess_writes(self, text: str) -> set[str] | None:
        words = text.split(None, 1)
        return set() if words and words[0].lower() in READ_ONLY_KEYWORDS else None

    def _plan_command(self, tree: exp.Expression, text: str) -> Plan | None:
        from vsql import commands

        if isinstance(tree, CreateVectorIndex):
            return Plan(command=commands.create_index(tree))
        if isinstance(tree, exp.Drop) and (tree.args.get("kind") or "").upper() == "INDEX":
            names = [t.name for t in tree.args.get("tables") or []]
            if names and self.connection.indexes.get(names[0]) is not None:
                return Plan(command=commands.drop_index(names[0]))
            return None
        if isinstance(tree, VsqlSet):
            return Plan(command=commands.set_setting(tree))
        if isinstance(tree, VsqlReset):
            return Plan(command=commands.reset_setting(tree))
        if isinstance(tree, VsqlShow):
            return Plan(command=commands.show_setting(tree))
        if isinstance(tree, CreateExtension):
            return Plan(command=commands.create_extension)
        return None

    def _rewrite_knn(self, tree: exp.Expression, plan: Plan, exact_because: str | None) -> bool:
        manager = self.connection.indexes
        enabled = bool(self.connection.settings.get("vsql.enable_index_scan")) and exact_because is None
        matches = []
        for select in list(tree.find_all(exp.Select)):
            found = knn.match_knn(select, manager, enabled)
            if found is None:
                continue
            if exact_because is not None and found == knn.DISABLED:
                found = exact_because
            if isinstance(found, str):
                plan.notes.append(f"Exact scan: {found}")
                log.info("kNN query runs as an exact scan: %s", found)
                continue
            matches.append(found)
        if not matches:
            return False
        named = any(p.this is not None and not str(p.this).isdigit() for p in tree.find_all(exp.Placeholder))
        _numbered_placeholders(tree)
        used = []
        for number, match in enumerate(matches):
            prefetch = not named and knn.can_prefetch(match)
            if not match.count_is_constant and not prefetch:
                # The in-DuckDB search takes its row count as a constant argument.
                reason = "LIMIT and OFFSET must be integer constants in a correlated kNN query"
                if named:
                    reason = "LIMIT and OFFSET must be integer constants in a statement with named parameters"
                plan.notes.append(f"Exact scan: {reason}")
                log.info("kNN query runs as an exact scan: %s", reason)
                continue
            used.append(match)
            if prefetch:
                outputs = knn.covering_outputs(match, tree)
                plan.prefetch.append(self._prefetch(match, number))
                if outputs is not None:
                    limit = match.k if isinstance(match.k, int) else None
                    offset = match.offset if isinstance(match.offset, int) else None
                    plan.index_only = IndexOnly(plan.prefetch[-1], outputs, limit, offset)
                knn.rewrite_prefetched(match, number)
            else:
                knn.rewrite_knn(match)
            index_only = plan.index_only is not None and plan.index_only.prefetch.index is match.index
            plan.notes.append(knn.describe(match, self.connection.settings, index_only=index_only))
            if match.index not in plan.indexes:
                plan.indexes.append(match.index)
        plan.matches = used
        return True
