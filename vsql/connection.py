"""PEP 249 connection: one DuckDB connection plus vsql's settings, indexes and planner."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from vsql.cursor import Cursor
from vsql.errors import Error, InterfaceError, ProgrammingError, translate
from vsql.params import convert_parameters
from vsql.settings import Settings

log = logging.getLogger("vsql")


class Connection:
    """A database opened through vsql.

    DuckDB runs in autocommit mode, as in DuckDB's own Python API: each statement commits unless
    a transaction was opened with ``BEGIN`` (or :meth:`begin`), which :meth:`commit` and
    :meth:`rollback` then end.
    """

    def __init__(self, database: str = ":memory:", *, read_only: bool = False, config: dict | None = None) -> None:
        from planner.pipeline import Planner
        from udfs import sql_functions
        from vsql.index_manager import IndexManager

        database = os.fspath(database)
        config = dict(config or {})
        is_new_file = database not in (":memory:", "") and not os.path.exists(database)
        if is_new_file and not read_only:
            # New files are written in a format the DuckDB 1.5 CLI can open (see sql_functions).
            config.setdefault("storage_compatibility_version", sql_functions.DEFAULT_STORAGE_VERSION)
        try:
            self.duckdb = duckdb.connect(database, read_only=read_only, config=config)
        except duckdb.Error as error:
            raise translate(error) from error
        self.database = database
        self.read_only = read_only
        self.settings = Settings()
        self.in_transaction = False
        self._closed = False
        self._active: Cursor | None = None
        # Splitting a script costs about 0.2 ms of sqlglot tokenizing; queries repeat their text.
        self._split_cache: dict[str, list[str]] = {}
        # DuckDB's Python client draws a progress bar into stdout during long queries, which
        # corrupts piped results; vsql shows its own progress for index builds.
        self.send("SET enable_progress_bar = false")
        self._install_functions()
        self.indexes = IndexManager(self)
        self.planner = Planner(self)
        self.indexes.load()

    def _install_functions(self) -> None:
        from udfs import sql_functions

        try:
            installed = self.duckdb.execute(
                "SELECT comment FROM duckdb_functions() "
                "WHERE function_name = 'l2_distance' AND schema_name = 'main' LIMIT 1"
            ).fetchall()
            if installed and installed[0][0] == f"vsql {sql_functions.FUNCTIONS_VERSION}":
                return
            sql_functions.install_functions(self.duckdb, temporary=self.read_only)
        except duckdb.Error as error:
            raise translate(error) from error

    # -- statements ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise InterfaceError("connection is closed; open a new one with vsql.connect()")

    def _release(self, cursor: Cursor) -> None:
        if self._active is cursor:
            self._active = None

    def _claim(self, cursor: Cursor) -> None:
        """Give DuckDB's pending result to ``cursor``, saving the unread rows of the previous owner."""
        if self._active is not None and self._active is not cursor:
            self._active._materialize()
        self._active = cursor

    def send(self, sql: str, parameters: Any = None) -> duckdb.DuckDBPyConnection:
        """Run one SQL statement on DuckDB, logging it; DuckDB errors become vsql errors."""
        log.debug("duckdb: %s", sql)
        try:
            if parameters is None or (not parameters and not isinstance(parameters, dict)):
                return self.duckdb.execute(sql)
            return self.duckdb.execute(sql, parameters)
        except duckdb.Error as error:
            raise translate(error) from error

    def in_own_transaction(self, work) -> None:
        """Run ``work()`` in a transaction: the user's open one, or one of its own that commits."""
        if self.in_transaction:
            work()
            return
        self.send("BEGIN TRANSACTION")
        try:
            work()
        except BaseException:
            self.send("ROLLBACK")
            raise
        self.send("COMMIT")

    def query_arrow(self, sql: str, parameters: Any = None) -> pa.Table:
        """Run one query on DuckDB and return its result as Arrow, without the copy execute() makes."""
        log.debug("duckdb: %s", sql)
        try:
            return self.duckdb.sql(sql, params=parameters).to_arrow_table()
        except duckdb.Error as error:
            raise translate(error) from error

    def _run(self, cursor: Cursor, operation: str, parameters: Any) -> None:
        from planner.dialect import split_statements

        if not isinstance(operation, str):
            raise ProgrammingError(f"SQL must be a str, not {type(operation).__name__}")
        statements = self._split_cache.get(operation)
        if statements is None:
            statements = split_statements(operation)
            if len(self._split_cache) >= 512:
                self._split_cache.clear()
            self._split_cache[operation] = statements
        if not statements:
            raise ProgrammingError("no SQL statement to run: the text is empty or only comments")
        if len(statements) > 1 and parameters:
            raise ProgrammingError(
                f"parameters can be bound to one statement only, but the SQL has {len(statements)}; "
                "run the statements one at a time"
            )
        parameters = convert_parameters(parameters)
        for text in statements:
            self._run_statement(cursor, text, parameters)

    def _run_statement(self, cursor: Cursor, text: str, parameters: Any) -> None:
        self._claim(cursor)
        plan = self.planner.plan(text)
        if plan.command is None:
            loading = [index.name for index in plan.indexes if index.loading()]
            if loading:
                reason = f"index {loading[0]} is loading in the background"
                plan = self.planner.plan(text, exact_because=reason)
        try:
            for index in plan.indexes:
                index.sync()
            if plan.command is not None:
                result = plan.command(self, parameters)
                if result is None:
                    cursor._set_rows(
                        [("Success", "BOOLEAN", None, None, None, None, None)],
                        pa.table({"Success": pa.array([], pa.bool_())}),
                    )
                else:
                    cursor._set_rows(*result)
                self._release(cursor)
            else:
                covered = plan.index_only.run(self, parameters) if plan.index_only is not None else None
                if covered is not None:
                    cursor._set_python_rows(*covered)
                    self._release(cursor)
                else:
                    self.send(*self.bind_plan(plan, parameters))
                    cursor._set_live(self.duckdb.description, self.duckdb.rowcount)
        except Error:
            if plan.transaction in ("commit", "rollback"):
                self._end_transaction()
            raise
        finally:
            self.indexes.after_statement(plan.written_tables)
        if plan.transaction == "begin":
            self.in_transaction = True
        elif plan.transaction in ("commit", "rollback"):
            self._end_transaction(rolled_back=plan.transaction == "rollback")

    def bind_plan(self, plan, parameters: Any) -> tuple[str, Any]:
        """Return the SQL of a plan and its parameters, running the plan's index searches first."""
        if not plan.prefetch:
            return plan.sql, parameters
        computed: dict[str, Any] = {}
        for prefetch in plan.prefetch:
            computed.update(prefetch.run(self, parameters))
        return plan.main.sql, plan.main.bind(parameters, computed)

    def _end_transaction(self, rolled_back: bool = True) -> None:
        self.in_transaction = False
        self.settings.end_transaction()
        # Rows appended in a transaction get their final rowids at commit, and a rollback
        # removes them, so the indexes check the table again before their next use.
        self.indexes.after_transaction(rolled_back)

    def _run_many(self, cursor: Cursor, operation: str, seq_of_parameters: Sequence[Any]) -> None:
        """Run one statement once per parameter set, all in one transaction: all rows or none."""
        own_transaction = not self.in_transaction
        if own_transaction:
            self.begin()
        try:
            for parameters in seq_of_parameters:
                self._run(cursor, operation, parameters)
        except BaseException:
            if own_transaction:
                self.rollback()
            raise
        if own_transaction:
            self.commit()
        cursor.rowcount = -1

    # -- PEP 249 ---------------------------------------------------------------------------

    def cursor(self) -> Cursor:
        self._check_open()
        return Cursor(self)

    def execute(self, operation: str, parameters: Sequence[Any] | dict | None = None) -> Cursor:
        """Run a statement on a new cursor and return it (a shortcut, as in sqlite3 and DuckDB)."""
        return self.cursor().execute(operation, parameters)

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> Cursor:
        return self.cursor().executemany(operation, seq_of_parameters)

    def begin(self) -> None:
        self.cursor().execute("BEGIN TRANSACTION")

    def commit(self) -> None:
        self._check_open()
        if self.in_transaction:
            self.cursor().execute("COMMIT")

    def rollback(self) -> None:
        self._check_open()
        if self.in_transaction:
            self.cursor().execute("ROLLBACK")

    def close(self) -> None:
        if self._closed:
            return
        try:
            if self.in_transaction:
                self.rollback()
            self.indexes.close()
        finally:
            self._closed = True
            self.duckdb.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()
        self.close()

    # PEP 249 optional extension: the exception classes as connection attributes.
    from vsql.errors import (  # noqa: E402
        DatabaseError,
        DataError,
        Error,
        IntegrityError,
        InterfaceError,
        InternalError,
        NotSupportedError,
        OperationalError,
        ProgrammingError,
        Warning,
    )
