"""The exposition parser on real and hand-written pages: fast path, fallback, OpenMetrics, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitorkit.interop.exposition import (
    FastPathMiss,
    PageCache,
    ParseError,
    is_openmetrics,
    parse,
    parse_fallback,
    parse_fast,
    split_series,
)

NODE_EXPORTER = (Path(__file__).parent / "interop" / "node_exporter.txt").read_text()


def as_set(samples: list) -> set:
    """Samples as comparable tuples (NaN equal to itself)."""
    return {(s.name, tuple(sorted(s.labels.items())), "nan" if s.value != s.value else s.value, s.timestamp_ms)
            for s in samples}


def test_a_real_node_exporter_page_takes_the_fast_path_and_matches_prometheus_client() -> None:
    fast = parse(NODE_EXPORTER, "text/plain; version=0.0.4")
    assert fast.fast
    assert as_set(fast.samples) == as_set(parse_fallback(NODE_EXPORTER).samples)
    cpu = [s for s in fast.samples if s.name == "node_cpu_seconds_total"]
    assert cpu and {"cpu", "mode"} <= set(cpu[0].labels)
    assert fast.families["node_cpu_seconds_total"].type == "counter"
    assert fast.families["node_memory_MemAvailable_bytes"].help.startswith("Memory information field")
    # Histogram/summary parts are samples of their own, as Prometheus stores them.
    assert {"go_gc_duration_seconds_sum", "go_gc_duration_seconds_count"} <= {s.name for s in fast.samples}


def test_the_cache_gives_the_same_samples_on_the_next_page() -> None:
    cache = PageCache()
    first = parse_fast(NODE_EXPORTER, cache=cache)
    again = parse_fast(NODE_EXPORTER, cache=cache)
    assert first.samples == again.samples
    assert len(cache.series) == len(first.samples)


def test_timestamps_escapes_and_counters_without_total() -> None:
    page = (
        "# HELP http_requests Requests with a \\\\ and a \\n in the help.\n"
        "# TYPE http_requests counter\n"
        'http_requests{path="/a\\"b",note="x\\ny\\\\z"} 3 1700000000123\n'
        "# TYPE temp gauge\n"
        "temp -1.5e3\n"
        "temp_untyped NaN\n"
        "# a plain comment\n"
        'nolabels_trailing_comma{a="1",} +Inf\n'
    )
    got = parse(page)
    assert got.fast
    assert as_set(got.samples) == as_set(parse_fallback(page).samples)
    by_name = {s.name: s for s in got.samples}
    assert by_name["http_requests_total"].labels == {"path": '/a"b', "note": "x\ny\\z"}
    assert by_name["http_requests_total"].timestamp_ms == 1700000000123
    assert by_name["temp"].value == -1500.0 and by_name["temp"].timestamp_ms is None
    assert got.families["http_requests"].help == "Requests with a \\ and a \n in the help."


def test_openmetrics_with_exemplars_units_created_and_second_timestamps() -> None:
    page = (
        "# TYPE rpc_seconds histogram\n"
        "# UNIT rpc_seconds seconds\n"
        "# HELP rpc_seconds RPC latency.\n"
        'rpc_seconds_bucket{le="0.1"} 2 1700000000.5 # {trace_id="abc"} 0.05 1700000000.4\n'
        'rpc_seconds_bucket{le="+Inf"} 3 1700000000.5\n'
        "rpc_seconds_count 3 1700000000.5\n"
        "rpc_seconds_sum 0.4 1700000000.5\n"
        "rpc_seconds_created 1690000000.25 1700000000.5\n"
        "# TYPE jobs counter\n"
        'jobs_total{kind="x"} 7 # {span="1"} 1\n'
        "# EOF\n"
    )
    assert is_openmetrics("application/openmetrics-text; version=1.0.0; charset=utf-8")
    got = parse(page, "application/openmetrics-text; version=1.0.0")
    assert got.fast
    assert as_set(got.samples) == as_set(parse_fallback(page, openmetrics=True).samples)
    bucket = next(s for s in got.samples if s.labels.get("le") == "0.1")
    assert bucket.timestamp_ms == 1700000000500 and bucket.value == 2
    assert got.families["rpc_seconds"].unit == "seconds"


@pytest.mark.parametrize("page", [
    '{"utf8.name", a="b"} 1\n',  # quoted UTF-8 name (prometheus_client 0.2x syntax)
    '  indented{a="b"} 1\n',
    'spaced{ a = "b" } 1\n',
    '{__name__="by_label",a="b"} 2\n',
])
def test_unusual_shapes_miss_the_fast_path_and_the_fallback_reads_them(page: str) -> None:
    with pytest.raises(FastPathMiss):
        parse_fast(page)
    got = parse(page)
    assert not got.fast
    assert got.samples == parse_fallback(page).samples and got.samples


def test_windows_line_ends_read_the_same_by_both_paths() -> None:
    page = '# TYPE crlf gauge\r\ncrlf{a="b"} 1\r\n'
    assert as_set(parse(page).samples) == as_set(parse_fallback(page).samples) == {("crlf", (("a", "b"),), 1.0, None)}


@pytest.mark.parametrize("page, openmetrics", [
    ('broken{a="b" 1\n', False),
    ("value_missing\n", False),
    ("one_0 1_000\n", False),
    ('# TYPE x gauge\nx 1\n', True),  # OpenMetrics without # EOF
])
def test_broken_pages_raise_a_parse_error_naming_the_format(page: str, openmetrics: bool) -> None:
    with pytest.raises(ParseError, match="OpenMetrics" if openmetrics else "Prometheus text"):
        parse(page, "application/openmetrics-text" if openmetrics else "text/plain")


def test_split_series_refuses_garbage_between_labels() -> None:
    assert split_series('m{a="1",b="2"}') == ("m", {"a": "1", "b": "2"})
    for bad in ('m{a="1"b="2"}', 'm{a="1",,b="2"}', 'm{a="1",a="2"}', 'm{a="1"x}'):
        with pytest.raises(FastPathMiss):
            split_series(bad)
