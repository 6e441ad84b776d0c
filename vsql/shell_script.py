"""Lexical checks on SQL text for the shell: is a statement complete, and what kind is it."""

from __future__ import annotations

import re

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _skip_quoted(text: str, start: int, quote: str) -> int:
    """Return the index after the quote that closes the one at ``start`` (doubled quotes escape)."""
    i = start + 1
    while True:
        i = text.find(quote, i)
        if i < 0:
            return len(text) + 1  # unterminated
        if text.startswith(quote, i + 1):
            i += 2
            continue
        return i + 1


def _scan(text: str):
    """Yield (index, character) for each character outside strings, identifiers and comments.

    Scanning stops at an unterminated string, quoted identifier, ``$$`` body or block comment,
    after yielding ``(index, None)`` for it.
    """
    i = 0
    length = len(text)
    while i < length:
        char = text[i]
        if char in ("'", '"'):
            i = _skip_quoted(text, i, char)
            if i > length:
                yield length, None
                return
            continue
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = length if end < 0 else end + 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                yield length, None
                return
            i = end + 2
            continue
        if char == "$":
            match = _DOLLAR_TAG.match(text, i)
            if match is not None:
                end = text.find(match.group(0), match.end())
                if end < 0:
                    yield length, None
                    return
                i = end + len(match.group(0))
                continue
        yield i, char
        i += 1


def statement_complete(text: str) -> bool:
    """Return True when ``text`` ends with ``;`` outside strings and comments.

    >>> statement_complete("SELECT ';'")
    False
    >>> statement_complete("SELECT 1; -- done")
    True
    """
    last = None
    for _, char in _scan(text):
        if char is None:
            return False
        if not char.isspace():
            last = char
    return last == ";"


def first_keyword(statement: str) -> str:
    """Return the first word of ``statement`` in upper case, after comments (``(`` for a
    parenthesized query, ``""`` for an empty statement)."""
    for i, char in _scan(statement):
        if char is None:
            return ""
        if char.isspace():
            continue
        if char == "(":
            return "("
        match = re.match(r"[A-Za-z_]+", statement[i:])
        return match.group(0).upper() if match else char
    return ""
