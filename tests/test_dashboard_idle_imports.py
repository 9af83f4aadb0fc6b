"""An idle `monitorkit serve` (no browser session) loads neither pyarrow nor the Quack endpoint.

pyarrow is about 70 MiB of RSS once a table has been converted; the feed's per-tick poll reads plain
tuples (``Reader.rows``), so only a session's history query or console result brings pyarrow in.
The Quack endpoint opens on a reader's first request (owner/quack.py). Read from the child's
``/proc/<pid>/maps`` after it has polled: what is mapped, not what a test process imported.
"""

from __future__ import annotations

from pathlib import Path

from dashboard_helpers import metrics, served
from shared_helpers import wait_for

from monitorkit.owner.sidecar import read_owner


def _mapped(pid: int, needle: str) -> bool:
    return needle in Path(f"/proc/{pid}/maps").read_text()


def test_an_idle_serve_polls_without_pyarrow_and_without_quack(tmp_path: Path) -> None:
    with served(tmp_path, rules=False) as server:
        # Polls that found samples: without them the absence below would prove nothing.
        wait_for(lambda: metrics(server)["monitorkit_dashboard_polls_total"] >= 3, 60, "the feed did not poll")
        # /metrics answers from the feed's cache: a collected series there went through a poll's rows.
        wait_for(lambda: b"cpu_percent" in server.get("/metrics")[2], 60, "no polled sample on /metrics")
        assert _mapped(server.proc.pid, "site-packages/numpy/")  # what is mapped is read right
        assert not _mapped(server.proc.pid, "site-packages/pyarrow/"), "an idle serve loaded pyarrow"
        info = read_owner(server.db)
        assert info is not None and info.port == 0, "the Quack endpoint opened with no reader asking"
