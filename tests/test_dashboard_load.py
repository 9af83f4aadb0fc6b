"""Load: 20 sessions on one `monitorkit serve` share one store query per poll, and leave nothing behind once closed.

Counted, never timed: how many polls and store queries the server made while the sessions were
open, which polls each session received, and how many sessions and views remain after they close.
The cost of the same load (CPU, lag, memory) is measured in benchmarks/dashboard_bench.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dashboard_helpers import Served, Watcher, metrics, served
from shared_helpers import wait_for

SESSIONS = 20
POLLS = 15  # polls observed while every session is open


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("load"), rules=False) as s:
        yield s


def _closed(server: Served) -> None:
    wait_for(lambda: metrics(server)["monitorkit_dashboard_sessions"] == 0, 120, "sessions were not cleaned up", every=0.5)
    # Views go with the garbage collection the server runs once sessions have ended.
    wait_for(lambda: metrics(server)["monitorkit_dashboard_views"] == 0, 60, "closed sessions left their views", every=0.5)


@pytest.mark.slow
def test_twenty_sessions_share_one_query_per_poll_and_leave_nothing(server: Served) -> None:
    wait_for(lambda: metrics(server)["monitorkit_dashboard_ticks_total"] >= 3, 60, "the server did not tick", every=0.5)
    # A session opening reads the history the feed does not cache (a process group's, open files) once: let the
    # process scan exist first, so those reads happen while the sessions open, not among the polls counted below.
    wait_for(lambda: b"process_group_procs" in server.get("/metrics")[2], 60, "no process scan", every=0.5)
    watcher = Watcher(server.url, server.token, SESSIONS)
    watcher.start()
    try:
        before = metrics(server)
        wait_for(lambda: metrics(server)["monitorkit_dashboard_polls_total"] >= before["monitorkit_dashboard_polls_total"]
                 + POLLS, 300, f"the server did not poll {POLLS} times", every=0.5)
        after = metrics(server)
    finally:
        watcher.stop()

    assert before["monitorkit_dashboard_sessions"] == SESSIONS == after["monitorkit_dashboard_sessions"]
    polls = after["monitorkit_dashboard_polls_total"] - before["monitorkit_dashboard_polls_total"]
    queries = after["monitorkit_dashboard_store_queries_total"] - before["monitorkit_dashboard_store_queries_total"]
    ticks = after["monitorkit_dashboard_ticks_total"] - before["monitorkit_dashboard_ticks_total"]
    # The counters are read while polls run: one poll may be counted in one and not yet in the other.
    assert abs(queries - polls) <= 1, f"{queries} store queries for {polls} polls: every poll is one query, nothing else"
    assert polls <= ticks + 1, f"{polls} polls for {ticks} ticks, whatever the {SESSIONS} sessions"
    last = max(seq for updates in watcher.updates for _, seq, _ in updates)
    for i, updates in enumerate(watcher.updates):
        # A session that falls behind gets the missed deltas merged into one update: it may skip
        # polls, but it keeps receiving and ends up current.
        seqs = {seq for _, seq, _ in updates}
        assert len(seqs) >= 3, f"session {i} saw {len(seqs)} updates"
        assert max(seqs) >= last - 3, f"session {i} fell behind"

    # Closing frees every session and its view (no document is kept), round after round.
    _closed(server)
    again = Watcher(server.url, server.token, SESSIONS // 2)
    again.start()
    assert metrics(server)["monitorkit_dashboard_sessions"] == SESSIONS // 2
    again.stop()
    _closed(server)
