"""Numbering of parameters in the SQL a rewrite produces.

DuckDB requires every parameter it is given to appear in the statement, and a rewrite moves
parameters around: the query vector of a kNN search leaves the statement, a filter is copied into
a second statement, and the search results come in as new parameters. :func:`compile_sql` numbers
the placeholders left in a tree ``$1, $2, ...`` and records where each one's value comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from planner.dialect import to_duckdb


@dataclass(frozen=True)
class BoundSql:
    """DuckDB SQL and, for each of its parameters, the source of the value.

    A source is an int (the position of the user's parameter) or the name of a value vsql
    computes, such as ``__vsql_rowids0``.
    """

    sql: str
    sources: tuple[int | str, ...]

    def bind(self, user_parameters: Any, computed: dict[str, Any] | None = None) -> list[Any]:
        values = []
        for source in self.sources:
            if isinstance(source, int):
                values.append(user_parameters[source])
            else:
                values.append((computed or {})[source])
        return values


def compile_sql(tree: exp.Expression) -> BoundSql:
    """Return DuckDB SQL for ``tree`` with its placeholders numbered in order of appearance.

    User placeholders must already be numbered (``$1``); ``?`` ones are numbered by the planner.
    """
    tree = tree.copy()
    numbers: dict[str, int] = {}
    sources: list[int | str] = []
    for placeholder in tree.find_all(exp.Placeholder, bfs=False):
        key = str(placeholder.this)
        if key not in numbers:
            sources.append(int(key) - 1 if key.isdigit() else key)
            numbers[key] = len(sources)
        placeholder.set("this", str(numbers[key]))
    return BoundSql(to_duckdb(tree), tuple(sources))
