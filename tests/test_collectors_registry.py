"""The metric registry: naming rules, duplicates, monitorkit's own metrics, and docs/metrics.md staying current."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitorkit.catalog import (
    NOT_COLLECTED,
    PROCESS_GROUPS,
    REGISTRY,
    DuplicateMetricError,
    InvalidMetricInfoError,
    MetricInfo,
    all_metrics,
    register,
    render_markdown,
)
from monitorkit.collectors import processes
from monitorkit.samples import validate_name

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Restore REGISTRY after a test that registers throwaway metrics."""
    before = dict(REGISTRY)
    yield
    REGISTRY.clear()
    REGISTRY.update(before)


@pytest.mark.parametrize("info", all_metrics(), ids=lambda info: info.name)
def test_every_metric_follows_the_rules(info: MetricInfo) -> None:
    assert REGISTRY[info.name] is info
    assert validate_name(info.name) == info.name
    assert info.kind in ("counter", "gauge", "histogram")
    assert info.unit.strip() and info.help.strip()
    assert info.name.endswith("_total") == (info.kind == "counter")
    assert len(set(info.labels)) == len(info.labels)


def test_all_metrics_covers_every_collector_module() -> None:
    names = {info.name for info in all_metrics()}
    for expected in ("cpu_percent", "memory_available_bytes", "disk_used_percent", "disk_read_bytes_total",
                     "net_bytes_recv_total", "net_connections", "process_group_memory_bytes",
                     "tcp_retransmitted_segments_total", "monitorkit_collector_up"):
        assert expected in names
    assert [info.name for info in all_metrics()] == sorted(names)


def test_monitorkit_internal_metrics_are_registered_as_specified() -> None:
    expected = {
        "monitorkit_samples_dropped_total": ("counter", "samples", ("reason",)),
        "monitorkit_samples_written_total": ("counter", "samples", ()),
        "monitorkit_write_batches_total": ("counter", "batches", ()),
        "monitorkit_write_seconds": ("gauge", "seconds", ()),
        "monitorkit_queue_depth": ("gauge", "samples", ()),
        "monitorkit_collector_errors_total": ("counter", "errors", ("collector",)),
        "monitorkit_collector_duration_seconds": ("gauge", "seconds", ("collector",)),
        "monitorkit_collector_up": ("gauge", "boolean", ("collector",)),
    }
    got = {name: (REGISTRY[name].kind, REGISTRY[name].unit, REGISTRY[name].labels) for name in expected}
    assert got == expected


@pytest.mark.usefixtures("clean_registry")
def test_register_refuses_a_conflicting_duplicate_and_accepts_an_identical_one() -> None:
    info = MetricInfo("test_widgets_total", "counter", "widgets", "Widgets made.")
    assert register(info) is info
    assert register(MetricInfo("test_widgets_total", "counter", "widgets", "Widgets made.")) == info
    with pytest.raises(DuplicateMetricError, match="already registered"):
        register(MetricInfo("test_widgets_total", "counter", "widgets", "Something else."))
    assert REGISTRY["test_widgets_total"] == info


def test_register_refuses_duplicate_of_a_builtin_metric() -> None:
    with pytest.raises(DuplicateMetricError):
        register(MetricInfo("cpu_percent", "gauge", "percent", "A second meaning."))


@pytest.mark.usefixtures("clean_registry")
@pytest.mark.parametrize(
    ("info", "message"),
    [
        (MetricInfo("test_widgets", "counter", "widgets", "Widgets."), "must end in '_total'"),
        (MetricInfo("test_widgets_total", "gauge", "widgets", "Widgets."), "reserved for counters"),
        (MetricInfo("test_widgets", "gauge", "", "Widgets."), "non-empty unit"),
        (MetricInfo("test_widgets", "gauge", "widgets", " "), "non-empty unit and help"),
        (MetricInfo("test_widgets", "summary", "widgets", "Widgets."), "kind 'summary'"),  # type: ignore[arg-type]
        (MetricInfo("test_widgets", "gauge", "widgets", "Widgets.", ("bad-label",)), "invalid label"),
        (MetricInfo("test_widgets", "gauge", "widgets", "Widgets.", ("a", "a")), "label twice"),
    ],
)
def test_register_refuses_a_bad_definition(info: MetricInfo, message: str) -> None:
    with pytest.raises(InvalidMetricInfoError, match=message):
        register(info)
    assert info.name not in REGISTRY


def test_register_refuses_a_bad_name() -> None:
    with pytest.raises(ValueError, match="invalid metric name"):
        register(MetricInfo("9lives", "gauge", "lives", "Lives left."))


def test_docs_metrics_md_is_current() -> None:
    doc = (ROOT / "docs" / "metrics.md").read_text()
    assert doc == render_markdown(), "regenerate: python -m monitorkit.catalog > docs/metrics.md"


def test_render_markdown_has_one_row_per_metric_and_the_not_collected_note() -> None:
    text = render_markdown()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [info.name for info in all_metrics()]
    assert "| `net_connections` | gauge | sockets | `kind`, `state` |" in text
    assert NOT_COLLECTED in text and PROCESS_GROUPS in text
    assert "Per-process network bandwidth is not available from the Linux kernel through psutil" in text


def test_processes_module_states_what_it_cannot_collect() -> None:
    assert "Per-process network bandwidth is not available from the Linux kernel through psutil" in (
        processes.__doc__ or ""
    )


def test_module_entry_point_prints_the_full_page() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "monitorkit.catalog"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout == render_markdown()
