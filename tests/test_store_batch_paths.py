"""Small batches (bound lists) and large ones (Arrow) land in samples_raw alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitorkit.samples import Sample
from monitorkit.store import Store
from monitorkit.store.writer import SMALL_BATCH

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
PLUS2 = timezone(timedelta(hours=2))


@pytest.mark.parametrize("n", [3, SMALL_BATCH - 1, SMALL_BATCH, SMALL_BATCH + 7])
def test_times_ids_and_values_round_trip_whatever_the_batch_size(tmp_path: Path, n: int) -> None:
    # Runs of a shared time (a collector tick), times in another zone, two series interleaved.
    batch = [Sample((T0 + timedelta(seconds=i // 3)).astimezone(PLUS2 if i % 2 else UTC),
                    "m" if i % 2 else "n", {"k": str(i % 5)}, i / 4, "h") for i in range(n)]
    infos = []  # type: ignore[var-annotated]
    with Store(tmp_path / "m.duckdb", hooks=[infos.append]) as store:
        store.write(batch)
        store.flush()
        rows = store.query("SELECT time, name, labels['k'], value FROM samples ORDER BY value")
    assert rows == [(s.time.astimezone(UTC), s.name, s.labels["k"], s.value) for s in batch]
    assert [(i.rows, i.min_time, i.max_time) for i in infos] == [
        (n, T0, T0 + timedelta(seconds=(n - 1) // 3))]
