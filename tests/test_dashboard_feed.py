"""The shared feed (one query per poll for every session), history per tier, /metrics text and quantiles."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitorkit.dashboard import exposition
from monitorkit.dashboard.feed import Feed
from monitorkit.dashboard.history import load_history, resolve, step_for, tier_for
from monitorkit.dashboard.panels import cached_metrics, histogram_quantile
from monitorkit.dashboard.reader import StoreReader
from monitorkit.dashboard.records import Delta, Points, SeriesInfo, merge_deltas
from monitorkit.rules.staleness import SeriesTracker, series_key, submit_stale
from monitorkit.samples import Sample, utcnow
from monitorkit.store import Store


def _feed(store: Store, **kw: Any) -> Feed:
    return Feed(StoreReader(store), cached={"cpu_percent", "net_bytes_recv_total"}, **kw)


def _write(store: Store, *samples: Sample) -> None:
    store.write(samples)
    store.flush()


def test_new_sessions_start_from_the_cache_and_polls_return_only_new_rows(store: Store) -> None:
    start = utcnow() - timedelta(seconds=30)
    _write(store, *(Sample(start + timedelta(seconds=i), "cpu_percent", {}, float(i)) for i in range(10)),
           Sample(start, "load1", {}, 0.5))
    feed = _feed(store)
    sub, snap = feed.subscribe(lambda d: None)
    cpu = next(i for i in snap.series.values() if i.name == "cpu_percent")
    assert snap.history[(cpu.series_id, "v")].values == tuple(float(i) for i in range(10))
    assert all(k[0] == cpu.series_id for k in snap.history), "only the charted metrics are cached"
    assert feed.poll().points == 0
    _write(store, Sample(start + timedelta(seconds=20), "cpu_percent", {}, 42.0))
    delta = feed.poll()
    assert delta.values[cpu.series_id].values == (42.0,) and delta.new_series == ()
    assert delta.newest_ms == pytest.approx((start + timedelta(seconds=20)).timestamp() * 1000)
    _write(store, Sample(start + timedelta(seconds=21), "disk_used_percent", {"mount": "/"}, 50.0))
    delta = feed.poll()
    assert [(s.name, dict(s.labels)) for s in delta.new_series] == [("disk_used_percent", {"mount": "/"})]
    feed.unsubscribe(sub)


def test_counters_become_rates_and_resets_are_handled(store: Store) -> None:
    t0 = utcnow() - timedelta(seconds=10)
    feed = _feed(store)
    feed.prime()
    _write(store, Sample(t0, "net_bytes_recv_total", {"nic": "eth0"}, 1000.0))
    feed.poll()
    _write(store, Sample(t0 + timedelta(seconds=2), "net_bytes_recv_total", {"nic": "eth0"}, 1600.0))
    (rate,) = feed.poll().rates.values()
    assert rate.values == (300.0,)
    _write(store, Sample(t0 + timedelta(seconds=4), "net_bytes_recv_total", {"nic": "eth0"}, 100.0))
    (rate,) = feed.poll().rates.values()
    assert rate.values == (50.0,), "a counter that went down restarted from zero"


def test_late_rows_of_other_series_are_picked_up_once(store: Store) -> None:
    now = utcnow()
    feed = _feed(store)
    feed.prime()
    _write(store, Sample(now, "cpu_percent", {}, 1.0))
    feed.poll()
    _write(store, Sample(now - timedelta(seconds=2), "tool_runs_total", {"tool": "x", "outcome": "ok"}, 3.0))
    late = feed.poll()
    assert [s.name for s in late.new_series] == ["tool_runs_total"]
    assert feed.poll().points == 0, "seen once, not again"


def test_one_query_per_poll_whatever_the_number_of_sessions(store: Store) -> None:
    feed = _feed(store)
    feed.prime()
    got: list[list[Delta]] = [[] for _ in range(50)]
    subs = [feed.subscribe(got[i].append)[0] for i in range(50)]

    def broken_session(delta: Delta) -> None:
        raise ZeroDivisionError("a session whose document is gone")

    broken = feed.subscribe(broken_session)[0]
    before = feed.reader.queries
    for i in range(3):
        _write(store, Sample(utcnow(), "cpu_percent", {}, float(i)))
        feed.dispatch(feed.poll())
    assert feed.reader.queries - before == 3
    assert all(len(deltas) == 3 for deltas in got)
    assert broken not in feed._subscribers and feed.subscribers == 50, "a failing session is dropped"
    for sub in subs:
        feed.unsubscribe(sub)
    assert feed.subscribers == 0


def _alert(con: Any, aid: int, state: str, updated: datetime, acked_by: str | None = None) -> None:
    con.execute(
        "INSERT OR REPLACE INTO alerts (id, rule, fingerprint, labels, kind, severity, state, value, summary, since, "
        "updated_at, acked_by, acked_at, inhibited) VALUES (?, 'cpu_high', 'f', MAP {'alertname': 'cpu_high'}, 'resource', "
        "'critical', ?, 97.5, 'CPU is high', ?, ?, ?, ?, false)",
        [aid, state, updated, updated, acked_by, updated if acked_by else None],
    )


def test_alerts_health_and_runs_come_in_the_same_query(store: Store) -> None:
    now = utcnow()
    store.submit(lambda con: _alert(con, 1, "firing", now - timedelta(hours=3))).result()
    feed = _feed(store)
    sub, snap = feed.subscribe(lambda d: None)
    assert snap.alerts[1].state == "firing", "firing alerts are loaded however old"
    later = now + timedelta(seconds=1)

    def changes(con: Any) -> None:
        con.execute("UPDATE alerts SET acked_by = 'ana', acked_at = ? WHERE id = 1", [later])
        con.execute("INSERT INTO health_status VALUES ('writer', 'health_writer', 'degraded', 'slow commits', ?, ?)",
                    [later, later])
        con.execute("INSERT INTO health_history VALUES (?, 'writer', 'health_writer', 'degraded', 'ok', 'slow commits')",
                    [later])
        con.execute("INSERT INTO executions VALUES ('r1', 'reindex', ?, 2.5, 'error', 'Timeout', 'took too long', "
                    "MAP {}, 'web1', 42)", [now])

    store.submit(changes).result()
    before = feed.reader.queries
    delta = feed.poll()
    assert feed.reader.queries - before == 1
    assert [(a.id, a.acked_by) for a in delta.alerts] == [(1, "ana")], "an ack alone (acked_at) is a change"
    assert [(h.component, h.status) for h in delta.health] == [("writer", "degraded")]
    assert [(e.component, e.previous, e.status) for e in delta.health_events] == [("writer", "ok", "degraded")]
    assert delta.executions is not None and [(r.tool, r.outcome) for r in delta.executions] == [("reindex", "error")]
    again = feed.poll()
    assert again.alerts == () and again.health == () and again.health_events == () and again.executions is None
    feed.unsubscribe(sub)


def test_the_poll_thread_runs_on_triggers_and_stops(store: Store) -> None:
    feed = _feed(store, tick=0.05, before_poll=store.flush)
    seen = threading.Event()
    feed.subscribe(lambda d: seen.set() if d.points else None)
    feed.start(triggered=True)
    try:
        _write(store, Sample(utcnow(), "cpu_percent", {}, 5.0))
        feed.trigger()
        assert seen.wait(10)
    finally:
        feed.stop()
    assert feed.triggers == 1 and feed.polls >= 1 and feed.subscribers == 0


@pytest.mark.parametrize(("span", "tier", "step"), [
    (300, "raw", 1), (900, "raw", 1), (3600, "raw", 5), (21600, "raw", 30), (86400, "1m", 120),
    (604800, "1m", 900), (2592000, "1m", 3600), (90 * 86400, "1h", 10800),
])
def test_tiers_and_steps_follow_metric_range(span: int, tier: str, step: int) -> None:
    assert tier_for(span) == tier
    assert step_for(span, tier) == step


def test_history_reads_raw_and_rollups(store: Store) -> None:
    base = (utcnow() - timedelta(days=2)).replace(second=0, microsecond=0)
    samples = []
    for i in range(180):
        t = base + timedelta(seconds=10 * i)
        samples.append(Sample(t, "cpu_percent", {}, 50.0))
        samples.append(Sample(t, "net_bytes_recv_total", {"nic": "eth0"}, 1000.0 * i))
    _write(store, *samples)
    store.rollup(utcnow())
    cpu, net = (store.query("SELECT series_id FROM series WHERE name = ?", [n])[0][0]
                for n in ("cpu_percent", "net_bytes_recv_total"))
    reader = StoreReader(store)
    raw = resolve("absolute", start=base, end=base + timedelta(minutes=30))
    assert raw.tier == "raw" and not raw.live
    got = load_history(reader, raw, [cpu], [net])
    assert set(got[(cpu, "v")].values) == {50.0}
    assert set(got[(net, "r")].values) == {100.0}
    week = resolve("7d")
    assert week.tier == "1m" and week.live
    got = load_history(reader, week, [cpu], [net])
    assert set(got[(cpu, "v")].values) == {50.0}
    assert got[(net, "r")].values and all(v == pytest.approx(100.0) for v in got[(net, "r")].values)
    assert load_history(reader, week, [], []) == {}


def test_metrics_text_parses_as_prometheus() -> None:
    series = {
        1: SeriesInfo(1, "web1", "cpu_percent", {"cpu": "0"}),
        2: SeriesInfo(2, "web1", "net_bytes_recv_total", {"nic": 'e"th\\0'}),
        3: SeriesInfo(3, "web1", "req_seconds_bucket", {"le": "0.5"}),
        4: SeriesInfo(4, "web1", "req_seconds_bucket", {"le": "+Inf"}),
        5: SeriesInfo(5, "web1", "req_seconds_count", {}),
        6: SeriesInfo(6, "web1", "req_seconds_sum", {}),
        7: SeriesInfo(7, "web1", "not_sampled", {}),
    }
    latest = {1: (1000.0, 12.5), 2: (1000.0, 5.0), 3: (1000.0, 3.0), 4: (1000.0, 4.0), 5: (1000.0, 4.0), 6: (1000.0, 1.5)}
    text = exposition.render(series, latest, [exposition.Extra("monitorkit_dashboard_sessions", "gauge", {}, 2)])
    families = {f.name: f for f in text_string_to_metric_families(text)}
    # /metrics gives gauges in percent in base units (issue 15): cpu_percent 12.5 is cpu_ratio 0.125.
    assert families["cpu_ratio"].type == "gauge" and families["cpu_ratio"].samples[0].value == 0.125
    assert families["net_bytes_recv"].type == "counter"
    assert families["net_bytes_recv"].samples[0].labels == {"nic": 'e"th\\0', "host": "web1"}
    assert families["req_seconds"].type == "histogram" and len(families["req_seconds"].samples) == 4
    assert families["monitorkit_dashboard_sessions"].samples[0].value == 2
    assert "not_sampled" not in text


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.9, buckets) == pytest.approx(0.5)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.75)
    assert histogram_quantile(0.99, [(0.1, 1.0), (math.inf, 10.0)]) == 0.1, "the +Inf bucket answers its lower bound"
    assert math.isnan(histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]))


def test_every_charted_metric_is_cached() -> None:
    assert {"cpu_percent", "net_bytes_recv_total", "protocol_requests_total",
            "protocol_request_duration_seconds_bucket"} <= cached_metrics()


def test_absolute_ranges_need_an_order() -> None:
    from monitorkit.dashboard.errors import DashboardError

    now = datetime.now(UTC)
    with pytest.raises(DashboardError, match="start before its end"):
        resolve("absolute", start=now, end=now - timedelta(hours=1))
    with pytest.raises(DashboardError, match="unknown range"):
        resolve("2h")


def test_deltas_merge_in_order() -> None:
    from monitorkit.dashboard.records import AlertRow

    alert = AlertRow(1, "r", {}, "critical", "firing", 1.0, "", None, None, 5.0, None, None)
    one = Delta(1, 10.0, (SeriesInfo(1, "h", "cpu_percent", {}),), {1: Points((1.0,), (5.0,))}, {}, (alert,), (), (), None, 1.0)
    two = Delta(2, 20.0, (), {1: Points((2.0,), (6.0,)), 2: Points((2.0,), (7.0,))}, {3: Points((2.0,), (0.5,))},
                (), (), (), (), 2.0)
    merged = merge_deltas([one, two])
    assert merged.seq == 2 and merged.polled_ms == 20.0 and merged.newest_ms == 2.0
    assert merged.values == {1: Points((1.0, 2.0), (5.0, 6.0)), 2: Points((2.0,), (7.0,))}
    assert merged.rates == {3: Points((2.0,), (0.5,))}
    assert merged.alerts == (alert,) and len(merged.new_series) == 1 and merged.executions == ()
    assert merge_deltas([one]) is one


def test_polls_never_rescan_old_history(store: Store) -> None:
    old = utcnow() - timedelta(days=3)
    _write(store, *(Sample(old + timedelta(seconds=i), "cpu_percent", {}, 1.0) for i in range(50)))
    feed = _feed(store)
    feed.prime()
    assert feed.latest == {} and all(not p.times for p in feed.snapshot().history.values()), "nothing in the cache window"
    assert [i.name for i in feed.series.values()] == ["cpu_percent"], "the series is listed (its host can be chosen)"
    assert feed.poll().points == 0, "an empty window does not make the next poll read from the epoch"
    _write(store, Sample(utcnow() + timedelta(hours=1), "cpu_percent", {"cpu": "9"}, 2.0))
    feed.poll()
    _write(store, Sample(utcnow(), "cpu_percent", {}, 3.0))
    assert feed.poll().points == 1, "a sample from the future does not hide the ones that follow"


def test_a_fresh_file_draws_at_long_ranges_from_the_raw_tail(store: Store) -> None:
    # Nothing rolled up yet (a fresh file): the 1-minute and 1-hour ranges read the raw samples instead.
    start = utcnow() - timedelta(minutes=5)
    _write(store, *(Sample(start + timedelta(seconds=10 * i), "cpu_percent", {}, 10.0 + i) for i in range(30)))
    (cpu,) = store.query("SELECT series_id FROM series WHERE name = 'cpu_percent'")[0]
    reader = StoreReader(store)
    for choice in ("7d", "30d", "90d", "1y"):
        rng = resolve(choice)
        got = load_history(reader, rng, [cpu], [])[(cpu, "v")]
        assert got.values and sum(got.counts) == 30, f"{choice}: {got}"
        assert max(got.highs) == 39.0 and min(got.lows) == 10.0


def test_long_ranges_keep_the_peak_a_step_averages_away(store: Store) -> None:
    base = (utcnow() - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    samples = [Sample(base + timedelta(seconds=10 * i), "cpu_percent", {}, 95.0 if i == 500 else 5.0) for i in range(2000)]
    samples += [Sample(base + timedelta(seconds=10 * i), "net_bytes_recv_total", {"nic": "eth0"},
                       100.0 * i + (5e6 if i >= 700 else 0.0)) for i in range(2000)]  # a burst of 5 MB in 10 s
    _write(store, *samples)
    store.rollup(utcnow())
    cpu, net = (store.query("SELECT series_id FROM series WHERE name = ?", [n])[0][0]
                for n in ("cpu_percent", "net_bytes_recv_total"))
    month = resolve("30d")
    assert month.tier == "1m" and month.step == 3600
    got = load_history(StoreReader(store), month, [cpu], [net])
    assert max(got[(cpu, "v")].values) < 10.0, "the hour's average hides the spike"
    assert max(got[(cpu, "v")].highs) == 95.0, "its maximum keeps it"
    rates = got[(net, "r")]
    assert max(rates.values) < 5e6 / 600 and max(rates.highs) > 5e6 / 60, "the burst's minute shows in the envelope"
    assert min(rates.lows) == pytest.approx(10.0)


def test_ranges_reach_a_year_from_the_hourly_tier() -> None:
    year = resolve("1y")
    assert year.tier == "1h" and year.step == 43200 and year.points <= 900


def test_a_stale_marker_ends_a_series_in_the_same_poll_query_until_a_newer_sample(store: Store) -> None:
    t0 = utcnow() - timedelta(seconds=30)

    def nics(at: datetime, *names: str) -> list[Sample]:
        return [s for nic in names for s in (Sample(at, "net_up", {"nic": nic}, 1.0, "web1"),
                                             Sample(at, "net_bytes_recv_total", {"nic": nic}, 100.0, "web1"))]

    tracker = SeriesTracker()  # what the scheduler keeps per collector
    for i in range(2):
        _write(store, *nics(t0 + timedelta(seconds=i), "eth0", "eth1"))
        assert tracker.vanished(nics(t0 + timedelta(seconds=i), "eth0", "eth1")) == []
    feed = _feed(store)
    feed.prime()
    sid = {(i.name, i.labels["nic"]): i.series_id for i in feed.series.values()}
    eth1 = {sid["net_up", "eth1"], sid["net_bytes_recv_total", "eth1"]}
    assert eth1 <= set(feed.latest)
    unplugged = t0 + timedelta(seconds=2)  # eth1 is unplugged: the collect at 2 s lacks it
    _write(store, *nics(unplugged, "eth0"))
    assert submit_stale(store, tracker.vanished(nics(unplugged, "eth0")), unplugged).result() == 2
    before = feed.reader.queries
    delta = feed.poll()
    assert feed.reader.queries - before == 1, "markers come in the poll's one query"
    assert set(delta.ended) == eth1
    assert not eth1 & set(feed.latest) and not eth1 & set(feed.snapshot().latest)
    assert {sid["net_up", "eth0"], sid["net_bytes_recv_total", "eth0"]} <= set(feed.latest)
    again = feed.poll()  # the lateness overlap reads eth1's last samples and its markers again
    assert again.ended == () and not eth1 & set(feed.latest), "its older samples do not bring it back"
    fresh = _feed(store)
    fresh.prime()
    assert not eth1 & set(fresh.latest), "a feed primed after the marker leaves it out too"
    late = t0 + timedelta(seconds=1, milliseconds=500)  # a marker older than the newest sample ends nothing
    submit_stale(store, [series_key("web1", "net_up", {"nic": "eth0"})], late).result()
    assert feed.poll().ended == () and sid["net_up", "eth0"] in feed.latest
    back = t0 + timedelta(seconds=3)  # plugged in again
    _write(store, *nics(back, "eth0", "eth1"))
    delta = feed.poll()
    assert eth1 <= set(feed.latest) and eth1 <= set(delta.values) and delta.ended == ()
    assert sid["net_bytes_recv_total", "eth1"] not in delta.rates, "no rate across the gap (the counter may restart)"
    assert feed.latest[sid["net_up", "eth1"]] == (pytest.approx(back.timestamp() * 1000), 1.0)


def test_merged_deltas_end_what_the_last_one_left_ended() -> None:
    ended = Delta(1, 10.0, (), {}, {}, ended=(1, 2))
    back = Delta(2, 20.0, (), {2: Points((15.0,), (1.0,))}, {})
    later = Delta(3, 30.0, (), {3: Points((25.0,), (1.0,))}, {}, ended=(3,))
    assert merge_deltas([ended, back, later]).ended == (1, 3)
