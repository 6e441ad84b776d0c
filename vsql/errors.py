"""PEP 249 exception hierarchy rooted in ``vsql.Error``, and the mapping of DuckDB's errors into it.

DuckDB's own messages are kept, except where pgvector has a wording for the same failure: those
are rewritten so that scripts and users moving from PostgreSQL see the message they know.
"""

from __future__ import annotations

import re

import duckdb


class Warning(Exception):  # noqa: A001 - the name is fixed by PEP 249
    """Important warnings such as data truncation."""


class Error(Exception):
    """Root of every error vsql raises."""


class InterfaceError(Error):
    """Misuse of the DB-API interface itself, such as a cursor used after close()."""


class DatabaseError(Error):
    """Errors reported by the database."""


class DataError(DatabaseError):
    """Invalid values: bad vector text, wrong dimensions, NaN or infinite elements."""


class OperationalError(DatabaseError):
    """Failures of the database's operation: I/O, out of memory, a locked file."""


class IntegrityError(DatabaseError):
    """Constraint violations."""


class InternalError(DatabaseError):
    """The database or vsql reached a state it should never reach."""


class ProgrammingError(DatabaseError):
    """Errors in the SQL text or its use: syntax, unknown names, bad options."""


class NotSupportedError(DatabaseError):
    """A method or SQL feature that vsql or DuckDB does not support."""


# Most specific DuckDB class first: several derive from one another.
_DUCKDB_TO_VSQL: list[tuple[type[BaseException], type[Error]]] = [
    (duckdb.ConstraintException, IntegrityError),
    (duckdb.ConversionException, DataError),
    (duckdb.OutOfRangeException, DataError),
    (duckdb.InvalidInputException, DataError),
    (duckdb.TypeMismatchException, DataError),
    (duckdb.ParserException, ProgrammingError),
    (duckdb.SyntaxException, ProgrammingError),
    (duckdb.BinderException, ProgrammingError),
    (duckdb.CatalogException, ProgrammingError),
    (duckdb.InvalidTypeException, ProgrammingError),
    (duckdb.NotImplementedException, NotSupportedError),
    (duckdb.TransactionException, OperationalError),
    (duckdb.IOException, OperationalError),
    (duckdb.OutOfMemoryException, OperationalError),
    (duckdb.ConnectionException, OperationalError),
    (duckdb.InterruptException, OperationalError),
    (duckdb.InternalException, InternalError),
    (duckdb.IntegrityError, IntegrityError),
    (duckdb.DataError, DataError),
    (duckdb.ProgrammingError, ProgrammingError),
    (duckdb.NotSupportedError, NotSupportedError),
    (duckdb.OperationalError, OperationalError),
    (duckdb.InternalError, InternalError),
    (duckdb.Error, DatabaseError),
]

# DuckDB wordings that pgvector words differently, rewritten to pgvector's text.
_PGVECTOR_WORDINGS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"[Cc]annot cast list with length (\d+) to array with length (\d+)"),
        "expected {1} dimensions, not {0}",
    ),
    (
        re.compile(r"array_\w+: [Aa]rray arguments must be of the same size.*"),
        "different vector dimensions",
    ),
    (
        re.compile(r"list_\w+: list dimensions must be equal, got left length '?(\d+)'? and right length '?(\d+)'?"),
        "different vector dimensions {0} and {1}",
    ),
    (re.compile(r"(different vector dimensions \d+ and \d+)"), "{0}"),
    (re.compile(r"(different bit lengths \d+ and \d+)"), "{0}"),
    (
        re.compile(r"Unknown index type: (\w+)"),
        'access method "{0}" does not exist; valid methods are hnsw, ivfflat, ivfpq and DuckDB\'s art',
    ),
]


# DuckDB reports a vector literal of the wrong length by quoting it whole.
_LITERAL_LENGTH = re.compile(r"value '\[([^']*)\]' can't be cast to the destination type (?:FLOAT|DOUBLE)\[(\d+)\]")


def _pgvector_message(message: str) -> str:
    literal = _LITERAL_LENGTH.search(message)
    if literal:
        elements = [item for item in literal.group(1).split(",") if item.strip()]
        return f"expected {literal.group(2)} dimensions, not {len(elements)}"
    for pattern, template in _PGVECTOR_WORDINGS:
        match = pattern.search(message)
        if match:
            return template.format(*match.groups())
    return message


def translate(error: duckdb.Error) -> Error:
    """Return the vsql exception for a DuckDB exception, with pgvector's wording where it has one."""
    message = _pgvector_message(str(error))
    for duckdb_class, vsql_class in _DUCKDB_TO_VSQL:
        if isinstance(error, duckdb_class):
            return vsql_class(message)
    return DatabaseError(message)
