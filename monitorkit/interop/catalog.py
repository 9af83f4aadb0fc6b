"""The metrics interop writes itself: per scrape target as Prometheus does, and the receivers' counters.

A leaf (it imports only the registry), listed in ``monitorkit.catalog.BUILTIN_MODULES`` so the
catalog, ``monitorkit rules check`` and docs/metrics.md know them without loading the scraper.
"""

from __future__ import annotations

from monitorkit.catalog.registry import MetricInfo, register

TARGET = ("job", "instance")
UP = register(MetricInfo(
    "up", "gauge", "boolean",
    "1 if the last scrape of the target succeeded, else 0 (scraped, or remote-written by a Prometheus).", TARGET))
SCRAPE_DURATION = register(MetricInfo(
    "scrape_duration_seconds", "gauge", "seconds", "Wall time of the target's last scrape.", TARGET))
SCRAPE_SAMPLES = register(MetricInfo(
    "scrape_samples_scraped", "gauge", "samples", "Samples on the target's last page (0 when no page was read).",
    TARGET))
SCRAPE_SAMPLES_POST = register(MetricInfo(
    "scrape_samples_post_metric_relabeling", "gauge", "samples",
    "Samples left after metric relabeling; monitorkit has none, so the same as scrape_samples_scraped.", TARGET))
SYNTHETIC = (UP, SCRAPE_DURATION, SCRAPE_SAMPLES, SCRAPE_SAMPLES_POST)

RECEIVER_REQUESTS = register(MetricInfo(
    "monitorkit_receiver_requests_total", "counter", "requests",
    "Requests to a receiver (remote_write, otlp) by outcome: ok, bad (undecodable, 400), "
    "refused (append rules, 400), failed (not committed, 503).", ("receiver", "outcome")))
RECEIVER_SAMPLES = register(MetricInfo(
    "monitorkit_receiver_samples_total", "counter", "samples",
    "Samples a receiver took by outcome: written, duplicate (dropped resends), and not stored: out_of_order, "
    "refused (invalid name or labels), nonfinite.", ("receiver", "outcome")))
