"""store/literals.py: values rendered as SQL literals come back from a real DuckDB exactly, and no text escapes its quotes."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitorkit.store.literals import bind, literal, values

# Text DuckDB can hold: any code point but lone surrogates (not encodable as UTF-8, nor bindable).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=200)
HOSTILE = [
    "", "it's", "''", "'; DROP TABLE t; --", "\\", "a\\'b", "back\\\\slash\\n", "nul\x00inside", "\x00", "\x00'\x00",
    "é ü 日本 😀", "?", "$1", "-- not a comment", "/* not a comment */", '"quoted"', "line\nbreak\r\ttab", "\u2028",
]


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    yield c
    c.close()


def select(con: duckdb.DuckDBPyConnection, value: object) -> object:
    row = con.execute(f"SELECT {literal(value)}").fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_round_trip_and_stay_one_value(con: duckdb.DuckDBPyConnection, text: str) -> None:
    con.execute("CREATE TABLE t (k INTEGER, v VARCHAR)")
    con.execute(bind("INSERT INTO t VALUES (?, ?)", [1, text]))
    assert con.execute("SELECT k, v FROM t").fetchall() == [(1, text)]
    assert con.execute(bind("SELECT count(*) FROM t WHERE v = ?", [text])).fetchone() == (1,)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_any_text_round_trips(text: str) -> None:
    with duckdb.connect() as c:
        assert c.execute(f"SELECT {literal(text)}, length({literal(text)})").fetchone() == (text, len(text))


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_round_trips_exactly(x: float) -> None:
    with duckdb.connect() as c:
        (got,) = c.execute(f"SELECT {literal(x)}").fetchone() or (None,)
        (listed,) = c.execute(f"SELECT {literal([x, 1.5])}").fetchone() or (None,)
    for value in (got, listed[0]):
        assert (math.isnan(x) and math.isnan(value)) or (value == x and math.copysign(1, value) == math.copysign(1, x))


@pytest.mark.parametrize("value", [
    None, True, False, 0, 7, -5, 2**63 - 1, -(2**63), 0.1, -0.0, 5e-324, 1e308, math.inf, -math.inf,
    datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC), datetime(2026, 3, 1, 12, 30, 5, 7),
    datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))), date(2026, 3, 1), time(23, 59, 59, 999999),
    timedelta(seconds=-1.5), timedelta(days=400, microseconds=1), b"\x00\xff'", uuid.UUID(int=12345),
    {"job": "it's", "path": "C:\\x"}, {}, [1, 2, 3], [-1, 2**63 - 1], [2**70, 1], [], [["a", "b'"], []], ["\x00"],
])
def test_values_of_every_supported_type_round_trip(con: duckdb.DuckDBPyConnection, value: object) -> None:
    got = select(con, value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        # The same instant, read back in UTC.
        assert isinstance(got, datetime) and got == value and got.utcoffset() == timedelta(0)
    else:
        assert got == value


def test_nan_renders_as_a_double_nan(con: duckdb.DuckDBPyConnection) -> None:
    assert math.isnan(select(con, math.nan))  # type: ignore[arg-type]


def test_unsupported_types_are_refused() -> None:
    with pytest.raises(TypeError, match="no SQL literal for object"):
        literal(object())
    with pytest.raises(TypeError, match="time zone"):
        literal(time(1, 2, tzinfo=UTC))


def test_placeholders_in_quotes_and_comments_are_left_alone(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT '?' AS a, ? AS \"b?\", 'it''s ?' AS c -- what?\n, /* ? */ ? AS d"
    assert con.execute(bind(sql, ["x", -2])).fetchall() == [("?", "x", "it's ?", -2)]
    assert con.execute(bind("SELECT 10-?", [-5])).fetchone() == (15,)  # not the comment "10--5"


def test_numbered_placeholders_may_repeat(con: duckdb.DuckDBPyConnection) -> None:
    assert con.execute(bind("SELECT $2, $1, $2", ["a", "b"])).fetchone() == ("b", "a", "b")


@pytest.mark.parametrize(("sql", "params", "message"), [
    ("SELECT ?, ?", [1], "more placeholders"),
    ("SELECT ?", [1, 2], "do not use all"),
    ("SELECT 1", [1], "do not use all"),
    ("SELECT $1, ?", [1, 2], "mixed"),
    ("SELECT $3", [1, 2], r"\$3 has no parameter"),
    ("SELECT $2", [1, 2], "do not use all"),
    ("SELECT $name", [1], "named parameters"),
    ("SELECT 'open", [], "unterminated quoted"),
    ("SELECT /* open", [], "unterminated comment"),
])
def test_malformed_statements_are_refused(sql: str, params: list[object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bind(sql, params)


def test_values_keep_column_types_with_nulls_and_empty_maps(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE r (name VARCHAR, t TIMESTAMPTZ, n BIGINT, labels MAP(VARCHAR, VARCHAR), x DOUBLE)")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    # The first row (which carries the casts) holds NULLs and an empty map; later rows are unified to it.
    rows = [("a'", None, None, {}, None), ("b\x00", at, -3, {"k": "v'"}, math.inf), ("c", None, 2**40, {}, 1)]
    con.execute(f"INSERT INTO r {values(rows, ['VARCHAR', 'TIMESTAMPTZ', 'BIGINT', 'MAP(VARCHAR, VARCHAR)', 'DOUBLE'])}")
    assert con.execute("SELECT * FROM r ORDER BY name").fetchall() == [
        ("a'", None, None, {}, None), ("b\x00", at, -3, {"k": "v'"}, math.inf), ("c", None, 2**40, {}, 1.0)]
    with pytest.raises(ValueError, match="at least one row"):
        values([], ["VARCHAR"])


def test_a_file_written_through_bind_reads_back_after_reopening(tmp_path: Path) -> None:
    db = tmp_path / "lit.duckdb"
    with duckdb.connect(str(db)) as c:
        c.execute("CREATE TABLE s (t TIMESTAMPTZ, v DOUBLE[])")
        c.execute(bind("INSERT INTO s SELECT make_timestamptz($1), $2::DOUBLE[]", [1_700_000_000_000_000, [0.1, -0.0]]))
    with duckdb.connect(str(db)) as c:
        t, v = c.execute("SELECT t, v FROM s").fetchone() or (None, None)
    assert t == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC) and v == [0.1, -0.0]
