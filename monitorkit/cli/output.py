"""Every command's output: a table fitted to the terminal, plain complete lines, JSON or CSV.

Data is printed literally (no markup, no emoji codes). On a terminal the default is ``table``:
columns fitted to its width, long cells wrapped at spaces, names never cut; when the names
alone do not fit, each row is shown as a block of ``column: value`` lines. When stdout is a
pipe or a file the default is ``plain``: one complete line per row, columns aligned, nothing
wrapped or cut. JSON keeps labels as objects; CSV writes MAP, LIST and STRUCT values as JSON text.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any, TypeVar

import click

FORMATS = ("table", "plain", "json", "csv")
FORMAT_HELP = (
    "table: fitted to the terminal, long cells wrapped; plain: one complete line per row; json; csv. "
    "Default: table on a terminal, plain when stdout is a pipe or a file."
)
SHORT = 20  # cells up to this long (times, states, names) are wrapped last
GAP = "  "

F = TypeVar("F", bound=Callable[..., Any])
Cell = Callable[[Any], str]


def format_options(fn: F) -> F:
    """Add ``--format`` (table, plain, json, csv) and ``--json`` (same as ``--format json``) as ``fmt``."""
    fn = click.option("--json", "fmt", flag_value="json", help="Same as --format json.")(fn)
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help=FORMAT_HELP)(fn)


def default_format(stream: IO[str] | None = None) -> str:
    """Return ``table`` when ``stream`` (stdout) is a terminal, else ``plain``."""
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return "table" if callable(isatty) and isatty() else "plain"


def terminal_width() -> int:
    """Return the terminal's width in columns ($COLUMNS first, 80 when unknown)."""
    return shutil.get_terminal_size((80, 24)).columns


def cell(value: Any) -> str:
    """Return how a listing shows ``value``: ``-`` for none, UTC times to the second, short floats, k=v labels."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    return str(value)


def data_cell(value: Any) -> str:
    """Return how ``monitorkit sql`` shows a value: as DuckDB gives it, ``NULL`` for none, ``{k=v}`` for maps."""
    if value is None:
        return "NULL"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={data_cell(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(data_cell(v) for v in value) + "]"
    return str(value)


def _strict(value: Any) -> Any:
    """Return ``value`` with +Inf, -Inf and NaN as Prometheus's text: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if isinstance(value, Mapping):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Return ``value`` as indented, strict JSON; times and other objects as their text."""
    return json.dumps(_strict(value), default=str, indent=1, allow_nan=False)


def json_text(value: Any) -> str:
    """Return one nested value (a map, list or struct) as compact JSON text for a CSV cell."""
    return json.dumps(_strict(value), default=str, separators=(",", ":"), allow_nan=False)


def rows_to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Return ``rows`` as CSV with a header; nested values as JSON text, none as an empty cell."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row.get(c)) for c in columns])
    return buf.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (Mapping, list, tuple)):
        return json_text(value)
    return value


def render_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, width: int | None, cell: Cell = cell
) -> str:
    """Return ``rows`` as aligned text; within ``width`` columns by wrapping (None: complete lines, plain)."""
    grid = [[_one_line(cell(row.get(c))) if width is None else cell(row.get(c)) for c in columns] for row in rows]
    headers = list(columns)
    if width is None:
        widths = [max([len(h), *(len(r[i]) for r in grid)]) for i, h in enumerate(headers)]
        lines = [_join(headers, widths), *(_join(r, widths) for r in grid)]
        return "\n".join(line.rstrip() for line in lines) + "\n"
    fitted = _fit(headers, grid, width)
    if fitted is None:
        return _records(headers, grid, width)
    cells = [[_wrap(text, w) for text, w in zip(r, fitted, strict=True)] for r in grid]
    # a column is as wide as what it shows once wrapped, not as the room it was given
    widths = [max([len(h), *(len(line) for r in cells for line in r[i])]) for i, h in enumerate(headers)]
    out = [_join(headers, widths), _join(["-" * w for w in widths], widths)]
    for wrapped in cells:
        for k in range(max(len(c) for c in wrapped)):
            out.append(_join([c[k] if k < len(c) else "" for c in wrapped], widths).rstrip())
    return "\n".join(line.rstrip() for line in out) + "\n"


def _one_line(text: str) -> str:
    # plain output keeps one line per row: a newline inside a cell is written as \n
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")


def _join(cells: Sequence[str], widths: Sequence[int]) -> str:
    return GAP.join(c.ljust(w) for c, w in zip(cells, widths, strict=True))


def _longest_word(text: str) -> int:
    return max((len(w) for w in text.split()), default=0)


def _fit(headers: Sequence[str], grid: Sequence[Sequence[str]], width: int) -> list[int] | None:
    """Return column widths that fit ``width`` without splitting a word, or None when they cannot.

    Columns holding long text (a cell over SHORT characters) give up room first, the widest first;
    short ones (times, states, names) are wrapped only when that is not enough.
    """
    natural = [max([len(h), *(max(map(len, r[i].splitlines() or [""])) for r in grid)]) for i, h in enumerate(headers)]
    minimum = [min(n, max(_longest_word(h), *(_longest_word(r[i]) for r in grid), 1))
               for i, (h, n) in enumerate(zip(headers, natural, strict=True))]
    room = width - len(GAP) * (len(headers) - 1)
    if sum(minimum) > room:
        return None
    widths = list(natural)
    long_text = [any(len(r[i]) > SHORT for r in grid) for i in range(len(headers))]
    for phase in (True, False):
        while sum(widths) > room:
            shrinkable = [i for i in range(len(widths)) if widths[i] > minimum[i] and (long_text[i] or not phase)]
            if not shrinkable:
                break
            widest = max(shrinkable, key=lambda i: widths[i])
            widths[widest] -= 1
    return widths


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for part in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(part, width, break_long_words=True, break_on_hyphens=False,
                                   replace_whitespace=False, drop_whitespace=True) or [""])
    return lines


def _records(headers: Sequence[str], grid: Sequence[Sequence[str]], width: int) -> str:
    """Return each row as a block of ``column  value`` lines (for tables too wide for the terminal)."""
    key = max(len(h) for h in headers)
    room = max(20, width - key - len(GAP))
    out: list[str] = []
    for n, r in enumerate(grid, 1):
        out.append(f"-- {n} ".ljust(width, "-"))
        for h, text in zip(headers, r, strict=True):
            for k, line in enumerate(_wrap(text, room)):
                out.append(f"{h if k == 0 else '':<{key}}{GAP}{line}".rstrip())
    return "\n".join(out) + "\n"


def arrow_rows(table: Any) -> list[dict[str, Any]]:
    """Return a pyarrow Table's rows as dicts, MAP values as dicts (pyarrow gives lists of pairs)."""
    columns = [_plain(table.column(i).to_pylist(), table.schema.field(i).type) for i in range(table.num_columns)]
    names = table.column_names
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)] if columns else []


def _plain(values: list[Any], kind: Any) -> list[Any]:
    """Turn the MAPs in ``values`` (of arrow type ``kind``, at any depth) into dicts."""
    import pyarrow as pa

    if pa.types.is_map(kind):
        keys = kind.key_type
        items = kind.item_type
        out: list[Any] = []
        for v in values:
            if v is None:
                out.append(None)
                continue
            ks = _plain([k for k, _ in v], keys)
            vs = _plain([x for _, x in v], items)
            out.append({str(k): x for k, x in zip(ks, vs, strict=True)})
        return out
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return [None if v is None else _plain(v, kind.value_type) for v in values]
    if pa.types.is_struct(kind):
        fields = [kind.field(i) for i in range(kind.num_fields)]
        return [None if v is None else {f.name: _plain([v[f.name]], f.type)[0] for f in fields} for v in values]
    return values


def arrow_csv(table: Any) -> str:
    """Return a pyarrow Table as CSV; MAP, LIST and STRUCT columns written as JSON text."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    for i, field in enumerate(table.schema):
        if pa.types.is_nested(field.type):
            texts = [None if v is None else json_text(v) for v in _plain(table.column(i).to_pylist(), field.type)]
            table = table.set_column(i, pa.field(field.name, pa.string()), pa.array(texts, pa.string()))
    buf = io.BytesIO()
    pcsv.write_csv(table, buf)
    return buf.getvalue().decode()


def emit(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: str | None,
    *,
    empty: str | None = None,
    cell: Cell = cell,
    err: bool = False,
) -> None:
    """Print ``rows`` in ``fmt`` (None: the default for stdout); ``empty`` is said on stderr when there are none.

    JSON holds every key of each row (labels as objects); table, plain and CSV show ``columns``.
    """
    stream = sys.stderr if err else sys.stdout
    fmt = fmt or default_format(stream)
    if fmt == "json":
        click.echo(to_json(list(rows)), err=err)
        return
    if not rows and empty is not None and fmt != "csv":
        click.echo(empty, err=True)
        return
    if fmt == "csv":
        click.echo(rows_to_csv(rows, columns), nl=False, err=err)
    else:
        width = terminal_width() if fmt == "table" else None
        click.echo(render_table(rows, columns, width=width, cell=cell), nl=False, err=err)
