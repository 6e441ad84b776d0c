"""The vsql catalog: index definitions and stored index arrays, kept in the database file.

Everything lives in the schema ``vsql`` so that it travels with the file and stays out of the
user's ``main`` schema:

- ``vsql.meta(key, value)``: the version of the SQL functions installed in ``main``.
- ``vsql.indexes``: one row per index (name, table, column, method, metric, options, dims).
- ``vsql.index_data``: the index arrays as BLOB chunks, written by :mod:`vsql.persistence`.
- ``vsql.index_rows``: the same for each index's copy of its rows, kept apart because it is large.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vsql.connection import Connection

SCHEMA = "vsql"

CATALOG_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.meta (key VARCHAR, value VARCHAR)",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.indexes (
        name VARCHAR, schema_name VARCHAR, table_name VARCHAR, column_name VARCHAR,
        method VARCHAR, metric VARCHAR, opclass VARCHAR, options VARCHAR, dims INTEGER)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.index_data (
        index_name VARCHAR, array_name VARCHAR, part INTEGER,
        dtype VARCHAR, shape VARCHAR, data BLOB)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.index_rows (
        index_name VARCHAR, array_name VARCHAR, part INTEGER,
        dtype VARCHAR, shape VARCHAR, data BLOB)""",
)


@dataclass
class IndexDefinition:
    """Definition of one index from ``CREATE INDEX``, as stored in ``vsql.indexes``."""

    name: str
    schema_name: str
    table_name: str
    column_name: str
    method: str
    metric: str
    opclass: str | None
    dims: int
    options: dict = field(default_factory=dict)
    include: list[str] = field(default_factory=list)  # columns the index keeps a copy of

    @property
    def qualified_table(self) -> str:
        return f"{quote_identifier(self.schema_name)}.{quote_identifier(self.table_name)}"

    @property
    def quoted_column(self) -> str:
        return quote_identifier(self.column_name)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def catalog_exists(connection: Connection) -> bool:
    return _table_exists(connection, "indexes")


def _table_exists(connection: Connection, table_name: str) -> bool:
    rows = connection.send(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? "
        "AND database_name = current_database()",
        [SCHEMA, table_name],
    ).fetchall()
    return rows[0][0] > 0


def ensure_catalog(connection: Connection) -> None:
    for statement in CATALOG_DDL:
        connection.send(statement)


def read_definitions(connection: Connection) -> list[IndexDefinition]:
    if not catalog_exists(connection):
        return []
    rows = connection.send(
        f"SELECT name, schema_name, table_name, column_name, method, metric, opclass, dims, options "
        f"FROM {SCHEMA}.indexes ORDER BY name"
    ).fetchall()
    definitions = []
    for row in rows:
        # INCLUDE columns ride in the options JSON, so files keep one catalog layout.
        options = json.loads(row[8] or "{}")
        include = options.pop("include", [])
        definitions.append(IndexDefinition(*row[:8], options=options, include=include))
    return definitions


def write_definition(connection: Connection, definition: IndexDefinition) -> None:
    connection.send(f"DELETE FROM {SCHEMA}.indexes WHERE name = ?", [definition.name])
    connection.send(
        f"INSERT INTO {SCHEMA}.indexes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            definition.name,
            definition.schema_name,
            definition.table_name,
            definition.column_name,
            definition.method,
            definition.metric,
            definition.opclass,
            json.dumps(
                {**definition.options, "include": definition.include} if definition.include else definition.options,
                sort_keys=True,
            ),
            definition.dims,
        ],
    )


def delete_definition(connection: Connection, name: str) -> None:
    connection.send(f"DELETE FROM {SCHEMA}.indexes WHERE name = ?", [name])
    connection.send(f"DELETE FROM {SCHEMA}.index_data WHERE index_name = ?", [name])
    if _table_exists(connection, "index_rows"):
        connection.send(f"DELETE FROM {SCHEMA}.index_rows WHERE index_name = ?", [name])


def read_meta(connection: Connection, key: str) -> str | None:
    if not catalog_exists(connection):
        return None
    rows = connection.send(f"SELECT value FROM {SCHEMA}.meta WHERE key = ?", [key]).fetchall()
    return rows[0][0] if rows else None


def write_meta(connection: Connection, key: str, value: str) -> None:
    connection.send(f"DELETE FROM {SCHEMA}.meta WHERE key = ?", [key])
    connection.send(f"INSERT INTO {SCHEMA}.meta VALUES (?, ?)", [key, value])
