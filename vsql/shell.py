"""The ``vsql`` command-line shell, modelled on the DuckDB CLI.

    vsql [FILE] [-c SQL]... [-csv|-json|-markdown|-box|-line|-list|-duckbox]
         [-init FILE] [-readonly] [-echo] [-bail] [--version] [--help]

With ``-c`` the shell runs each command in order and stops at the first error (exit status 1).
Without it, the shell reads SQL and dot commands from standard input, or runs an interactive
prompt with readline history when standard input is a terminal. The shell reaches the database
only through vsql's PEP 249 API, and prints results in batches so that any result size streams
through in bounded memory.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, TextIO

import vsql
from vsql.shell_format import WRITERS, describe_columns
from vsql.shell_script import first_keyword, statement_complete

if TYPE_CHECKING:
    from vsql.connection import Connection
    from vsql.cursor import Cursor

log = logging.getLogger("vsql.shell")

# Rows fetched from the cursor per batch: large enough to amortize each call, small enough that a
# batch of wide vector rows stays a few megabytes.
BATCH_ROWS = 2048
DEFAULT_MAX_ROWS = 40
PROMPT = "vsql> "
CONTINUATION_PROMPT = "   ...> "
HISTORY_LENGTH = 10_000

# First keywords of statements whose one-column 'Count' or 'Success' result is a query result.
# From any other statement that column only reports what DDL or DML did, so the shell prints
# nothing for it, as DuckDB 1.5.6's CLI does.
_QUERY_KEYWORDS = {
    "SELECT",
    "WITH",
    "FROM",
    "VALUES",
    "TABLE",
    "SHOW",
    "DESCRIBE",
    "DESC",
    "SUMMARIZE",
    "EXPLAIN",
    "PRAGMA",
    "CALL",
    "(",
}
_STATUS_COLUMNS = {"Count", "Success"}
_EXPLAIN_COLUMNS = ["explain_key", "explain_value"]

USAGE = """\
usage: vsql [FILE] [OPTIONS]

Run SQL on a DuckDB database file through vsql (FILE; default: a new in-memory database).

options:
  -c SQL         run SQL or a dot command, then exit; may be given several times
  -csv           print results as CSV
  -json          print results as a JSON array of objects
  -markdown      print results as a Markdown table
  -box           print results as a box table without types
  -duckbox       print results as a box table with types (the default)
  -line          print one "column = value" line per value
  -list          print values separated by "|"
  -init FILE     run the SQL and dot commands in FILE first
  -readonly      open the database read-only
  -echo          print each statement before running it
  -bail          stop at the first error when reading standard input
  --version      print the vsql and DuckDB versions and exit
  --help         print this help and exit

Without -c, SQL is read from standard input; on a terminal the shell is interactive
(history in $VSQL_HISTORY, default ~/.vsql_history). Type .help there for the dot commands.
"""


class UsageError(Exception):
    """Invalid command-line arguments."""


class CommandError(Exception):
    """A dot command that failed; the message is printed after ``Error: ``."""


class QuitShell(Exception):
    """Raised by ``.quit`` and ``.exit`` to leave the shell with ``code``."""

    def __init__(self, code: int = 0) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Options:
    """The parsed command line."""

    database: str = ":memory:"
    commands: list[str] = field(default_factory=list)
    mode: str = "duckbox"
    init_file: str | None = None
    read_only: bool = False
    echo: bool = False
    bail: bool = False
    show_version: bool = False
    show_help: bool = False


_MODE_FLAGS = {f"-{mode}" for mode in WRITERS}


def parse_arguments(argv: list[str]) -> Options:
    """Parse the command line the way the DuckDB CLI does: single-dash words, ``-c`` repeated."""
    options = Options()
    database_given = False
    arguments = iter(argv)
    for argument in arguments:
        if argument in ("-c", "-init"):
            value = next(arguments, None)
            if value is None:
                raise UsageError(f"option {argument} needs a value")
            if argument == "-c":
                options.commands.append(value)
            else:
                options.init_file = value
        elif argument in _MODE_FLAGS:
            options.mode = argument[1:]
        elif argument == "-readonly":
            options.read_only = True
        elif argument == "-echo":
            options.echo = True
        elif argument == "-bail":
            options.bail = True
        elif argument in ("--version", "-version"):
            options.show_version = True
        elif argument in ("--help", "-help", "-h"):
            options.show_help = True
        elif argument.startswith("-") and argument != "-":
            raise UsageError(f"unknown option {argument}; use --help for the list of options")
        elif database_given:
            raise UsageError(f"only one database file can be given, not also {argument}")
        else:
            options.database = argument
            database_given = True
    return options


def version_text() -> str:
    import duckdb

    return f"vsql {vsql.__version__} (DuckDB {duckdb.__version__})"


class Command(NamedTuple):
    """A dot command: its handler, its argument synopsis and a one-line summary for ``.help``."""

    handler: Callable[[Shell, list[str]], None]
    arguments: str
    summary: str


def _on_off(name: str, arguments: list[str]) -> bool:
    if len(arguments) != 1 or arguments[0].lower() not in ("on", "off"):
        raise CommandError(f"usage: .{name} on|off")
    return arguments[0].lower() == "on"


def _one_integer(name: str, arguments: list[str], minimum: int) -> int:
    try:
        [value] = arguments
        number = int(value)
    except ValueError:
        raise CommandError(f"usage: .{name} N, with N a whole number >= {minimum}") from None
    if number < minimum:
        raise CommandError(f".{name} must be at least {minimum}, not {number}")
    return number


class Shell:
    """One shell session: a connection, the output settings and the dot commands."""

    def __init__(self, options: Options, stdout: TextIO, stderr: TextIO) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.out: TextIO = stdout
        self.output_file: TextIO | None = None
        self.once_pending = False  # .once: restore self.out after the next SQL text
        self.mode = options.mode
        self.echo = options.echo
        self.bail = options.bail
        self.timer = False
        self.max_rows = DEFAULT_MAX_ROWS
        self.max_width = 0  # 0: the terminal's width when printing to a terminal, else unlimited
        self.read_only = options.read_only
        self.database = options.database
        self.connection: Connection | None = None
        self.interactive = False  # reading from a terminal: see `main`

    # -- connection ------------------------------------------------------------------------

    def open(self, database: str) -> None:
        """Open ``database`` (closing the current one only once the new one is open)."""
        # DuckDB's progress bar writes to standard output, where it would corrupt results that
        # go to a pipe or a file, so it stays on only when the shell is interactive.
        connection = vsql.connect(database, read_only=self.read_only)
        if not self.interactive:
            try:
                connection.execute("SET enable_progress_bar = false").close()
            except vsql.Error:
                connection.close()
                raise
        self.close()
        self.connection = connection
        self.database = database

    def close(self) -> None:
        if self.connection is not None:
            connection, self.connection = self.connection, None
            connection.close()

    # -- errors and output ------------------------------------------------------------------

    def report(self, message: str) -> None:
        """Print an error as one line on standard error."""
        lines = [line.strip() for line in str(message).splitlines() if line.strip()]
        self.stderr.write(f"Error: {lines[0] if lines else message}\n")
        self.stderr.flush()

    def _report_exception(self, error: BaseException) -> None:
        if isinstance(error, (vsql.Error, CommandError)):
            self.report(str(error))
        elif isinstance(error, OSError):
            self.report(
                f"{error.strerror or error}: {error.filename}" if error.filename else str(error)
            )
        else:
            # A bug in vsql: the shell goes on, and the traceback goes to the debug log.
            log.debug("unexpected error", exc_info=error)
            self.report(f"internal error: {type(error).__name__}: {error}")

    def _box_width(self) -> int | None:
        if self.max_width > 0:
            return self.max_width
        isatty = getattr(self.out, "isatty", None)
        if isatty is not None and isatty():
            return shutil.get_terminal_size().columns
        return None

    def _set_output(self, path: str | None, once: bool) -> None:
        self._close_output()
        if path is not None:
            self.output_file = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            self.out = self.output_file
        self.once_pending = once

    def _close_output(self) -> None:
        if self.output_file is not None:
            self.output_file.close()
            self.output_file = None
        self.out = self.stdout
        self.once_pending = False

    # -- SQL --------------------------------------------------------------------------------

    def run_sql(self, text: str) -> bool:
        """Run every statement in ``text``, printing each result; False after the first error."""
        from planner.dialect import split_statements

        try:
            try:
                statements = split_statements(text)
            except vsql.Error as error:
                self.report(str(error))
                return False
            for statement in statements:
                if self.echo:
                    self.stdout.write(statement + "\n")
                try:
                    self._run_statement(statement)
                except KeyboardInterrupt:
                    self.report("interrupted")
                    return False
                except BrokenPipeError:
                    raise  # the reader of the output is gone (`vsql ... | head`): stop quietly
                except Exception as error:  # noqa: BLE001 - the shell reports and goes on
                    self._report_exception(error)
                    return False
            return True
        finally:
            if self.once_pending:
                self._close_output()

    def _run_statement(self, statement: str) -> None:
        if self.connection is None:
            raise CommandError("no database is open; use .open FILE")
        started = time.perf_counter()
        times_before = os.times()
        cursor = self.connection.cursor()
        try:
            cursor.execute(statement)
            self._write_result(cursor, statement)
        finally:
            cursor.close()
        if self.timer:
            times_after = os.times()
            real = time.perf_counter() - started
            user = times_after.user - times_before.user
            system = times_after.system - times_before.system
            self.stdout.write(f"Run Time (s): real {real:.3f} user {user:.6f} sys {system:.6f}\n")

    @staticmethod
    def _has_rows(description: list[tuple] | None, statement: str) -> bool:
        if not description:
            return False
        if len(description) == 1 and description[0][0] in _STATUS_COLUMNS:
            return first_keyword(statement) in _QUERY_KEYWORDS
        return True

    def _write_result(self, cursor: Cursor, statement: str) -> None:
        description = cursor.description
        if not self._has_rows(description, statement):
            return
        if self.mode in ("duckbox", "box") and [d[0] for d in description] == _EXPLAIN_COLUMNS:
            # A plan is drawn text already: print it as it is, as DuckDB's CLI does.
            for _, text in cursor.fetchall():
                self.out.write(str(text).rstrip("\n") + "\n")
            self.out.flush()
            return
        writer = WRITERS[self.mode](self.out, max_rows=self.max_rows, max_width=self._box_width())
        writer.begin(describe_columns(description))
        while True:
            rows = cursor.fetchmany(BATCH_ROWS)
            if not rows:
                break
            writer.write_rows(rows)
        writer.end()
        self.out.flush()

    # -- scripts and dot commands -----------------------------------------------------------

    def run_command(self, line: str) -> bool:
        """Run one dot command line such as ``.mode csv``; False when it failed."""
        try:
            words = shlex.split(line[1:])
        except ValueError as error:
            self.report(f"invalid dot command {line!r}: {error}")
            return False
        if not words:
            self.report('missing command name after "."; use .help for the list')
            return False
        name, arguments = words[0], words[1:]
        command = COMMANDS.get(name)
        if command is None:
            self.report(f'unknown command ".{name}"; use .help for the list')
            return False
        try:
            command.handler(self, arguments)
        except (QuitShell, BrokenPipeError):
            raise
        except _AlreadyReported:
            return False
        except Exception as error:  # noqa: BLE001 - the shell reports and goes on
            self._report_exception(error)
            return False
        return True

    def run_text(self, text: str) -> bool:
        """Run one ``-c`` argument: a dot command when it starts with ``.``, else SQL."""
        if text.lstrip().startswith("."):
            return self.run_command(text.strip())
        return self.run_sql(text)

    def run_script(self, lines: Iterable[str]) -> bool:
        """Run SQL and dot commands line by line, as from a file or a pipe; False after errors.

        A line starting with ``.`` outside a statement is a dot command. SQL lines collect until
        the text ends with ``;``; text left at the end runs as it is. Errors are reported and the
        script goes on, unless ``-bail`` (or ``.bail on``) is set.
        """
        succeeded = True
        buffer: list[str] = []
        for line in lines:
            line = line.rstrip("\r\n")
            if not buffer and line.lstrip().startswith("."):
                ok = self.run_command(line.strip())
            else:
                buffer.append(line)
                text = "\n".join(buffer)
                if not statement_complete(text):
                    continue
                buffer = []
                ok = self.run_sql(text)
            if not ok:
                succeeded = False
                if self.bail:
                    return False
        rest = "\n".join(buffer)
        if rest.strip() and not self.run_sql(rest):
            succeeded = False
        return succeeded

    def run_file(self, path: str) -> bool:
        try:
            with open(path, encoding="utf-8") as script:
                return self.run_script(script)
        except OSError as error:
            self._report_exception(error)
            return False

    # -- interactive prompt -----------------------------------------------------------------

    def repl(self) -> int:
        """Read statements from the terminal until ``.quit`` or end of input (Ctrl-D)."""
        history = _History()
        self.stdout.write(f'{version_text()}\nEnter ".help" for usage hints.\n')
        if self.database in (":memory:", ""):
            self.stdout.write(
                "Connected to a transient in-memory database.\n"
                'Use ".open FILENAME" to reopen on a persistent database.\n'
            )
        self.stdout.flush()
        buffer: list[str] = []
        try:
            while True:
                try:
                    line = input(CONTINUATION_PROMPT if buffer else PROMPT)
                except EOFError:
                    self.stdout.write("\n")
                    break
                except KeyboardInterrupt:
                    # Ctrl-C drops the statement being typed, as in DuckDB.
                    self.stdout.write("\n")
                    buffer = []
                    continue
                if not buffer and line.lstrip().startswith("."):
                    self.run_command(line.strip())
                    continue
                buffer.append(line)
                text = "\n".join(buffer)
                if statement_complete(text):
                    buffer = []
                    self.run_sql(text)
        except QuitShell as request:
            return request.code
        finally:
            history.save()
        return 0

    # -- dot commands -----------------------------------------------------------------------

    def command_bail(self, arguments: list[str]) -> None:
        self.bail = _on_off("bail", arguments)

    def command_echo(self, arguments: list[str]) -> None:
        self.echo = _on_off("echo", arguments)

    def command_exit(self, arguments: list[str]) -> None:
        code = _one_integer("exit", arguments, 0) if arguments else 0
        raise QuitShell(code)

    def command_quit(self, arguments: list[str]) -> None:
        raise QuitShell(0)

    def command_help(self, arguments: list[str]) -> None:
        width = max(len(name) + len(command.arguments) for name, command in COMMANDS.items()) + 3
        for name, command in sorted(COMMANDS.items()):
            synopsis = f".{name} {command.arguments}".rstrip()
            self.stdout.write(f"{synopsis:<{width}} {command.summary}\n")

    def command_indexes(self, arguments: list[str]) -> None:
        sql = "SELECT * FROM vsql_indexes"
        if len(arguments) > 1:
            raise CommandError("usage: .indexes [TABLE]")
        if arguments:
            sql += f" WHERE table_name = {_sql_string(arguments[0])}"
        if not self.run_sql(sql + " ORDER BY table_name, index_name"):
            raise _AlreadyReported

    def command_maxrows(self, arguments: list[str]) -> None:
        self.max_rows = _one_integer("maxrows", arguments, 1)

    def command_maxwidth(self, arguments: list[str]) -> None:
        self.max_width = _one_integer("maxwidth", arguments, 0)

    def command_mode(self, arguments: list[str]) -> None:
        modes = ", ".join(sorted(WRITERS))
        if len(arguments) != 1:
            raise CommandError(f"usage: .mode MODE, with MODE one of: {modes}")
        if arguments[0] not in WRITERS:
            raise CommandError(f'unknown mode "{arguments[0]}"; use one of: {modes}')
        self.mode = arguments[0]

    def command_once(self, arguments: list[str]) -> None:
        if len(arguments) != 1:
            raise CommandError("usage: .once FILE")
        self._set_output(arguments[0], once=True)

    def command_open(self, arguments: list[str]) -> None:
        if len(arguments) > 1:
            raise CommandError("usage: .open [FILE]")
        self.open(arguments[0] if arguments else ":memory:")

    def command_output(self, arguments: list[str]) -> None:
        if len(arguments) > 1:
            raise CommandError("usage: .output [FILE]")
        self._set_output(arguments[0] if arguments else None, once=False)

    def command_read(self, arguments: list[str]) -> None:
        if len(arguments) != 1:
            raise CommandError("usage: .read FILE")
        if not self.run_file(arguments[0]):
            raise _AlreadyReported

    def command_schema(self, arguments: list[str]) -> None:
        if len(arguments) > 1:
            raise CommandError("usage: .schema [TABLE]")
        condition = ""
        if arguments:
            condition = f" AND name = {_sql_string(arguments[0])}"
        rows = self._query(_SCHEMA_SQL.format(condition=condition))
        for (sql,) in rows:
            sql = sql.strip()
            self.out.write(sql + ("" if sql.endswith(";") else ";") + "\n")
        self.out.flush()

    def command_tables(self, arguments: list[str]) -> None:
        if len(arguments) > 1:
            raise CommandError("usage: .tables [PATTERN]")
        condition = ""
        if arguments:
            condition = f" AND name ILIKE {_sql_string(arguments[0])}"
        names = [name for (name,) in self._query(_TABLES_SQL.format(condition=condition))]
        self.out.write(_columns_layout(names, self._box_width() or 80))
        self.out.flush()

    def command_timer(self, arguments: list[str]) -> None:
        self.timer = _on_off("timer", arguments)

    def _query(self, sql: str) -> list[tuple]:
        """Run a catalog query for a dot command and return all its rows (catalogs are small)."""
        if self.connection is None:
            raise CommandError("no database is open; use .open FILE")
        cursor = self.connection.cursor()
        try:
            return cursor.execute(sql).fetchall()
        finally:
            cursor.close()


class _AlreadyReported(CommandError):
    """A dot command whose SQL failed and was reported already."""


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# User tables and views, leaving out vsql's catalog (schema "vsql") and the index listing.
_USER_OBJECTS = """
    SELECT schema_name, table_name AS name, sql, 0 AS is_view FROM duckdb_tables()
    WHERE NOT internal AND schema_name <> 'vsql' AND table_name <> 'vsql_indexes'
    UNION ALL
    SELECT schema_name, view_name AS name, sql, 1 AS is_view FROM duckdb_views()
    WHERE NOT internal AND schema_name <> 'vsql'
"""
_TABLES_SQL = (
    "SELECT CASE WHEN schema_name = 'main' THEN name ELSE schema_name || '.' || name END "
    "FROM (" + _USER_OBJECTS + ") WHERE true{condition} ORDER BY 1"
)
_SCHEMA_SQL = (
    "SELECT sql FROM (" + _USER_OBJECTS + ") WHERE sql IS NOT NULL{condition} "
    "ORDER BY is_view, schema_name, name"
)


def _columns_layout(names: list[str], width: int) -> str:
    """Lay names out in columns, filled top to bottom, as sqlite's and DuckDB's ``.tables``."""
    if not names:
        return ""
    column_width = max(len(name) for name in names) + 2
    columns = max(1, width // column_width)
    rows = -(-len(names) // columns)
    lines = []
    for row in range(rows):
        cells = [names[i] for i in range(row, len(names), rows)]
        lines.append("".join(cell.ljust(column_width) for cell in cells).rstrip())
    return "\n".join(lines) + "\n"


COMMANDS: dict[str, Command] = {
    "bail": Command(Shell.command_bail, "on|off", "stop a script at its first error"),
    "echo": Command(Shell.command_echo, "on|off", "print each statement before running it"),
    "exit": Command(Shell.command_exit, "[CODE]", "exit the shell with status CODE (default 0)"),
    "help": Command(Shell.command_help, "", "list the dot commands"),
    "indexes": Command(
        Shell.command_indexes, "[TABLE]", "list the vector indexes (of TABLE), from vsql_indexes"
    ),
    "maxrows": Command(
        Shell.command_maxrows, "N", f"show at most N rows in box modes (default {DEFAULT_MAX_ROWS})"
    ),
    "maxwidth": Command(
        Shell.command_maxwidth,
        "N",
        "fit box tables in N characters; 0: the terminal width (default)",
    ),
    "mode": Command(
        Shell.command_mode, "MODE", "set the output mode: " + ", ".join(sorted(WRITERS))
    ),
    "once": Command(Shell.command_once, "FILE", "write the next result to FILE"),
    "open": Command(
        Shell.command_open,
        "[FILE]",
        "close this database and open FILE (default: a new in-memory one)",
    ),
    "output": Command(
        Shell.command_output, "[FILE]", "write results to FILE; without FILE, to standard output"
    ),
    "quit": Command(Shell.command_quit, "", "exit the shell"),
    "read": Command(Shell.command_read, "FILE", "run the SQL and dot commands in FILE"),
    "schema": Command(
        Shell.command_schema,
        "[TABLE]",
        "print the CREATE statements of the tables and views (or of TABLE)",
    ),
    "tables": Command(
        Shell.command_tables,
        "[PATTERN]",
        "list the tables and views (whose names match the LIKE PATTERN)",
    ),
    "timer": Command(Shell.command_timer, "on|off", "print the run time of each statement"),
}


class _History:
    """readline history of the interactive prompt, kept in $VSQL_HISTORY or ~/.vsql_history."""

    def __init__(self) -> None:
        try:
            import readline
        except ImportError:  # Windows without pyreadline: the prompt works without history
            self.readline = None
            return
        self.readline = readline
        self.path = os.environ.get("VSQL_HISTORY") or os.path.expanduser("~/.vsql_history")
        readline.set_history_length(HISTORY_LENGTH)
        try:
            readline.read_history_file(self.path)
        except FileNotFoundError:
            pass
        except OSError as error:
            log.warning("cannot read the history file %s: %s", self.path, error)

    def save(self) -> None:
        if self.readline is None:
            return
        try:
            self.readline.write_history_file(self.path)
        except OSError as error:
            log.warning("cannot write the history file %s: %s", self.path, error)


def _run(shell: Shell, options: Options, stdin: TextIO) -> int:
    if options.init_file is not None and not shell.run_file(options.init_file) and options.bail:
        return 1
    if options.commands:
        for text in options.commands:
            if not shell.run_text(text):
                return 1
        return 0
    if stdin.isatty():
        return shell.repl()
    return 0 if shell.run_script(stdin) else 1


def main(argv: list[str] | None = None) -> int:
    """Run the shell with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    stdout, stderr = sys.stdout, sys.stderr
    try:
        options = parse_arguments(sys.argv[1:] if argv is None else list(argv))
    except UsageError as error:
        stderr.write(f"Error: {error}\n")
        return 1
    if options.show_help:
        stdout.write(USAGE)
        return 0
    if options.show_version:
        stdout.write(version_text() + "\n")
        return 0

    shell = Shell(options, stdout, stderr)
    shell.interactive = not options.commands and sys.stdin.isatty() and stdout.isatty()
    try:
        shell.open(options.database)
    except vsql.Error as error:
        shell.report(str(error))
        return 1
    try:
        return _run(shell, options, sys.stdin)
    except QuitShell as request:
        return request.code
    except KeyboardInterrupt:
        shell.report("interrupted")
        return 130
    except BrokenPipeError:
        # Point standard output at /dev/null so that the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
        return 1
    finally:
        shell._close_output()
        try:
            shell.close()
        except vsql.Error as error:
            shell.report(str(error))


if __name__ == "__main__":
    sys.exit(main())
