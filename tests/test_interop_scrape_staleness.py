"""A target removed from its job ends its series (Prometheus's end-of-run markers); stopping the owner ends none."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from interop_helpers import exporter
from shared_helpers import wait_for

from monitorkit.interop.scrape import parse_job
from monitorkit.interop.scraper import ScrapeService
from monitorkit.store import Store

PAGE = b'queue_depth{queue="a"} 3\nqueue_depth{queue="b"} 4\n'


def touch(path: Path, text: str, ahead: float) -> None:
    """Rewrite a target file with a modification time the watcher cannot miss."""
    path.write_text(text)
    os.utime(path, (time.time() + ahead, time.time() + ahead))


def markers(store: Store) -> list[tuple[str, str]]:
    store.flush()
    return store.query("SELECT s.labels['instance'], s.labels['queue'] FROM stale_markers m "
                       "JOIN series s USING (series_id) WHERE s.name = 'queue_depth' ORDER BY ALL")


def test_a_removed_target_is_marked_stale_and_a_stopped_service_marks_nothing(store: Store, tmp_path: Path) -> None:
    with exporter(lambda h: (200, {}, PAGE)) as (first, _), exporter(lambda h: (200, {}, PAGE)) as (second, _):
        targets = tmp_path / "t.json"
        touch(targets, json.dumps([{"targets": [first, second]}]), 5)
        service = ScrapeService([parse_job({"job": "app", "target_files": [str(targets)], "interval": "0.2s"})])
        service.start_on(store)
        try:
            wait_for(lambda: store.query("SELECT count(DISTINCT labels['instance']) FROM series "
                                         "WHERE name = 'queue_depth'")[0][0] == 2, 15, "both targets scraped")
            assert markers(store) == []
            touch(targets, json.dumps([{"targets": [second]}]), 10)  # the first leaves the job
            wait_for(lambda: len(markers(store)) == 2, 15, "the removed target's markers")
            assert markers(store) == [(first, "a"), (first, "b")]
            live = store.query("SELECT DISTINCT labels['instance'] FROM latest WHERE name = 'queue_depth'")
            assert live == [(second,)]
        finally:
            service.stop()
    assert markers(store) == [(first, "a"), (first, "b")]  # stopping wrote none for the second
