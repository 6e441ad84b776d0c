"""Result writers of the ``vsql`` shell: duckbox, box, csv, json, markdown, line and list.

Every writer receives a result in batches (``begin``, ``write_rows`` once per batch, ``end``), so
a result of any size streams through in bounded memory. The box writers keep only the rows they
will show; the other modes write each batch as it arrives.

Values are rendered as the DuckDB 1.5 CLI renders them where Python's value allows it: ``NULL``,
``true``/``false``, lists as ``[1, 2]``, structs as ``{'a': 1}``, and FLOAT values with the
shortest digits of their float32 value (``0.1``, not ``0.10000000149011612``).
"""

from __future__ import annotations

import collections
import csv
import datetime
import decimal
import io
import json
import re
import unicodedata
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple, TextIO

import numpy as np

# DuckDB's CLI shows integer types by their width and every other type name in lower case.
_INTEGER_NAMES = {
    "TINYINT": "int8",
    "SMALLINT": "int16",
    "INTEGER": "int32",
    "BIGINT": "int64",
    "HUGEINT": "int128",
    "UTINYINT": "uint8",
    "USMALLINT": "uint16",
    "UINTEGER": "uint32",
    "UBIGINT": "uint64",
    "UHUGEINT": "uint128",
}
_NUMERIC_NAMES = {*_INTEGER_NAMES, "FLOAT", "REAL", "DOUBLE", "DECIMAL", "NUMBER", "NUMERIC"}
_FLOAT32_NAMES = {"FLOAT", "REAL", "FLOAT4"}
_LEADING_NAME = re.compile(r"^([A-Za-z0-9_]+)(.*)$", re.DOTALL)

# Characters that would break a table row, shown escaped in the box modes.
_CONTROL_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})
ELLIPSIS = "…"
GAP_MARK = "·"


class Column(NamedTuple):
    """One result column as the writers see it."""

    name: str
    type_name: str  # as the DuckDB CLI shows it: int32, varchar, float[3]
    numeric: bool  # a scalar number, right-aligned in the box and markdown modes
    float32: bool  # FLOAT or FLOAT[n]: shown with float32's shortest digits


def describe_columns(description: Sequence[tuple]) -> list[Column]:
    """Return the columns of a PEP 249 ``description``."""
    return [_describe_column(str(entry[0]), entry[1]) for entry in description]


def _describe_column(name: str, type_code: Any) -> Column:
    type_text = "" if type_code is None else str(type_code)
    match = _LEADING_NAME.match(type_text)
    if match is None:
        return Column(name, type_text.lower(), False, False)
    base, rest = match.group(1).upper(), match.group(2)
    # Only the outer type counts: STRUCT(a FLOAT) is not a float32 column.
    is_scalar = rest == "" or rest.startswith("(")
    is_array = rest.startswith("[")
    shown_base = _INTEGER_NAMES.get(base, base.lower()) if (is_scalar or is_array) else base.lower()
    return Column(
        name=name,
        type_name=shown_base + rest.lower(),
        numeric=is_scalar and base in _NUMERIC_NAMES,
        float32=(is_scalar or is_array) and base in _FLOAT32_NAMES,
    )


# -- values ----------------------------------------------------------------------------------


def float32_text(value: float) -> str:
    """Format a FLOAT value with the shortest digits that round-trip its float32 value.

    numpy finds those digits; Python's ``repr`` of the double they parse to then gives the same
    digits in the notation DuckDB uses (``1234567.0``, ``1e-07``, ``3.4e+38``).
    """
    return repr(float(str(np.float32(value))))


def _float32_number(value: float) -> float:
    """Return the double whose ``repr`` is the float32 value's shortest digits (for JSON)."""
    return float(str(np.float32(value)))


def _fraction_text(microseconds: int) -> str:
    return f".{microseconds:06d}".rstrip("0") if microseconds else ""


def _datetime_text(value: datetime.datetime) -> str:
    text = value.strftime("%Y-%m-%d %H:%M:%S") + _fraction_text(value.microsecond)
    offset = value.utcoffset()
    if offset is not None:
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        hours, minutes = divmod(abs(minutes), 60)
        text += f"{sign}{hours:02d}" + (f":{minutes:02d}" if minutes else "")
    return text


def _time_text(value: datetime.time) -> str:
    return value.strftime("%H:%M:%S") + _fraction_text(value.microsecond)


def _interval_text(value: datetime.timedelta) -> str:
    """Format an interval as DuckDB does: ``2 days 03:00:00``, ``1 day``, ``00:00:01.5``."""
    days, seconds, microseconds = value.days, value.seconds, value.microseconds
    parts = []
    if days:
        parts.append(f"{days} day" + ("" if abs(days) == 1 else "s"))
    if seconds or microseconds or not days:
        hours, rest = divmod(seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        parts.append(f"{hours:02d}:{minutes:02d}:{seconds:02d}" + _fraction_text(microseconds))
    return " ".join(parts)


def _blob_text(value: bytes) -> str:
    """Format a BLOB as DuckDB does: printable ASCII as is, other bytes as ``\\xNN``."""
    return "".join(
        chr(byte) if 32 <= byte < 127 and byte != 92 else f"\\x{byte:02X}" for byte in value
    )


def value_text(value: Any, float32: bool = False) -> str:
    """Format one value as text, as the DuckDB CLI shows it (``float32`` for FLOAT columns)."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float32_text(value) if float32 else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(item, float32) for item in value) + "]"
    if isinstance(value, np.ndarray):
        return value_text(value.tolist(), float32 or value.dtype == np.float32)
    if isinstance(value, dict):
        fields = (f"'{key}': {value_text(item)}" for key, item in value.items())
        return "{" + ", ".join(fields) + "}"
    if isinstance(value, datetime.datetime):
        return _datetime_text(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.time):
        return _time_text(value)
    if isinstance(value, datetime.timedelta):
        return _interval_text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _blob_text(bytes(value))
    return str(value)


_FAST_TEXT: dict[type, Any] = {
    str: str,
    int: int.__repr__,
    float: float.__repr__,
    type(None): lambda value: "NULL",
    bool: lambda value: "true" if value else "false",
}


def json_value(value: Any, float32: bool = False) -> Any:
    """Convert a value for ``json.dumps``: lists stay arrays, dates and decimals become strings."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return _float32_number(value) if float32 else value
    if isinstance(value, (list, tuple)):
        return [json_value(item, float32) for item in value]
    if isinstance(value, np.ndarray):
        return json_value(value.tolist(), float32 or value.dtype == np.float32)
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    return value_text(value)


def text_width(text: str) -> int:
    """Return the number of terminal cells ``text`` takes: wide East Asian characters take two."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def truncate(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` cells, ending with an ellipsis. A list keeps whole elements."""
    if text_width(text) <= width:
        return text
    if text.startswith("[") and text.endswith("]"):
        # "[0.1, 0.2, …]": keep as many leading elements as fit before ", …]".
        end = text.rfind(", ", 0, max(width - 2, 0))
        while end > 0:
            candidate = text[:end] + ", " + ELLIPSIS + "]"
            if text_width(candidate) <= width:
                return candidate
            end = text.rfind(", ", 0, end)
    kept = []
    used = 0
    for char in text:
        char_width = text_width(char)
        if used + char_width > width - 1:
            break
        kept.append(char)
        used += char_width
    return "".join(kept) + ELLIPSIS


# -- writers ---------------------------------------------------------------------------------


class ResultWriter:
    """Base of the writers: one result, received as ``begin``, ``write_rows``..., ``end``."""

    def __init__(self, out: TextIO, *, max_rows: int = 40, max_width: int | None = None) -> None:
        self.out = out
        self.max_rows = max_rows
        self.max_width = max_width
        self.columns: list[Column] = []

    def begin(self, columns: list[Column]) -> None:
        self.columns = columns

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def end(self) -> None:
        """Write what the mode writes after the last row."""

    def row_texts(self, row: Sequence[Any]) -> list[str]:
        texts = []
        for value, column in zip(row, self.columns, strict=True):
            # The common scalar types skip value_text's isinstance chain: the csv, json and
            # line modes format every row of a result.
            fast = _FAST_TEXT.get(type(value))
            if fast is not None and not (column.float32 and type(value) is float):
                texts.append(fast(value))
            else:
                texts.append(value_text(value, column.float32))
        return texts


class CsvWriter(ResultWriter):
    """A header line, then one line per row, quoted by the csv module; NULL is written ``NULL``."""

    def begin(self, columns: list[Column]) -> None:
        super().begin(columns)
        self.writer = csv.writer(self.out, lineterminator="\n")
        self.writer.writerow([column.name for column in columns])

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        self.writer.writerows(self.row_texts(row) for row in rows)


class ListWriter(ResultWriter):
    """Values separated by ``|``, after a header line of the column names."""

    def begin(self, columns: list[Column]) -> None:
        super().begin(columns)
        self.out.write("|".join(column.name for column in columns) + "\n")

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        self.out.write("".join("|".join(self.row_texts(row)) + "\n" for row in rows))


class JsonWriter(ResultWriter):
    """One JSON array of objects, one object per line, written as the rows arrive."""

    def begin(self, columns: list[Column]) -> None:
        super().begin(columns)
        self.out.write("[")
        self.first = True

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        names = [column.name for column in self.columns]
        parts = []
        for row in rows:
            record = {
                name: json_value(value, column.float32)
                for name, value, column in zip(names, row, self.columns, strict=True)
            }
            prefix = "" if self.first else ",\n"
            parts.append(prefix + json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            self.first = False
        self.out.write("".join(parts))

    def end(self) -> None:
        self.out.write("]\n")


class LineWriter(ResultWriter):
    """One ``name = value`` line per column, right-aligned names, a blank line between rows."""

    def begin(self, columns: list[Column]) -> None:
        super().begin(columns)
        # DuckDB pads the names to at least 5 characters.
        width = max([5] + [text_width(column.name) for column in columns])
        self.labels = [" " * (width - text_width(c.name)) + c.name + " = " for c in columns]
        self.first = True

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        parts = []
        for row in rows:
            if not self.first:
                parts.append("\n")
            self.first = False
            parts.extend(
                label + text + "\n"
                for label, text in zip(self.labels, self.row_texts(row), strict=True)
            )
        self.out.write("".join(parts))


class MarkdownWriter(ResultWriter):
    """A GitHub Markdown table; number columns are marked right-aligned, ``|`` is escaped.

    Column widths come from the first batch, so a longer value in a later batch widens only its
    own row: the table stays valid Markdown without holding the rows back.
    """

    def begin(self, columns: list[Column]) -> None:
        super().begin(columns)
        self.widths: list[int] | None = None

    def _cells(self, row: Sequence[Any]) -> list[str]:
        return [
            text.replace("|", "\\|").translate(_CONTROL_ESCAPES) for text in self.row_texts(row)
        ]

    def _write_header(self, first_rows: list[list[str]]) -> None:
        self.widths = [
            max([text_width(column.name)] + [text_width(cells[i]) for cells in first_rows])
            for i, column in enumerate(self.columns)
        ]
        names = [
            _center(column.name, width)
            for column, width in zip(self.columns, self.widths, strict=True)
        ]
        rules = [
            "-" * (width + 1) + ":" if column.numeric else "-" * (width + 2)
            for column, width in zip(self.columns, self.widths, strict=True)
        ]
        self.out.write("| " + " | ".join(names) + " |\n")
        self.out.write("|" + "|".join(rules) + "|\n")

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        batch = [self._cells(row) for row in rows]
        if self.widths is None:
            self._write_header(batch)
        assert self.widths is not None
        lines = (
            "| "
            + " | ".join(
                _align(text, width, right=False)
                for text, width in zip(cells, self.widths, strict=True)
            )
            + " |\n"
            for cells in batch
        )
        self.out.write("".join(lines))

    def end(self) -> None:
        if self.widths is None:
            self._write_header([])


def _center(text: str, width: int) -> str:
    space = max(width - text_width(text), 0)
    return " " * (space // 2) + text + " " * (space - space // 2)


def _align(text: str, width: int, right: bool) -> str:
    space = " " * max(width - text_width(text), 0)
    return space + text if right else text + space


class DuckboxWriter(ResultWriter):
    """DuckDB's default table: names, types, right-aligned numbers, at most ``max_rows`` rows.

    When a result has more rows than fit, the first and last rows are shown around a ``·`` gap
    and a footer gives the row count. Only those rows are kept while the result streams by: the
    first ``max_rows + 3`` (all of them are shown when the result ends there, since the gap would
    take three lines) and a ring buffer of the last ``max_rows // 2``.
    """

    show_types = True
    align_numbers = True

    def begin(self, columns: list[Column]) -> None:
        super().begin(columns)
        self.head_limit = self.max_rows + 3
        self.head: list[Sequence[Any]] = []
        self.tail: collections.deque = collections.deque(maxlen=self.max_rows // 2)
        self.row_count = 0

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        self.row_count += len(rows)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head.extend(rows[:room])
            rows = rows[room:]
        if rows:
            self.tail.extend(rows)

    @property
    def retained_rows(self) -> int:
        """Number of rows held in memory: never more than ``max_rows + 3 + max_rows // 2``."""
        return len(self.head) + len(self.tail)

    def _shown_rows(self) -> tuple[list[Sequence[Any]], list[Sequence[Any]]]:
        """Return the rows above and below the gap (no rows below when all rows are shown)."""
        if self.row_count <= self.head_limit:
            return self.head, []
        bottom_count = self.max_rows // 2
        top = self.head[: self.max_rows - bottom_count]
        # Rows after the head are in the tail; the last rows come from the head when it is short.
        bottom = (self.head + list(self.tail))[-bottom_count:] if bottom_count else []
        return top, bottom

    def end(self) -> None:
        top, bottom = self._shown_rows()
        footer = []
        if self.row_count == 0:
            footer.append("0 rows")
        elif bottom or self.row_count > len(top):
            footer += [f"{self.row_count} rows", f"({len(top) + len(bottom)} shown)"]
            if len(self.columns) > 1:
                footer[0] += f"\t{len(self.columns)} columns"
        table = BoxTable(self.columns, show_types=self.show_types, align_numbers=self.align_numbers)
        top_cells = [self.row_texts(row) for row in top]
        bottom_cells = [self.row_texts(row) for row in bottom]
        has_gap = self.row_count > len(top) + len(bottom)
        self.out.write(table.render(top_cells, bottom_cells, has_gap, footer, self.max_width))


class BoxWriter(DuckboxWriter):
    """The duckbox table without the type line and with every value left-aligned."""

    show_types = False
    align_numbers = False


class BoxTable:
    """Layout of a box-drawn table: column widths, truncation to a width, hidden columns."""

    MIN_COLUMN_WIDTH = 8

    def __init__(self, columns: list[Column], *, show_types: bool, align_numbers: bool) -> None:
        self.columns = columns
        self.show_types = show_types
        self.align_numbers = align_numbers

    def _natural_widths(self, rows: list[list[str]]) -> list[int]:
        widths = []
        for i, column in enumerate(self.columns):
            width = text_width(column.name)
            if self.show_types:
                width = max(width, text_width(column.type_name))
            for cells in rows:
                width = max(width, text_width(cells[i]))
            widths.append(max(width, 1))
        return widths

    @staticmethod
    def _total_width(widths: list[int]) -> int:
        return sum(widths) + 3 * len(widths) + 1

    def _fit(self, widths: list[int], max_width: int) -> list[int | None]:
        """Shrink the widest columns, then hide middle columns, until the table fits.

        Returns the width of each column, or None for a hidden column.
        """
        widths = list(widths)
        excess = self._total_width(widths) - max_width
        while excess > 0:
            widest = max(range(len(widths)), key=widths.__getitem__)
            floor = max(sorted(widths)[-2] if len(widths) > 1 else 0, self.MIN_COLUMN_WIDTH)
            if widths[widest] <= self.MIN_COLUMN_WIDTH:
                break
            cut = min(excess, widths[widest] - floor) or 1
            widths[widest] -= cut
            excess -= cut
        fitted: list[int | None] = list(widths)
        shown = list(range(len(widths)))
        while excess > 0 and len(shown) > 1:
            # Hide the middle column; the "…" column that replaces them takes 4 cells once.
            hidden = shown.pop(len(shown) // 2)
            if fitted.count(None) == 0:
                excess += 4
            excess -= widths[hidden] + 3
            fitted[hidden] = None
        return fitted

    def render(
        self,
        top: list[list[str]],
        bottom: list[list[str]],
        has_gap: bool,
        footer: list[str],
        max_width: int | None,
    ) -> str:
        rows = [[text.translate(_CONTROL_ESCAPES) for text in cells] for cells in top + bottom]
        widths: list[int | None] = list(self._natural_widths(rows))
        if max_width is not None:
            widths = self._fit([w for w in widths if w is not None], max_width)
        hidden_count = widths.count(None)
        if hidden_count:
            footer = footer + [
                f"{len(self.columns)} columns ({len(self.columns) - hidden_count} shown)"
            ]
        layout = self._layout(widths)
        # The footer lines must fit under the table, as in DuckDB: widen the last column if not.
        needed = max((text_width(line.replace("\t", "  ")) + 4 for line in footer), default=0)
        total = sum(width + 3 for _, width, _ in layout) + 1
        if needed > total:
            index, width, column = layout[-1]
            layout[-1] = (index, width + needed - total, column)
            total = needed

        lines = [self._rule("┌", "┬", "┐", layout)]
        names = [_center(truncate(c.name, w), w) if c else ELLIPSIS for _, w, c in layout]
        lines.append(self._line(layout, names))
        if self.show_types:
            types = [_center(truncate(c.type_name, w), w) if c else " " for _, w, c in layout]
            lines.append(self._line(layout, types))
        if rows:
            lines.append(self._rule("├", "┼", "┤", layout))
        for cells in rows[: len(top)]:
            lines.append(self._row(layout, cells))
        if has_gap:
            gap = [self._gap_cell(c, w) for _, w, c in layout]
            lines.extend(self._line(layout, gap) for _ in range(3))
        for cells in rows[len(top) :]:
            lines.append(self._row(layout, cells))
        lines.append(self._rule("└", "┴", "┘", layout))
        lines.extend(self._footer_line(line, total, centered=len(layout) == 1) for line in footer)
        return "\n".join(lines) + "\n"

    @staticmethod
    def _footer_line(text: str, total: int, centered: bool) -> str:
        """Center a footer line under a one-column table, else indent it by two.

        A tab in ``text`` separates a left part from a part right-aligned under the table's edge.
        """
        left, _, right = text.partition("\t")
        if centered and not right:
            return _center(left, total).rstrip()
        space = max(total - 4 - text_width(left) - text_width(right), 2 if right else 0)
        return ("  " + left + " " * space + right).rstrip()

    def _layout(self, widths: list[int | None]) -> list[tuple[int, int, Column | None]]:
        """Return (column index, width, column) per shown cell; a None column is the "…" cell."""
        layout: list[tuple[int, int, Column | None]] = []
        for i, width in enumerate(widths):
            if width is not None:
                layout.append((i, width, self.columns[i]))
            elif not layout or layout[-1][2] is not None:
                layout.append((-1, 1, None))
        return layout

    def _gap_cell(self, column: Column | None, width: int) -> str:
        if column is None:
            return " "
        if self.align_numbers and column.numeric:
            return _align(GAP_MARK, width, right=True)
        return _center(GAP_MARK, width)

    def _row(self, layout: list[tuple[int, int, Column | None]], cells: list[str]) -> str:
        texts = []
        for index, width, column in layout:
            if column is None:
                texts.append(ELLIPSIS)
                continue
            text = truncate(cells[index], width)
            texts.append(_align(text, width, right=self.align_numbers and column.numeric))
        return self._line(layout, texts)

    @staticmethod
    def _line(layout: list[tuple[int, int, Column | None]], texts: list[str]) -> str:
        padded = [
            _align(text, width, right=False)
            for text, (_, width, _) in zip(texts, layout, strict=True)
        ]
        return "│ " + " │ ".join(padded) + " │"

    @staticmethod
    def _rule(
        left: str, middle: str, right: str, layout: list[tuple[int, int, Column | None]]
    ) -> str:
        return left + middle.join("─" * (width + 2) for _, width, _ in layout) + right


WRITERS: dict[str, type[ResultWriter]] = {
    "duckbox": DuckboxWriter,
    "box": BoxWriter,
    "csv": CsvWriter,
    "json": JsonWriter,
    "line": LineWriter,
    "list": ListWriter,
    "markdown": MarkdownWriter,
}


def render_to_string(
    writer_class: type[ResultWriter],
    description: Sequence[tuple],
    rows: Sequence[Sequence[Any]],
    **options: Any,
) -> str:
    """Render a whole result with one writer and return the text (for tests and short results)."""
    out = io.StringIO()
    writer = writer_class(out, **options)
    writer.begin(describe_columns(description))
    if rows:
        writer.write_rows(rows)
    writer.end()
    return out.getvalue()
