"""Parse the Prometheus text format (0.0.4) and OpenMetrics: a fast path, ``prometheus_client.parser`` as the fallback.

The fast path handles the shape every common exporter writes (``name{a="b",c="d"} value [ts]``,
``# HELP`` / ``# TYPE`` / ``# UNIT`` lines, exemplars in OpenMetrics) with one regex per line and a
cache of series texts already seen, and refuses anything else with ``FastPathMiss``; ``parse``
then hands the whole page to ``prometheus_client``'s parser, which decides (and raises on a
broken page). Both paths give the same samples (tests/test_interop_parser_props.py):

>>> parse('# TYPE up gauge\\nup{job="a"} 1 1700000000000\\n').samples
[ParsedSample(name='up', labels={'job': 'a'}, value=1.0, timestamp_ms=1700000000000)]

Semantics are prometheus_client's where it differs from Prometheus: in the text format a
``counter`` whose samples lack ``_total`` gets it appended (monitorkit's counter views key on
``_total``). Timestamps are milliseconds; OpenMetrics seconds are converted, truncated to ms.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from monitorkit.errors import MonitorkitError

OPENMETRICS = "application/openmetrics-text"
# What Prometheus 2.42 sends: OpenMetrics preferred, the text format next.
ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
          "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped", "unknown", "info", "stateset",
                   "gaugehistogram"})

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_BLOCK = r'\{(?:[^"}\n]|"(?:[^"\\\n]|\\.)*")*\}'
_NAME_RE = re.compile(_NAME)
_SERIES = rf"({_NAME}(?:{_BLOCK})?)"
_TEXT_LINE = re.compile(rf"{_SERIES}[ \t]+([^ \t]+)(?:[ \t]+(-?[0-9]+))?[ \t]*")
_OM_LINE = re.compile(rf"{_SERIES} ([^ ]+)(?: ([^ #][^ ]*))?(?: # {_BLOCK} [^ ]+(?: [^ ]+)?)?")
_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')
_ESCAPES = re.compile(r'\\[\\n"]')
_HELP_ESCAPES = re.compile(r"\\[\\n]")
_SLOTS = {"TYPE": 0, "HELP": 1, "UNIT": 2}  # where parse_rows' meta keeps each: family -> [type, help, unit]
_UNESCAPE = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}


class ParseError(MonitorkitError, ValueError):
    """A page is not valid Prometheus text or OpenMetrics; the message names the first bad line."""


class FastPathMiss(Exception):
    """The fast path met a line it does not handle; the caller falls back to prometheus_client."""


class ParsedSample(NamedTuple):
    """One sample of a page: ``ParsedSample("up", {"job": "a"}, 1.0, None)`` (no timestamp: the scrape's)."""

    name: str
    labels: dict[str, str]
    value: float
    timestamp_ms: int | None


class Family(NamedTuple):
    """A metric family's metadata as declared on the page (type ``untyped`` when only HELP was given)."""

    name: str
    type: str
    help: str = ""
    unit: str = ""


class Exposition(NamedTuple):
    """A parsed page: its samples, its families' metadata, and whether the fast path read it."""

    samples: list[ParsedSample]
    families: dict[str, Family]
    fast: bool


Row = tuple[str, float, "int | None"]  # series text (name{labels}), value, timestamp in ms
Comment = tuple[str, str, str]  # HELP, TYPE or UNIT; family name; text (unescaped help, type or unit)


class PageCache:
    """What repeated pages of one target share: series texts split into (name, labels), comment lines parsed.

    An exporter writes the same lines every scrape, so a page costs a dict lookup per line after the first.
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self.series: dict[str, tuple[str, dict[str, str]]] = {}
        self.comments: dict[str, Comment | None] = {}
        self.max_entries = max_entries

    def trim(self) -> None:
        """Forget everything once past ``max_entries`` (a target whose series churn)."""
        if len(self.series) + len(self.comments) > self.max_entries:
            self.series.clear()
            self.comments.clear()


def is_openmetrics(content_type: str) -> bool:
    """Tell whether a Content-Type names OpenMetrics (Prometheus negotiates it first)."""
    return content_type.strip().lower().startswith(OPENMETRICS)


def _unescape(value: str) -> str:
    return _ESCAPES.sub(lambda m: _UNESCAPE[m.group(0)], value) if "\\" in value else value


def split_series(text: str) -> tuple[str, dict[str, str]]:
    """Split ``name{a="b"}`` into its name and labels, or raise FastPathMiss for anything unusual."""
    brace = text.find("{")
    if brace < 0:
        return text, {}
    block = text[brace + 1 : -1]
    pairs = _PAIR.findall(block)
    # findall skips what does not match: the lengths prove the block held nothing else.
    body = block[:-1] if block.endswith(",") and pairs else block
    if len(body) != sum(len(k) + len(v) + 3 for k, v in pairs) + max(len(pairs) - 1, 0):
        raise FastPathMiss(text)
    labels = {k: _unescape(v) for k, v in pairs}
    if len(labels) != len(pairs) or "__name__" in labels:
        raise FastPathMiss(text)
    return text[:brace], labels


def _om_timestamp(text: str) -> int:
    """Return an OpenMetrics timestamp (seconds, exact decimal) as milliseconds, truncated like prometheus_client."""
    try:
        whole, _, frac = text.partition(".")
        if "e" not in text.lower() and whole.lstrip("-").isdigit() and (not frac or frac.isdigit()):
            sign = -1 if whole.startswith("-") else 1
            return int(whole) * 1000 + sign * int((frac + "000")[:3])
        return int(Decimal(text) * 1000)
    except (InvalidOperation, ValueError):
        raise FastPathMiss(text) from None


def _comment(line: str, openmetrics: bool) -> Comment | None:
    """Parse a HELP/TYPE/UNIT line (None for other comments); miss on anything unusual."""
    parts = line.split(None, 3)
    if len(parts) < 3 or parts[1] not in ("HELP", "TYPE", "UNIT"):
        if openmetrics or (len(parts) >= 2 and parts[1] in ("HELP", "TYPE")):
            raise FastPathMiss(line)  # a bare "# HELP" or an OpenMetrics comment: the fallback decides
        return None
    kind, name = parts[1], parts[2]
    rest = parts[3] if len(parts) == 4 else ""
    if not _NAME_RE.fullmatch(name) or (kind == "TYPE" and rest not in TYPES) or (kind == "UNIT" and not openmetrics):
        raise FastPathMiss(line)
    if kind == "HELP" and "\\" in rest:
        rest = (_ESCAPES if openmetrics else _HELP_ESCAPES).sub(lambda m: _UNESCAPE[m.group(0)], rest)
    return kind, name, rest


def parse_rows(text: str, *, openmetrics: bool = False, cache: PageCache | None = None,
               meta: dict[str, list[str]] | None = None) -> list[Row]:
    """Return the page's (series text, value, ms) rows by the fast path; FastPathMiss: the fallback must read it.

    In the text format a counter family ``foo`` stores its samples ``foo`` as ``foo_total``, as
    prometheus_client does: the family is the one the last HELP/TYPE line opened, until a sample
    of another name ends it.
    """
    comments = cache.comments if cache is not None else {}
    rows: list[Row] = []
    line_re = _OM_LINE if openmetrics else _TEXT_LINE
    family, family_type, counter = "", "", ""  # counter: the text-format family whose samples get _total
    ended = False
    for line in text.split("\n"):
        if ended:
            if line:
                raise FastPathMiss("content after # EOF")
            continue
        if not line:
            continue
        if line[0] == "#":
            if openmetrics and line == "# EOF":
                ended = True
                continue
            try:
                parsed = comments[line]
            except KeyError:
                parsed = comments[line] = _comment(line, openmetrics)
            if parsed is None:
                continue
            kind, name, rest = parsed
            if meta is not None:
                slot = meta.get(name)
                if slot is None:
                    slot = meta[name] = ["untyped", "", ""]
                slot[_SLOTS[kind]] = rest
            if not openmetrics and kind != "UNIT":
                if name != family:
                    family, family_type = name, "untyped"
                if kind == "TYPE":
                    family_type = rest
                counter = family if family_type == "counter" and not family.endswith("_total") else ""
            continue
        match = line_re.fullmatch(line)
        if match is None:
            raise FastPathMiss(line)
        series, value, ts = match.groups()
        if counter:
            if series == counter or series.startswith(counter + "{"):
                series = counter + "_total" + series[len(counter):]
            else:
                family = counter = ""  # a sample of another name ends the family
        if "_" in value:
            raise FastPathMiss(line)
        try:
            number = float(value)
        except ValueError:
            raise FastPathMiss(line) from None
        if ts is None:
            rows.append((series, number, None))
        else:
            rows.append((series, number, _om_timestamp(ts) if openmetrics else int(ts)))
    if openmetrics and not ended:
        raise FastPathMiss("no # EOF")
    return rows


def parse_fast(text: str, *, openmetrics: bool = False, cache: PageCache | None = None) -> Exposition:
    """Parse by the fast path only (raises FastPathMiss); ``cache`` keeps what a target's pages repeat."""
    meta: dict[str, list[str]] = {}
    rows = parse_rows(text, openmetrics=openmetrics, cache=cache, meta=meta)
    known = cache.series if cache is not None else {}
    out: list[ParsedSample] = []
    for series, value, ts in rows:
        split = known.get(series)
        if split is None:
            split = known[series] = split_series(series)
        out.append(ParsedSample(split[0], split[1], value, ts))
    return Exposition(out, families_of(meta), True)


def families_of(meta: dict[str, list[str]]) -> dict[str, Family]:
    """Return Family records from parse_rows' ``meta`` (family -> [type, help, unit])."""
    return {name: Family(name, *slot) for name, slot in meta.items()}


def parse_fallback(text: str, *, openmetrics: bool = False) -> Exposition:
    """Parse with prometheus_client's parser; ParseError with its reason on a broken page."""
    if openmetrics:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families

        reader = om_families
    else:
        from prometheus_client.parser import text_string_to_metric_families as text_families

        reader = text_families
    samples: list[ParsedSample] = []
    families: dict[str, Family] = {}
    try:
        for fam in reader(text):
            if fam.name:
                families[fam.name] = Family(fam.name, fam.type, fam.documentation, getattr(fam, "unit", "") or "")
            for s in fam.samples:
                samples.append(ParsedSample(s.name, dict(s.labels), float(s.value), _fallback_ms(s.timestamp)))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ParseError(f"not valid {'OpenMetrics' if openmetrics else 'Prometheus text'}: {exc}") from None
    return Exposition(samples, families, False)


def _fallback_ms(ts: object) -> int | None:
    if ts is None:
        return None
    sec, nsec = getattr(ts, "sec", None), getattr(ts, "nsec", None)
    if sec is not None and nsec is not None:
        return int(sec) * 1000 + int(nsec) // 1_000_000
    return round(float(ts) * 1000)  # type: ignore[arg-type]


def parse(text: str, content_type: str = "", *, cache: PageCache | None = None) -> Exposition:
    """Parse a page by its Content-Type: the fast path, else prometheus_client's parser."""
    openmetrics = is_openmetrics(content_type)
    try:
        return parse_fast(text, openmetrics=openmetrics, cache=cache)
    except FastPathMiss:
        return parse_fallback(text, openmetrics=openmetrics)
