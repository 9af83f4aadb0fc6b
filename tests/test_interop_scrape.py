"""Scraping canned exporters on loopback: configuration, labels, negotiation, failures, limits, target files."""

from __future__ import annotations

import gzip
import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from interop_helpers import exporter
from shared_helpers import wait_for
from store_helpers import isolated_settings

from monitorkit.config import load_settings
from monitorkit.errors import ConfigError
from monitorkit.interop.exposition import ACCEPT
from monitorkit.interop.scrape import TargetFiles, host_of, jobs_from_settings, parse_job, resolve_targets
from monitorkit.interop.scraper import ScrapeService
from monitorkit.interop.targets import TargetScraper
from monitorkit.samples import HOST
from monitorkit.store import Store

PAGE = (
    b"# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n"
    b'http_requests_total{code="200",job="app"} 7\n'
    b'http_requests_total{code="500",job="app"} 1\n'
    b"# TYPE temperature gauge\ntemperature 21.5 1700000000123\n"
    b"# TYPE broken_gauge gauge\nbroken_gauge NaN\n"
)


def scraper_for(address: str, **job: object) -> TargetScraper:
    (target,) = resolve_targets([parse_job({"job": "app", "targets": [address], "interval": "1s", **job})])
    return TargetScraper(target)


def by_name(samples: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for s in samples:
        out.setdefault(s.name, []).append(s)
    return out


def test_a_scrape_labels_series_with_job_and_instance_and_adds_the_synthetic_series() -> None:
    with exporter(lambda h: (200, {}, PAGE)) as (address, seen):
        report = scraper_for(address, labels={"env": "test"}).scrape(datetime(2026, 1, 1, tzinfo=UTC))
    assert report.up and report.error is None and report.fast
    got = by_name(report.samples)
    ok = next(s for s in got["http_requests_total"] if s.labels["code"] == "200")
    # The scraped job clashes with the target's: Prometheus keeps it as exported_job (honor_labels = false).
    assert ok.labels == {"code": "200", "exported_job": "app", "job": "app", "instance": address, "env": "test"}
    assert ok.host == HOST  # a loopback instance is this machine
    assert got["temperature"][0].time == datetime.fromtimestamp(1700000000.123, UTC)  # its own timestamp
    assert "broken_gauge" not in got and report.dropped == 1  # NaN is not stored
    assert [s.value for s in got["up"]] == [1.0]
    assert got["scrape_samples_scraped"][0].value == 4
    assert got["scrape_samples_post_metric_relabeling"][0].value == 4
    assert got["scrape_duration_seconds"][0].value > 0
    assert got["up"][0].labels == {"job": "app", "instance": address, "env": "test"}
    headers = seen[0]
    assert headers["Accept"] == ACCEPT and headers["X-Prometheus-Scrape-Timeout-Seconds"] == "1"


def test_honor_labels_keeps_the_scraped_ones_and_params_auth_path_reach_the_exporter(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    with exporter(lambda h: (200, {}, PAGE)) as (address, seen):
        report = scraper_for(address, honor_labels=True, metrics_path="/probe", params={"module": ["a", "b"]},
                             bearer_token_file=str(token)).scrape()
    ok = next(s for s in report.samples if s.name == "http_requests_total")
    assert ok.labels["job"] == "app" and "exported_job" not in ok.labels
    assert seen[0]["path"] == "/probe?module=a&module=b"
    assert seen[0]["Authorization"] == "Bearer s3cret"


def test_openmetrics_is_parsed_when_the_exporter_answers_it_and_gzip_is_inflated() -> None:
    om = b'# TYPE jobs counter\njobs_total{kind="x"} 3 # {trace_id="a"} 1\njobs_created 1.7e9\n# EOF\n'
    answer = (200, {"Content-Type": "application/openmetrics-text; version=1.0.0", "Content-Encoding": "gzip"},
              gzip.compress(om))
    with exporter(lambda h: answer) as (address, _):
        report = scraper_for(address).scrape()
    assert report.up, report.error
    assert {s.name for s in report.samples} >= {"jobs_total", "jobs_created"}


@pytest.mark.parametrize("answer, error", [
    ((500, {}, b"oops"), "server returned HTTP status 500"),
    ((200, {}, b'bad{a="1" 2\n'), "not valid Prometheus text"),
    ((200, {"Content-Encoding": "gzip"}, b"not gzip"), "gzip body does not inflate"),
])
def test_failures_set_up_to_zero_with_the_error_and_store_nothing_else(answer: tuple, error: str) -> None:
    with exporter(lambda h: answer) as (address, _):
        report = scraper_for(address).scrape()
    assert not report.up and error in (report.error or "")
    assert {s.name for s in report.samples} == {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                                                "scrape_samples_post_metric_relabeling"}
    assert by_name(report.samples)["up"][0].value == 0.0


def test_a_refused_connection_is_down_too() -> None:
    with exporter(lambda h: (200, {}, PAGE)) as (address, _):
        pass  # closed: nobody listens any more
    report = scraper_for(address).scrape()
    assert not report.up and "Connection refused" in (report.error or "")


def test_sample_limit_fails_the_whole_scrape_as_prometheus_does() -> None:
    with exporter(lambda h: (200, {}, PAGE)) as (address, _):
        report = scraper_for(address, sample_limit=3).scrape()
    assert not report.up and "sample_limit exceeded: 4 samples > limit 3" in (report.error or "")
    assert by_name(report.samples)["scrape_samples_scraped"][0].value == 4
    assert "http_requests_total" not in by_name(report.samples)


def test_a_trickling_exporter_is_cut_at_the_total_deadline() -> None:
    def trickle(handler):  # headers sent, then a byte every 0.3 s: each read is quick, the whole is not
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(30):
            try:
                handler.wfile.write(b"#")
                handler.wfile.flush()
            except OSError:
                return None
            time.sleep(0.3)
        return None

    with exporter(trickle) as (address, _):
        started = time.monotonic()
        report = scraper_for(address, timeout="1s").scrape()
        took = time.monotonic() - started
    assert not report.up and "deadline" in (report.error or "")
    assert took < 3.0, took


def test_one_hanging_target_does_not_delay_another(tmp_path: Path) -> None:
    release = threading.Event()

    def hang(handler):
        release.wait(10)
        return None

    with exporter(lambda h: (200, {}, PAGE)) as (good, _), exporter(hang) as (bad, _), \
            Store(tmp_path / "m.duckdb") as store:
        jobs = [parse_job({"job": "good", "targets": [good], "interval": "0.2s", "timeout": "0.2s"}),
                parse_job({"job": "bad", "targets": [bad], "interval": "1s", "timeout": "1s"})]
        service = ScrapeService(jobs)
        service.start_on(store)
        try:
            wait_for(lambda: service.loops[("good", good)].scrapes >= 8, 10, "8 scrapes of the good target")
            states = {s.job: s for s in service.targets()}
            wait_for(lambda: {s.job: s for s in service.targets()}["bad"].health == "down", 5, "the bad one down")
            assert states["good"].health == "up"
        finally:
            release.set()
            started = time.monotonic()
            service.stop()
            assert time.monotonic() - started < 5
        store.flush()
        rows = store.query("SELECT labels['job'], max(value) FROM samples WHERE name = 'up' GROUP BY 1 ORDER BY 1")
        assert rows == [("bad", 0.0), ("good", 1.0)]
        recorded = store.query("SELECT job, health, last_error FROM scrape_targets ORDER BY job")
        assert recorded[0][:2] == ("bad", "down") and "deadline" in recorded[0][2]
        assert recorded[1] == ("good", "up", None)


def test_target_files_are_read_again_when_they_change_and_a_broken_one_keeps_its_targets(tmp_path: Path) -> None:
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps([{"targets": ["db1:9187"], "labels": {"env": "prod"}}]))
    job = parse_job({"job": "pg", "target_files": ["*.json"]})
    files = TargetFiles(tmp_path)
    (only,) = resolve_targets([job], files)
    assert only.labels == {"job": "pg", "instance": "db1:9187", "env": "prod"} and only.host == "db1"
    targets.write_text(json.dumps([{"targets": ["db1:9187", "db2:9187"]}]))
    os.utime(targets, (time.time() + 5, time.time() + 5))  # a changed mtime even within the same second
    assert [t.address for t in resolve_targets([job], files)] == ["db1:9187", "db2:9187"]
    targets.write_text("[{not json")
    os.utime(targets, (time.time() + 10, time.time() + 10))
    assert [t.address for t in resolve_targets([job], files)] == ["db1:9187", "db2:9187"]
    assert "not valid JSON" in files.errors[str(targets)]
    (tmp_path / "more.yml").write_text("- targets: ['db3:9187']\n  labels: {host: db-three}\n")
    three = resolve_targets([parse_job({"job": "pg", "target_files": ["*.yml"]})], files)
    assert three[0].host == "db-three" and "host" not in three[0].labels


def test_the_service_follows_a_target_file(tmp_path: Path) -> None:
    with exporter(lambda h: (200, {}, PAGE)) as (address, _), Store(tmp_path / "m.duckdb") as store:
        targets = tmp_path / "t.json"
        targets.write_text("[]")
        service = ScrapeService([parse_job({"job": "app", "target_files": [str(targets)], "interval": "0.2s"})])
        service.start_on(store)
        try:
            assert service.targets() == []
            targets.write_text(json.dumps([{"targets": [address]}]))
            os.utime(targets, (time.time() + 5, time.time() + 5))
            wait_for(lambda: [s.health for s in service.targets()] == ["up"], 10, "the new target scraped")
            targets.write_text("[]")
            os.utime(targets, (time.time() + 10, time.time() + 10))
            wait_for(lambda: service.targets() == [], 10, "the removed target gone")
        finally:
            service.stop()


def test_scrape_tables_in_monitorkit_toml(tmp_path: Path) -> None:
    config = tmp_path / "monitorkit.toml"
    config.write_text(
        '[[scrape]]\njob = "node"\ntargets = ["127.0.0.1:9100"]\ninterval = "5s"\n\n'
        '[[scrape]]\njob = "pg"\ntarget_files = ["pg/*.json"]\nbasic_auth = { username = "u", password = "p" }\n'
    )
    jobs = jobs_from_settings(load_settings(config, env={}))
    assert [(j.job, j.interval, j.timeout) for j in jobs] == [("node", 5.0, 5.0), ("pg", 15.0, 10.0)]
    assert jobs[1].basic_auth is not None and jobs[1].basic_auth.username == "u"
    assert jobs_from_settings(isolated_settings()) == []


@pytest.mark.parametrize("table, message", [
    ({"targets": ["a:1"]}, "needs job"),
    ({"job": "x"}, "needs targets"),
    ({"job": "x", "targets": ["http://a:1/metrics"]}, "is not host:port"),
    ({"job": "x", "targets": ["a:1"], "interval": "5s", "timeout": "10s"}, "longer than interval"),
    ({"job": "x", "targets": ["a:1"], "scheme": "ftp"}, "scheme must be http or https"),
    ({"job": "x", "targets": ["a:1"], "sample_limt": 5}, "unknown key(s) sample_limt"),
    ({"job": "x", "targets": ["a:1"], "labels": {"__x": "1"}}, "invalid label name"),
])
def test_bad_jobs_are_refused_with_what_to_fix(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_job(table)


def test_host_of_an_instance() -> None:
    assert host_of("db1.example:9100") == "db1.example"
    assert host_of("[2001:db8::1]:9100") == "2001:db8::1"
    assert host_of("localhost:9100") == HOST and host_of("127.0.0.2:1") == HOST
