"""PEP 249 cursor over one statement's result, with Arrow and pandas fetches."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from vsql.errors import InterfaceError, NotSupportedError

if TYPE_CHECKING:
    from vsql.connection import Connection


class _Rows:
    """A result held in Python: produced by vsql itself, or materialized from DuckDB.

    A result may come as Python rows with a function that makes their Arrow table, which then
    runs only when an Arrow fetch asks for it (index-only scans answer in tuples).
    """

    def __init__(
        self, description: list[tuple], table: pa.Table | None, rows: list[tuple] | None = None, make_table=None
    ) -> None:
        self.description = description
        self._table = table
        self._make_table = make_table
        self.position = 0
        self._rows: list[tuple] | None = rows

    @property
    def table(self) -> pa.Table:
        if self._table is None:
            self._table = self._make_table()
        return self._table

    def _all_rows(self) -> list[tuple]:
        if self._rows is None:
            columns = [column.to_pylist() for column in self.table.columns]
            self._rows = list(zip(*columns, strict=True)) if columns else []
        return self._rows

    def fetch(self, size: int | None) -> list[tuple]:
        rows = self._all_rows()
        end = len(rows) if size is None else min(len(rows), self.position + size)
        chunk = rows[self.position : end]
        self.position = end
        return chunk

    def remaining_table(self) -> pa.Table:
        table = self.table.slice(self.position)
        self.position = self.table.num_rows
        return table


class Cursor:
    """A PEP 249 cursor. All cursors of a connection share its DuckDB connection and transaction.

    DuckDB holds one pending result per connection, so when another cursor of the same connection
    runs a statement, this cursor's unread rows are first copied into memory as an Arrow table.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._closed = False
        self._live = False  # True while DuckDB's pending result belongs to this cursor
        self._rows: _Rows | None = None
        self._description: list[tuple] | None = None
        self.rowcount = -1
        self.arraysize = 1

    # -- state -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise InterfaceError("cursor is closed; open a new one with connection.cursor()")
        self._connection._check_open()

    def _check_result(self) -> None:
        self._check_open()
        if not self._live and self._rows is None:
            raise InterfaceError("no result to fetch: execute a statement that returns rows first")

    def _reset(self) -> None:
        if self._live:
            self._connection._release(self)
        self._live = False
        self._rows = None
        self._description = None
        self.rowcount = -1

    def _set_live(self, description: list[tuple] | None, rowcount: int) -> None:
        self._live = True
        self._description = description
        self.rowcount = rowcount

    def _set_rows(self, description: list[tuple], table: pa.Table) -> None:
        self._rows = _Rows(description, table)
        self._description = description
        self.rowcount = -1

    def _set_python_rows(self, description: list[tuple], rows: list[tuple], make_table) -> None:
        self._rows = _Rows(description, None, rows, make_table)
        self._description = description
        self.rowcount = -1

    def _materialize(self) -> None:
        """Copy the unread rows of DuckDB's pending result into memory (see the class docstring)."""
        if self._live:
            self._live = False
            try:
                table = _pending_arrow(self._connection.duckdb)
            except duckdb.InvalidInputException:
                table = None  # the statement had no result set, or it was read to the end
            if table is not None:
                self._rows = _Rows(self._description or [], table)

    # -- PEP 249 ---------------------------------------------------------------------------

    @property
    def connection(self) -> Connection:
        return self._connection

    @property
    def description(self) -> list[tuple] | None:
        return self._description

    def execute(self, operation: str, parameters: Sequence[Any] | dict | None = None) -> Cursor:
        self._check_open()
        self._reset()
        self._connection._run(self, operation, parameters)
        return self

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> Cursor:
        self._check_open()
        self._reset()
        self._connection._run_many(self, operation, seq_of_parameters)
        return self

    def fetchone(self) -> tuple | None:
        self._check_result()
        if self._live:
            return self._connection.duckdb.fetchone()
        rows = self._rows.fetch(1)  # type: ignore[union-attr]
        return rows[0] if rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        self._check_result()
        size = self.arraysize if size is None else size
        if self._live:
            return self._connection.duckdb.fetchmany(size)
        return self._rows.fetch(size)  # type: ignore[union-attr]

    def fetchall(self) -> list[tuple]:
        self._check_result()
        if self._live:
            return self._connection.duckdb.fetchall()
        return self._rows.fetch(None)  # type: ignore[union-attr]

    def __iter__(self) -> Iterator[tuple]:
        while True:
            rows = self.fetchmany(1024)
            if not rows:
                return
            yield from rows

    def setinputsizes(self, sizes: Any) -> None:
        """Accepted and ignored, as PEP 249 allows."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """Accepted and ignored, as PEP 249 allows."""

    def close(self) -> None:
        if not self._closed:
            self._reset()
            self._closed = True

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- Arrow and pandas ------------------------------------------------------------------

    def fetch_arrow_table(self) -> pa.Table:
        """Return the unread rows as an Arrow table; DuckDB's result is handed over without a row copy."""
        self._check_result()
        if self._live:
            return _pending_arrow(self._connection.duckdb)
        return self._rows.remaining_table()  # type: ignore[union-attr]

    def fetch_record_batch(self, rows_per_batch: int = 1_000_000) -> pa.RecordBatchReader:
        """Return a reader that streams the unread rows in Arrow record batches."""
        self._check_result()
        if self._live:
            return _pending_arrow(self._connection.duckdb, rows_per_batch)
        table = self._rows.remaining_table()  # type: ignore[union-attr]
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(rows_per_batch))

    def fetchdf(self) -> Any:
        """Return the unread rows as a pandas DataFrame (needs pandas)."""
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise NotSupportedError("fetchdf() needs pandas; install it with: pip install pandas") from None
        return self.fetch_arrow_table().to_pandas()

    fetch_df = fetchdf


def _pending_arrow(con: duckdb.DuckDBPyConnection, rows_per_batch: int | None = None):
    """Return DuckDB's pending result as an Arrow table, or as a reader when ``rows_per_batch`` is set.

    NOTE: DuckDB 2.0 copies the rows once when a result of ``execute()`` is turned into Arrow (it
    warns about it); only its relation API hands Arrow over without that copy, and relations run
    lazily, which PEP 249's ``execute`` cannot.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)
        if rows_per_batch is None:
            return con.to_arrow_table()
        return con.to_arrow_reader(rows_per_batch)
