"""Render Python values as DuckDB SQL literals, and statements with their parameters inlined.

Why: DuckDB 1.5.5's Python binding imports pandas, numpy and pyarrow (about 90 MiB of RSS)
the first time any statement is executed with bound parameters, of any type, to check whether
a parameter is one of their objects. The owner's hot paths (the writer's inserts, rollups,
compaction, retention, health and rule state writes, the readers' allowlist) run ``bind(sql,
params)`` instead, so `monitorkit collect` never loads them; ``tests/test_literals.py`` holds
the rendering to round-trip through DuckDB (quotes, backslashes, NUL, unicode, inf/nan) and
``tests/test_owner_imports.py`` holds a running owner to not import them.

Strings are quoted by doubling ``'`` (DuckDB's standard strings know no backslash escapes);
a NUL, which a SQL literal cannot hold, goes as ``chr(0)``. Floats go as strings cast to
DOUBLE, which DuckDB parses exactly (a bare ``0.1`` would be a DECIMAL literal).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any


def quote(text: str) -> str:
    """Return ``text`` as a DuckDB string literal."""
    if "\x00" in text:
        return "(" + " || chr(0) || ".join(quote(part) for part in text.split("\x00")) + ")"
    return "'" + text.replace("'", "''") + "'"


def literal(value: Any) -> str:
    """Return ``value`` as a DuckDB literal; TypeError for a type without a safe rendering."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value)) if value >= 0 else f"({int(value)})"  # "x-?" must not become the comment "x--5"
    if isinstance(value, float):
        return f"'{value!r}'::DOUBLE"  # repr round-trips, and is 'inf', '-inf' or 'nan', which the cast reads
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, datetime):
        kind = "TIMESTAMP" if value.tzinfo is None else "TIMESTAMPTZ"
        return f"{kind} '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise TypeError("a time with a time zone has no DuckDB literal here; pass a datetime")
        return f"TIME '{value.isoformat()}'"
    if isinstance(value, timedelta):
        return f"to_microseconds({value // timedelta(microseconds=1)})"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"unhex('{bytes(value).hex()}')"
    if isinstance(value, uuid.UUID):
        return f"'{value}'::UUID"
    if isinstance(value, Mapping):
        return "MAP {" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return _list(value)
    raise TypeError(f"no SQL literal for {type(value).__name__}")


_INT64 = (-(2**63), 2**63 - 1)


def _list(values: Sequence[Any]) -> str:
    # A list of floats is one string cast: a collector batch of thousands parses in a few ms,
    # where a cast per element costs about four times that.
    if values and all(type(v) is float for v in values):
        return "'[" + ", ".join(map(repr, values)) + "]'::DOUBLE[]"
    # Integers likewise (a writer's series ids and time indexes): a third of the parse of a list literal.
    if values and all(type(v) is int and _INT64[0] <= v <= _INT64[1] for v in values):
        return "'[" + ", ".join(map(str, values)) + "]'::BIGINT[]"
    return "[" + ", ".join(literal(v) for v in values) + "]"


def values(rows: Iterable[Sequence[Any]], types: Sequence[str]) -> str:
    """Return ``VALUES (...), (...)`` of ``rows``, each value cast to its column's DuckDB type.

    The first row's casts give each column its type (a NULL, an empty MAP or list has none of its
    own); later rows' literals are unified to it, which parses about a third faster than a cast on
    every value. The rows stand in for the Arrow tables the owner would otherwise register, which load pandas.
    """
    rendered = [
        "(" + ", ".join(f"{literal(v)}::{t}" if i == 0 else literal(v) for v, t in zip(row, types, strict=True)) + ")"
        for i, row in enumerate(rows)
    ]
    if not rendered:
        raise ValueError("VALUES needs at least one row")
    return "VALUES " + ", ".join(rendered)


def bind(sql: str, params: Sequence[Any] | None = None) -> str:
    """Return ``sql`` with its ``?`` (or ``$1``, ``$2``...) placeholders replaced by literals of ``params``.

    Placeholders inside string literals, quoted identifiers and comments are left alone (``E'...'``
    strings with backslash escapes are not recognised: the owner's statements use none). Raises
    ValueError when the count of placeholders and parameters differ, on named (``$name``) ones,
    and when ``?`` and ``$N`` are mixed.
    """
    params = list(params or [])
    out: list[str] = []
    i, n, start, used, style = 0, len(sql), 0, 0, ""
    numbered: set[int] = set()
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            end = sql.find(ch, i + 1)
            while end != -1 and sql.startswith(ch, end + 1):  # '' (or "") inside is the quote itself
                end = sql.find(ch, end + 2)
            if end == -1:
                raise ValueError("unterminated quoted text in the statement")
            i = end + 1
            continue
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end + 1
            continue
        if sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end == -1:
                raise ValueError("unterminated comment in the statement")
            i = end + 2
            continue
        if ch == "$" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] in "_$"):
            raise ValueError("named parameters and dollar-quoted strings are not supported by bind()")
        if ch == "?":
            if style == "$":
                raise ValueError("'?' and '$N' placeholders are mixed")
            style = "?"
            if used >= len(params):
                raise ValueError(f"the statement has more placeholders than the {len(params)} parameters")
            out += [sql[start:i], literal(params[used])]
            used += 1
            i = start = i + 1
            continue
        if ch == "$" and i + 1 < n and sql[i + 1].isdigit():
            j = i + 1
            while j < n and sql[j].isdigit():
                j += 1
            if style == "?":
                raise ValueError("'?' and '$N' placeholders are mixed")
            style = "$"
            number = int(sql[i + 1:j])
            if not 1 <= number <= len(params):
                raise ValueError(f"placeholder ${number} has no parameter (there are {len(params)})")
            numbered.add(number)
            out += [sql[start:i], literal(params[number - 1])]
            i = start = j
            continue
        i += 1
    out.append(sql[start:])
    if (style == "?" and used != len(params)) or (style == "$" and len(numbered) != len(params)) or (
        not style and params
    ):
        raise ValueError(f"the statement's placeholders do not use all {len(params)} parameters")
    return "".join(out)


__all__ = ["bind", "literal", "quote", "values"]
