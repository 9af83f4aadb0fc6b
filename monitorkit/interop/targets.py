"""Scrape one target: fetch, parse, label, limit, and the synthetic ``up`` / ``scrape_*`` series, as Prometheus does."""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime
from typing import NamedTuple

from monitorkit import __version__
from monitorkit.errors import InvalidSampleError
from monitorkit.interop import catalog
from monitorkit.interop.exposition import (
    ACCEPT,
    FastPathMiss,
    PageCache,
    ParseError,
    is_openmetrics,
    parse_fallback,
    parse_rows,
    split_series,
)
from monitorkit.interop.fetch import Fetcher, FetchError, auth_header
from monitorkit.interop.node_exporter import NodeTranslator
from monitorkit.interop.scrape import Target, host_of
from monitorkit.samples import Sample, validate_labels, validate_name

log = logging.getLogger(__name__)
SYNTHETIC = tuple(info.name for info in catalog.SYNTHETIC)  # up, scrape_duration_seconds, scrape_samples_*
Final = tuple[str, dict[str, str], str]  # stored name, labels (target labels merged), host


class ScrapeReport(NamedTuple):
    """What one scrape gave: samples to store (synthetic ones included), health and the error if any."""

    samples: list[Sample]
    up: bool
    error: str | None
    duration: float
    scraped: int
    dropped: int  # not stored: non-finite values (NaN, ±Inf, stale markers) and series the store refuses
    started: datetime
    fast: bool


class TargetState(NamedTuple):
    """A target as its last scrape left it (``health``: up, down or unknown before the first scrape)."""

    job: str
    instance: str
    url: str
    host: str
    labels: dict[str, str]
    health: str
    last_error: str | None
    last_scrape: datetime | None
    last_duration: float | None
    samples: int | None


class SampleLimitError(Exception):
    """More samples than the job's sample_limit: the whole scrape fails, as in Prometheus."""


class TargetScraper:
    """Scrape one target again and again: ``TargetScraper(target).scrape()`` returns a ScrapeReport."""

    def __init__(self, target: Target) -> None:
        self.target = target
        job = target.job
        self.fetcher = Fetcher(target.url, ca_file=job.ca_file, insecure=job.insecure_skip_verify,
                               max_bytes=job.body_size_limit)
        self.page_cache = PageCache()
        self._final: dict[str, Final | None] = {}  # series text -> stored form, None: refused by the store
        self.first_refusal: str | None = None
        self.last: ScrapeReport | None = None
        self.translator = NodeTranslator(job.translate) if job.translate != "none" else None

    def close(self) -> None:
        """Close the connection to the target."""
        self.fetcher.close()

    def state(self) -> TargetState:
        """Return the target's state after its last scrape."""
        t, last = self.target, self.last
        if last is None:
            return TargetState(t.job.job, t.key[1], t.url, t.host, dict(t.labels), "unknown", None, None, None, None)
        return TargetState(t.job.job, t.key[1], t.url, t.host, dict(t.labels), "up" if last.up else "down",
                           last.error, last.started, last.duration, last.scraped)

    def headers(self) -> dict[str, str]:
        """Return the request headers: Prometheus's Accept, its timeout header, gzip and the credentials."""
        job = self.target.job
        basic = job.basic_auth
        return {
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip",
            "User-Agent": f"monitorkit/{__version__}",
            "X-Prometheus-Scrape-Timeout-Seconds": f"{job.timeout:g}",
            **auth_header(job.bearer_token, job.bearer_token_file, basic.username if basic else None,
                          basic.password if basic else "", basic.password_file if basic else ""),
        }

    def scrape(self, now: datetime | None = None) -> ScrapeReport:
        """Scrape once within the job's timeout; a failure is a report with ``up`` False, never an exception."""
        started = now or datetime.now(UTC)
        started = started.replace(microsecond=started.microsecond // 1000 * 1000)  # Prometheus keeps ms
        t0 = time.monotonic()
        samples: list[Sample] = []
        error: str | None = None
        scraped = dropped = 0
        fast = True
        try:
            page = self.fetcher.get(t0 + self.target.job.timeout, self.headers())
            samples, scraped, dropped, fast = self._samples(page.text, page.content_type, started)
            if self.translator is not None:
                samples += self.translator.translate(samples)
        except (FetchError, ParseError) as exc:
            error = str(exc)
        except SampleLimitError as exc:
            error, scraped = str(exc), int(exc.args[1])
        except (UnicodeError, ValueError, OverflowError) as exc:  # a page that breaks in an unforeseen way
            error = f"{type(exc).__name__}: {exc}"
        duration = time.monotonic() - t0
        if error is not None:
            samples = []
        up = error is None
        self._trim()
        report = ScrapeReport(samples + self._synthetic(started, up, duration, scraped), up, error, duration,
                              scraped, dropped, started, fast)
        if (self.last is None or self.last.up) and not up:
            log.warning("scrape of %s (job %s) failed: %s", self.target.url, self.target.job.job, error)
        self.last = report
        return report

    def _synthetic(self, at: datetime, up: bool, duration: float, scraped: int) -> list[Sample]:
        labels, host = dict(self.target.labels), self.target.host
        values = (1.0 if up else 0.0, duration, float(scraped), float(scraped))
        return [Sample(at, name, labels, value, host) for name, value in zip(SYNTHETIC, values, strict=True)]

    def _samples(self, text: str, content_type: str, started: datetime) -> tuple[list[Sample], int, int, bool]:
        openmetrics = is_openmetrics(content_type)
        try:
            return self._fast(text, openmetrics, started)
        except FastPathMiss:
            pass
        parsed = parse_fallback(text, openmetrics=openmetrics)
        rows = [(s.name, s.labels, s.value, s.timestamp_ms) for s in parsed.samples]
        self._check_limit(len(rows))
        out: list[Sample] = []
        dropped = 0
        times: dict[int, datetime] = {}
        for name, labels, value, ts in rows:
            final = self._finalize(name, labels)
            if final is None or not math.isfinite(value):
                dropped += 1
                continue
            out.append(Sample(self._time(ts, started, times), final[0], final[1], value, final[2]))
        return out, len(rows), dropped, False

    def _fast(self, text: str, openmetrics: bool, started: datetime) -> tuple[list[Sample], int, int, bool]:
        rows = parse_rows(text, openmetrics=openmetrics, cache=self.page_cache)
        self._check_limit(len(rows))
        known = self._final
        out: list[Sample] = []
        dropped = 0
        times: dict[int, datetime] = {}
        isfinite = math.isfinite
        for series, value, ts in rows:
            try:
                final = known[series]
            except KeyError:
                name, labels = split_series(series)
                final = known[series] = self._finalize(name, labels)
            if final is None or not isfinite(value):
                dropped += 1
                continue
            when = started if ts is None else self._time(ts, started, times)
            out.append(Sample(when, final[0], final[1], value, final[2]))
        return out, len(rows), dropped, True

    def _check_limit(self, n: int) -> None:
        limit = self.target.job.sample_limit
        if limit and n > limit:
            raise SampleLimitError(f"sample_limit exceeded: {n} samples > limit {limit}", n)

    def _time(self, ts: int | None, started: datetime, times: dict[int, datetime]) -> datetime:
        if ts is None or not self.target.job.honor_timestamps:
            return started
        when = times.get(ts)
        if when is None:
            when = times[ts] = datetime.fromtimestamp(ts / 1000, UTC)
        return when

    def _finalize(self, name: str, scraped: dict[str, str]) -> Final | None:
        """Merge target labels as Prometheus does (honor_labels, else clashes become exported_<name>); None if refused."""
        target = self.target
        labels = {k: v for k, v in scraped.items() if v != "" and not k.startswith("__")}
        for key, value in target.labels.items():
            if key in labels:
                if target.job.honor_labels:
                    continue
                # Prometheus renames a scraped label the target also sets, even to the same value.
                moved = "exported_" + key
                while moved in labels or moved in target.labels:
                    moved = "exported_" + moved
                labels[moved] = labels[key]
            labels[key] = value
        instance = labels.get("instance", "")
        host = target.host if instance == target.labels.get("instance") else host_of(instance)
        try:
            return validate_name(name), validate_labels(labels, metric=name), host
        except InvalidSampleError as exc:
            if self.first_refusal is None:
                self.first_refusal = str(exc)
                log.warning("scrape of %s: series refused (and not stored): %s", target.url, exc)
            return None

    def _trim(self) -> None:
        # A target whose series churn must not grow the caches without bound.
        self.page_cache.trim()
        if len(self._final) > self.page_cache.max_entries:
            self._final.clear()
