"""Load: 20 sessions for 30 s on one `monitorkit serve`: all updated, one store query per tick, memory flat."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psutil
import pytest
from dashboard_helpers import Served, Watcher, metrics, served, wait_for

SESSIONS = 20
WINDOW = 30.0
RSS_TOLERANCE = 40 * 2**20  # what a round of 20 sessions may leave (allocator slack); about 110 MiB before the fix


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("load"), rules=False) as s:
        yield s


def _closed(server: Served) -> None:
    wait_for(lambda: metrics(server)["monitorkit_dashboard_sessions"] == 0, 60, "sessions were not cleaned up", every=0.5)
    # Views go with the garbage collection the server runs once sessions have ended.
    wait_for(lambda: metrics(server)["monitorkit_dashboard_views"] == 0, 30, "closed sessions left their views", every=0.5)


@pytest.mark.slow
def test_twenty_sessions_share_one_query_per_tick(server: Served) -> None:
    rss = psutil.Process(server.proc.pid).memory_info
    wait_for(lambda: metrics(server)["monitorkit_dashboard_ticks_total"] >= 5, 60, "the server did not tick", every=0.5)
    baseline = rss().rss  # warmed up: imports done, the feed primed, a few ticks collected
    watcher = Watcher(server.url, server.token, SESSIONS)
    watcher.start()
    before, started = metrics(server), time.time() * 1000
    time.sleep(WINDOW)
    after, ended = metrics(server), time.time() * 1000
    peak = rss().rss
    watcher.stop()

    assert before["monitorkit_dashboard_sessions"] == SESSIONS == after["monitorkit_dashboard_sessions"]
    ticks = after["monitorkit_dashboard_ticks_total"] - before["monitorkit_dashboard_ticks_total"]
    polls = after["monitorkit_dashboard_polls_total"] - before["monitorkit_dashboard_polls_total"]
    queries = after["monitorkit_dashboard_store_queries_total"] - before["monitorkit_dashboard_store_queries_total"]
    assert ticks >= WINDOW * 0.5, f"the scheduler ticked {ticks} times in {WINDOW:.0f} s"
    # The two counters are read while polls run: one poll may be counted in one and not yet in the other.
    assert abs(queries - polls) <= 1, f"{queries} store queries for {polls} polls: every poll is one query, nothing else queries"
    assert ticks * 0.7 <= polls <= ticks + 1, f"{polls} polls for {ticks} ticks, whatever the {SESSIONS} sessions"
    last = max(seq for updates in watcher.updates for _, seq, _ in updates)
    for i, updates in enumerate(watcher.updates):
        # A session that falls behind gets the latest state in one message (updates coalesce),
        # so it may skip polls; it must keep receiving and end up current.
        seqs = {seq for at, seq, _ in updates if started <= at <= ended}
        assert len(seqs) >= max(3, polls * 0.3), f"session {i} saw {len(seqs)} of {polls} polls"
        assert max(seq for _, seq, _ in updates) >= last - 3, f"session {i} fell behind"

    # Closing frees every view (no document is kept) and `monitorkit serve` runs on the system
    # allocator with malloc_trim after sessions end: RSS returns to its baseline, round after round.
    _closed(server)
    settled = rss().rss
    assert settled - baseline < RSS_TOLERANCE, (
        f"RSS {settled / 2**20:.0f} MiB after the sessions closed, baseline {baseline / 2**20:.0f} MiB, "
        f"peak {peak / 2**20:.0f} MiB"
    )
    again = Watcher(server.url, server.token, SESSIONS // 2)
    again.start()
    again.stop()
    _closed(server)
    grown = rss().rss - baseline
    assert grown < RSS_TOLERANCE, (
        f"RSS {grown / 2**20:.0f} MiB over its baseline after another {SESSIONS // 2} sessions "
        f"(peak {peak / 2**20:.0f} MiB, after the first round {settled / 2**20:.0f} MiB)"
    )
