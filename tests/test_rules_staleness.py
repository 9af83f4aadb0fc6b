"""Stale markers end a vanished series at once: in the window macros, in instant(), and from scrapes."""

from __future__ import annotations

from datetime import timedelta

from interop_helpers import exporter
from rules_helpers import T0
from shared_helpers import wait_for

from monitorkit.interop.scrape import parse_job
from monitorkit.interop.scraper import ScrapeService
from monitorkit.rules.staleness import SeriesTracker, mark_stale, series_key
from monitorkit.samples import Sample, utcnow
from monitorkit.store import Store


def s(seconds: float, name: str, value: float, **labels: str) -> Sample:
    return Sample(T0 + timedelta(seconds=seconds), name, labels, value, "h1")


def test_the_tracker_names_the_series_a_report_lacks() -> None:
    tracker = SeriesTracker()
    assert tracker.vanished([s(0, "m", 1, disk="a"), s(0, "m", 1, disk="b")]) == []
    assert tracker.vanished([s(10, "m", 1, disk="a")]) == [series_key("h1", "m", {"disk": "b"})]
    assert tracker.vanished([s(20, "m", 1, disk="a"), s(20, "m", 1, disk="b")]) == []


def test_a_marked_series_leaves_every_window_at_once_and_comes_back_with_new_samples(store: Store) -> None:
    store.write([s(t, "m", 95, disk=d) for t in (0, 10, 20) for d in ("a", "b")])
    store.flush()
    at = T0 + timedelta(seconds=30)
    assert store.submit(lambda con: mark_stale(con, [series_key("h1", "m", {"disk": "b"})], at)).result() == 1

    def disks(sql: str, seconds: float) -> list[str]:
        when = (T0 + timedelta(seconds=seconds)).isoformat()
        return [r[0] for r in store.query(sql.format(t=f"TIMESTAMPTZ '{when}'"))]

    window = "SELECT labels['disk'] FROM {kind}('m', {{t}} - INTERVAL 5 MINUTE, {{t}}) ORDER BY 1"
    gauge, counter = window.format(kind="gauge_window"), window.format(kind="counter_window")
    instant = "SELECT labels['disk'] FROM instant('m', {t}) ORDER BY 1"
    for sql in (gauge, counter, instant):
        assert disks(sql, 25) == ["a", "b"]  # before the marker
        assert disks(sql, 30) == ["a"]  # from the marker on, though its samples are still in the window
    store.write([s(40, "m", 95, disk="b")])
    store.flush()
    for sql in (gauge, counter, instant):
        assert disks(sql, 45) == ["a", "b"]


def test_a_scrape_that_no_longer_returns_a_series_marks_it_stale(store: Store) -> None:
    pages = [b"disk_used{mount=\"/\"} 1\ndisk_used{mount=\"/var\"} 2\n", b"disk_used{mount=\"/\"} 1\n"]
    served: list[int] = []

    def respond(handler: object) -> tuple[int, dict[str, str], bytes]:
        served.append(1)
        return 200, {}, pages[0] if len(served) <= 2 else pages[1]

    with exporter(respond) as (address, _):
        service = ScrapeService([parse_job({"job": "app", "targets": [address], "interval": "0.2s"})])
        service.start_on(store)
        try:
            wait_for(lambda: store.query("SELECT count(*) FROM stale_markers")[0][0] == 1, 15, "a stale marker")
        finally:
            service.stop()
    store.flush()
    [(mount,)] = store.query("SELECT s.labels['mount'] FROM stale_markers m JOIN series s USING (series_id)")
    assert mount == "/var"
    now = utcnow().isoformat()
    live = store.query(f"SELECT labels['mount'] FROM instant('disk_used', TIMESTAMPTZ '{now}') ORDER BY 1")
    assert live == [("/",)]  # without the marker /var would last the 5-minute lookback


def test_remote_written_stale_markers_end_the_series(store: Store) -> None:
    import numpy as np

    from monitorkit.interop.bulk import ColumnWriter, SeriesSpec

    stale = float(np.frombuffer(bytes.fromhex("020000000000f07f"), "<f8")[0])  # Prometheus's StaleNaN
    writer = ColumnWriter(store)
    spec = SeriesSpec("h1", "queue_depth", {"job": "app"})
    ms = int(T0.timestamp() * 1000)

    def send(offset_s: int, value: float) -> None:
        writer.write(np.array([-1]), {0: spec}, np.array([0]), np.array([ms + offset_s * 1000]), np.array([value]))

    send(0, 5.0)
    send(15, 7.0)
    send(30, stale)  # the series vanished from the sender's scrape
    at = (T0 + timedelta(seconds=45)).isoformat()
    assert store.query("SELECT time FROM stale_markers") == [(T0 + timedelta(seconds=30),)]
    assert store.query(f"SELECT value FROM instant('queue_depth', TIMESTAMPTZ '{at}')") == []
    assert store.query("SELECT count(*) FROM samples_raw")[0][0] == 2  # the marker is no sample
