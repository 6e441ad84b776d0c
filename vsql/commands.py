"""Statements vsql runs itself: index DDL, vsql settings, CREATE EXTENSION, EXPLAIN.

Each function returns a command ``command(connection, parameters)`` for a :class:`Plan`; a
command returns ``(description, arrow_table)`` for statements with a result, or None.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from planner.index_options import validate_index
from vsql.catalog import IndexDefinition
from vsql.errors import ProgrammingError

if TYPE_CHECKING:
    from planner.pipeline import Plan
    from vsql.connection import Connection

log = logging.getLogger("vsql")

VECTOR_COLUMN_TYPE = re.compile(r"^(FLOAT|DOUBLE)\[(\d+)\]$", re.IGNORECASE)


def _result(columns: dict[str, pa.Array]) -> tuple[list[tuple], pa.Table]:
    table = pa.table(columns)
    description = [
        (name, _sql_type(table.schema.field(name).type), None, None, None, None, None) for name in table.column_names
    ]
    return description, table


def _sql_type(arrow_type: pa.DataType) -> str:
    """Return the DuckDB name of an Arrow type, for ``cursor.description``."""
    names = {
        pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR",
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.float64(): "DOUBLE",
        pa.float32(): "FLOAT",
        pa.bool_(): "BOOLEAN",
    }
    return names.get(arrow_type, str(arrow_type).upper())


def _column_type(connection: Connection, schema: str, table: str, column: str) -> tuple[str, str, str]:
    """Return the stored (schema, table, column) spelling and its type, or raise when missing."""
    rows = connection.send(
        "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND lower(schema_name) = lower(?) "
        "AND lower(table_name) = lower(?)",
        [schema, table],
    ).fetchall()
    if not rows:
        raise ProgrammingError(f'relation "{table}" does not exist')
    for schema_name, table_name, column_name, data_type in rows:
        if column_name.lower() == column.lower():
            return (schema_name, table_name, column_name), data_type
    raise ProgrammingError(f'column "{column}" does not exist in table "{table}"')


def create_index(tree: exp.Expression):
    def run(connection: Connection, parameters: Any) -> None:
        name = tree.this if isinstance(tree.this, str) else tree.this.name
        table = tree.args["table"]
        column = tree.args["column"]
        names, data_type = _column_type(connection, table.db or "main", table.name, column)
        match = VECTOR_COLUMN_TYPE.match(data_type)
        if match is None:
            raise ProgrammingError(
                f'column "{column}" has type {data_type}, but a vector index needs FLOAT[n] or '
                f"DOUBLE[n]; change it with ALTER TABLE {table.name} ALTER {column} TYPE FLOAT[n]"
            )
        dims = int(match.group(2))
        spec = validate_index(tree.args["method"], tree.args.get("opclass"), dict(tree.args.get("options") or {}), dims)
        manager = connection.indexes
        if manager.get(name) is not None or _duckdb_index_exists(connection, name):
            if tree.args.get("exists"):
                log.warning('relation "%s" already exists, skipping', name)
                return None
            raise ProgrammingError(f'relation "{name}" already exists')
        definition = IndexDefinition(
            name=name.lower(),
            schema_name=names[0],
            table_name=names[1],
            column_name=names[2],
            method=spec.method,
            metric=spec.metric,
            opclass=spec.opclass,
            dims=dims,
            options=dict(spec.options),
            include=[_column_type(connection, names[0], names[1], c)[0][2] for c in tree.args.get("include") or []],
        )
        manager.create(definition)
        return None

    return run


def _duckdb_index_exists(connection: Connection, name: str) -> bool:
    rows = connection.send(
        "SELECT count(*) FROM duckdb_indexes() WHERE lower(index_name) = lower(?)", [name]
    ).fetchall()
    return rows[0][0] > 0


def drop_index(name: str):
    def run(connection: Connection, parameters: Any) -> None:
        connection.indexes.drop(name)

    return run


def drop_table(sql: str, tables: set[str]):
    """Run DROP TABLE in DuckDB, then forget the indexes of the dropped tables."""

    def run(connection: Connection, parameters: Any):
        connection.send(sql, parameters)
        for table in tables:
            if not _table_exists(connection, table):
                for index in connection.indexes.for_table(table):
                    connection.indexes.drop(index.name)
        return None

    return run


def replace_table(sql: str, tables: set[str]):
    """Run CREATE OR REPLACE TABLE; the new table starts without the old one's indexes."""

    def run(connection: Connection, parameters: Any):
        connection.send(sql, parameters)
        for table in tables:
            for index in connection.indexes.for_table(table):
                log.warning("index %s dropped: its table %s was replaced", index.name, table)
                connection.indexes.drop(index.name)
        return None

    return run


def _table_exists(connection: Connection, table: str) -> bool:
    rows = connection.send(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND lower(table_name) = lower(?)",
        [table],
    ).fetchall()
    return rows[0][0] > 0


def alter_table(sql: str, tree: exp.Alter):
    """Run ALTER TABLE in DuckDB and keep the index catalog in step with renames."""

    def run(connection: Connection, parameters: Any):
        connection.send(sql, parameters)
        table = tree.this.name
        indexes = connection.indexes.for_table(table)
        for action in tree.args.get("actions") or []:
            if isinstance(action, exp.AlterRename):
                for index in indexes:
                    index.definition.table_name = action.this.name
                    connection.indexes.save_definition(index)
            elif isinstance(action, exp.RenameColumn):
                old, new = action.this.name, action.args["to"].name
                for index in indexes:
                    if index.definition.column_name.lower() == old.lower():
                        index.definition.column_name = new
                        connection.indexes.save_definition(index)
        connection.indexes.revalidate()
        return None

    return run


def set_setting(tree: exp.Expression):
    def run(connection: Connection, parameters: Any) -> None:
        connection.settings.set(
            tree.args["name"],
            tree.args["value"],
            local=bool(tree.args.get("local")),
            in_transaction=connection.in_transaction,
        )

    return run


def reset_setting(tree: exp.Expression):
    def run(connection: Connection, parameters: Any) -> None:
        connection.settings.reset(tree.args.get("name"))

    return run


def show_setting(tree: exp.Expression):
    def run(connection: Connection, parameters: Any):
        name = tree.args["name"]
        return _result({name: pa.array([connection.settings.show(name)])})

    return run


def create_extension(connection: Connection, parameters: Any) -> None:
    """``CREATE EXTENSION vector``: vsql's functions exist already; install them if missing."""
    from udfs import sql_functions

    sql_functions.install_functions(connection.duckdb, temporary=connection.read_only)


def with_index_listing(sql: str):
    """Refresh the temporary table ``vsql_indexes`` before a statement that reads it."""

    def run(connection: Connection, parameters: Any):
        connection.indexes.refresh_listing()
        table = connection.query_arrow(sql, parameters)
        return _result(dict(zip(table.column_names, table.columns, strict=True)))

    return run


def explain_plan(inner: Plan, analyze: bool) -> Plan:
    """EXPLAIN: vsql's plan lines, then DuckDB's plan of the statement it runs (for an index-only
    scan, of its filter alone, or nothing)."""
    from planner.pipeline import Plan

    def run(connection: Connection, parameters: Any):
        lines = list(inner.notes) or ["No vector index applies: the statement runs unchanged in DuckDB"]
        if inner.index_only is not None and not inner.index_only.usable():
            # Rows without a vector exist: the statement runs in DuckDB (see IndexOnly).
            lines = [line.replace(" Index Only Scan ", " Index Scan ") for line in lines]
        lines += [connection.indexes.describe_filter(match, parameters) for match in inner.matches]
        index_only = inner.index_only is not None and inner.index_only.usable()
        if index_only:
            filter_sql = inner.index_only.prefetch.filter_sql
            lines.append(
                "DuckDB runs no statement: vsql builds the rows from the index"
                if filter_sql is None
                else "DuckDB runs only the filter, planned below; vsql builds the rows from the index"
            )
        keys = ["vsql_plan"] * len([line for line in lines if line])
        values = [line for line in lines if line]
        statement = None
        if index_only and filter_sql is not None:
            statement = (filter_sql.sql, filter_sql.bind(parameters))
        elif not index_only and inner.sql is not None:
            statement = connection.bind_plan(inner, parameters)
        if statement is not None:
            keyword = "EXPLAIN ANALYZE " if analyze else "EXPLAIN "
            rows = connection.send(keyword + statement[0], statement[1]).fetchall()
            keys += [row[0] for row in rows]
            values += [row[1] for row in rows]
        return _result({"explain_key": pa.array(keys, pa.string()), "explain_value": pa.array(values, pa.string())})

    return Plan(
        command=run,
        indexes=inner.indexes,
        notes=inner.notes,
        matches=inner.matches,
        prefetch=inner.prefetch,
        main=inner.main,
    )
