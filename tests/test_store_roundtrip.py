"""Round trip: what Store.write takes, the samples view gives back unchanged."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import isolated_settings

from monitorkit import Owner, Sample, Store
from monitorkit.errors import InvalidValueError
from monitorkit.owner.connect import connect
from monitorkit.samples import HOST
from monitorkit.store import writer

Row = tuple[datetime, str, str, tuple[tuple[str, str], ...], float]

TRICKY_VALUES = [0.0, -0.0, 1e300, -1e300, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, -1.5, 2.0**53 + 1]

# Every time the store accepts: from 1970 (the epoch) up to now (a day ahead is refused as a clock error).
times = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime.now().replace(microsecond=0), timezones=st.timezones()
)
metric_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,40}", fullmatch=True)
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True).filter(lambda n: not n.startswith("__"))
label_values = st.text(max_size=30)
labels = st.dictionaries(label_names, label_values, max_size=4)
values = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(TRICKY_VALUES)
hosts = st.sampled_from([HOST, "db-01", "hôte-ünïcode", ""])
samples = st.builds(Sample, time=times, name=metric_names, labels=labels, value=values, host=hosts)
batches = st.lists(samples, min_size=1, max_size=40)


def expected(batch: Sequence[Sample]) -> list[Row]:
    """Return the batch as sortable rows with UTC times and label tuples."""
    return sorted(
        (s.time.astimezone(UTC), s.host, s.name, tuple(sorted(s.labels.items())), float(s.value)) for s in batch
    )


def stored(rows: Sequence[tuple[Any, ...]]) -> list[Row]:
    """Return rows read from the samples view in the same sortable form, checking times are aware."""
    out = []
    for time, host, name, labels_, value in rows:
        assert time.tzinfo is not None, "times must come back aware"
        out.append((time.astimezone(UTC), host, name, tuple(sorted(labels_.items())), value))
    return sorted(out)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One store for every hypothesis example of this module (wiped between examples)."""
    with Store(tmp_path_factory.mktemp("roundtrip") / "rt.duckdb", settings=isolated_settings()) as s:
        yield s


def wipe(store: Store) -> None:
    """Delete every raw sample through the writer thread (series stay: the writer caches their ids)."""
    store.submit(lambda con: con.execute("DELETE FROM samples_raw")).result()


# The writer inserts small batches from bound lists and large ones through Arrow: force each path.
INSERT_PATHS = {"lists": 10**9, "arrow": 0}


@pytest.mark.parametrize("path", sorted(INSERT_PATHS))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches)
def test_written_batch_reads_back_identical(shared_store: Store, path: str, batch: list[Sample]) -> None:
    wipe(shared_store)
    with mock.patch.object(writer, "SMALL_BATCH", INSERT_PATHS[path]):
        assert shared_store.write(batch) == len(batch)
        shared_store.flush()
    assert shared_store.writer.last_error is None
    rows = shared_store.query("SELECT time, host, name, labels, value FROM samples")
    assert stored(rows) == expected(batch)


def test_tricky_values_and_labels_survive_close_and_reopen(tmp_db: Path) -> None:
    t0 = datetime(2024, 3, 31, 0, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))
    batch = [
        Sample(t0 + timedelta(microseconds=i), "weird:metric_name", lab, v)
        for i, (lab, v) in enumerate(
            [
                ({}, 0.0),
                ({"emoji": "🔥 ünï"}, 1e300),
                ({"a": ""}, -1e300),
                ({"z": "1", "a": "2"}, 5e-324),
                ({"q": "'\";--"}, -0.5),
            ]
        )
    ]
    with Store(tmp_db, settings=isolated_settings()) as store:
        store.write(batch)
    with Store(tmp_db, settings=isolated_settings()) as store:
        rows = store.query("SELECT time, host, name, labels, value FROM samples")
    assert stored(rows) == expected(batch)


def test_label_order_does_not_make_a_new_series(store: Store) -> None:
    t = datetime(2025, 1, 1, tzinfo=UTC)
    store.write([Sample(t, "m", {"a": "1", "b": "2"}, 1.0), Sample(t, "m", {"b": "2", "a": "1"}, 2.0)])
    store.write([Sample(t, "m", {"a": "1"}, 3.0)])
    store.flush()
    assert store.query("SELECT count(*) FROM series") == [(2,)]
    assert store.query("SELECT count(*) FROM samples") == [(3,)]


def test_remote_reader_sees_the_same_rows(tmp_db: Path) -> None:
    t = datetime(2025, 6, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    batch = [Sample(t, "cpu_percent", {"cpu": "0", "note": "ünï ✓"}, 12.5), Sample(t, "up", {}, 1e300)]
    with Owner(tmp_db, settings=isolated_settings()) as owner:
        owner.store.write(batch)
        owner.store.flush()
        con = connect(tmp_db)
        try:
            assert type(con).__name__ == "RemoteConnection"
            rows = con.execute("SELECT time, host, name, labels, value FROM samples").fetchall()
        finally:
            con.close()
    assert stored(rows) == expected(batch)


@pytest.mark.parametrize("when", [datetime(1, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, tzinfo=UTC),
                                  datetime(9999, 12, 31, tzinfo=UTC), datetime.now(UTC) + timedelta(days=2)])
def test_times_before_the_epoch_or_far_ahead_are_refused_and_nothing_is_queued(shared_store: Store, when: datetime) -> None:
    queued = shared_store.writer.queued
    with pytest.raises(InvalidValueError, match="before 1970 or more than a day ahead"):
        shared_store.write([Sample(datetime.now(UTC), "ok_metric", {}, 1.0), Sample(when, "ok_metric", {}, 2.0)])
    assert shared_store.writer.queued == queued
