"""The hub's dashboard: the owner's dashboard parts over every host of the lake.

``HubDashboard(hub, settings).start()`` serves the same Panel app as ``monitorkit serve`` (login
token stored as a hash in the hub's own file, every route guarded) with a ``StoreReader`` over
the hub's ``HubStore``, so ``samples_raw``, ``series`` and the views are the lake's while
``alerts``, ``health_status`` and ``layouts`` are the hub's. Two things differ from one owner:

* hosts ship batches every ``ship_interval``, each with its own lag, so "samples newer than the
  newest seen" would skip a host that is behind; ``HubFeed`` asks for the rows of lake snapshots
  newer than the last one it read instead (DuckLake's ``snapshot_id`` of each row);
* the feed carries a ``FleetOverview`` (one row per host: health, CPU, memory, disk, ship lag)
  that the fleet panel draws, refreshed by the feed's thread every few seconds for all sessions.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from monitorkit.config import Settings, parse_duration
from monitorkit.dashboard.actions import silence_matchers
from monitorkit.dashboard.app import AppContext, LayoutBackend
from monitorkit.dashboard.auth import TokenAuth, ensure_token, login_url
from monitorkit.dashboard.errors import AlertActionError, DashboardError
from monitorkit.dashboard.feed import Feed
from monitorkit.dashboard.feedquery import SAMPLES_SQL
from monitorkit.dashboard.layouts import Layout, PanelSpec, list_layouts, save_layout
from monitorkit.dashboard.panels import cached_metrics
from monitorkit.dashboard.panels.fleet import FleetRow
from monitorkit.dashboard.reader import Reader, StoreReader
from monitorkit.dashboard.records import AlertRow, Delta, SeriesInfo
from monitorkit.dashboard.server import DashboardServer
from monitorkit.errors import MonitorkitError
from monitorkit.lake.config import LakeConfig
from monitorkit.lake.hub import Hub
from monitorkit.lake.schema import FLEET_OVERVIEW
from monitorkit.samples import HOST

log = logging.getLogger(__name__)

_TIME_FILTER = "WHERE r.time > ?"
if _TIME_FILTER not in SAMPLES_SQL:  # the feed's statement changed shape: HubFeed must follow it
    raise ImportError("monitorkit.dashboard.feedquery.SAMPLES_SQL no longer filters on r.time; update lake/dashboard.py")
# Rows committed to the lake after snapshot ? (and inside the cache window, so old files are skipped).
HUB_SAMPLES_SQL = SAMPLES_SQL.replace(_TIME_FILTER, "WHERE r.snapshot_id > ? AND r.time > ?")
SNAPSHOT_SRC = 99  # a row only HubFeed reads (removed before the feed sees it): the lake snapshot read
HOSTS_SQL = "SELECT DISTINCT host FROM series ORDER BY host"
SERIES_SQL = "SELECT series_id::BIGINT AS sid, host, name, to_json(labels)::VARCHAR AS labels FROM series"
FLEET_LAYOUT = Layout("fleet", (
    PanelSpec("fleet", 12, 300), PanelSpec("cpu", 6), PanelSpec("memory", 6), PanelSpec("disk", 6),
    PanelSpec("network", 6), PanelSpec("alerts", 6, 360), PanelSpec("health", 6, 360),
))


def hub_hosts(reader: Reader) -> list[str]:
    """Return every host that has series in the lake (what the host selector lists)."""
    return [str(h) for h in reader.arrow(HOSTS_SQL).column(0).to_pylist()]


def _utc(value: Any) -> datetime | None:
    return value.astimezone(UTC) if isinstance(value, datetime) else None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


class FleetOverview:
    """The fleet panel's rows: ``FLEET_OVERVIEW`` over the hub's reader, at most once every ``every`` seconds.

    A host is degraded when its lake data is more than two ship cycles (``ship_interval`` +
    ``lateness``) old or one of the hub's fleet alerts fires for it, and failing past six cycles.
    """

    def __init__(self, reader: Reader, lake: LakeConfig, *, every: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.reader = reader
        cycle = (lake.ship_interval + lake.lateness).total_seconds()
        self.degraded_after = 2 * cycle
        self.failing_after = 6 * cycle
        # Figures older than this are not shown (the host is failing by then); bounds the lake scan.
        self.lookback = timedelta(seconds=max(900.0, self.failing_after))
        self.every = every
        self.clock = clock
        self.version = 0
        self.error: str | None = None
        self.refreshed = 0
        self._rows: tuple[FleetRow, ...] = ()
        self._due = 0.0

    def params(self) -> list[Any]:
        """Return the query's parameters as of now: now, the lookback start, the degraded and failing lags."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        return [now, now - self.lookback, self.degraded_after, self.failing_after]

    def query(self) -> list[FleetRow]:
        """Run the overview query now and return its rows (QueryError when the lake cannot answer)."""
        table = self.reader.arrow(FLEET_OVERVIEW, self.params())
        return [FleetRow(str(r["host"]), str(r["status"]), str(r["reason"] or ""), _float(r["cpu_percent"]),
                         _float(r["memory_percent"]), _float(r["disk_used_percent"]), _utc(r["last_sample"]),
                         _utc(r["shipped_through"]), _utc(r["last_ship"]), _float(r["ship_lag_s"]), int(r["firing"]))
                for r in table.to_pylist()]

    def refresh(self) -> None:
        """Query again; on failure keep the last rows and say why (the next refresh retries)."""
        self._due = time.monotonic() + self.every
        try:
            rows, error = tuple(self.query()), None
        except MonitorkitError as exc:
            rows, error = self._rows, f"fleet overview unavailable: {exc}"
            log.warning("%s", error)
        self.refreshed += 1
        if (rows, error) != (self._rows, self.error):
            self._rows, self.error = rows, error
            self.version += 1

    def refresh_if_due(self) -> None:
        """Refresh when ``every`` seconds passed since the last refresh."""
        if time.monotonic() >= self._due:
            self.refresh()

    def rows(self) -> Sequence[FleetRow]:
        """Return the hosts, failing first, then degraded, then ok."""
        return self._rows


class HubFeed(Feed):
    """The dashboard feed over the lake: samples by lake snapshot, every host's series, the fleet overview."""

    def __init__(self, reader: Reader, *, lake_alias: str, fleet: FleetOverview, **kwargs: Any) -> None:
        super().__init__(reader, **kwargs)
        self.fleet = fleet
        self.snapshot_id: int | None = None
        self._snapshot_sql = (f"SELECT {SNAPSHOT_SRC} AS src, NULL::BIGINT, id::DOUBLE, NULL::DOUBLE, NULL::VARCHAR "
                              f"FROM {lake_alias}.current_snapshot()")

    def _sql(self, prime: bool) -> tuple[str, list[Any]]:
        sql, params = super()._sql(prime)
        if not prime and self.snapshot_id is not None:
            if not sql.startswith(SAMPLES_SQL):
                raise DashboardError("the dashboard feed's statement no longer starts with its samples; "
                                     "monitorkit.lake.dashboard must follow it")
            window_start = datetime.fromtimestamp(self.clock() - self.window_ms / 1000.0, UTC)
            sql = HUB_SAMPLES_SQL + sql[len(SAMPLES_SQL):]
            params = [self.snapshot_id, window_start, *params[1:]]
        # In the same statement, so the same lake snapshot as the rows: nothing is read twice or skipped.
        return f"{sql} UNION ALL {self._snapshot_sql}", params

    def _apply(self, rows: list[tuple[Any, ...]], prime: bool) -> Delta:
        seen = [r[2] for r in rows if r[0] == SNAPSHOT_SRC]
        if seen:
            self.snapshot_id = int(max(seen))
        return super()._apply([r for r in rows if r[0] != SNAPSHOT_SRC], prime)

    def prime(self) -> None:
        """Load the cache window, every host's series (so the host selector lists them all) and the overview."""
        with self._lock:
            if self._primed:
                return
            super().prime()
            for r in self.reader.arrow(SERIES_SQL).to_pylist():
                if r["sid"] not in self.series:
                    self.series[r["sid"]] = SeriesInfo(int(r["sid"]), str(r["host"]), str(r["name"]), json.loads(r["labels"]))
            self.fleet.refresh()

    def poll(self) -> Delta:
        """Poll the lake once, then refresh the fleet overview if it is due."""
        delta = super().poll()
        self.fleet.refresh_if_due()
        return delta


class HubActions:
    """Acknowledge and silence from the hub's dashboard through the hub's own rule engine (no owner API here)."""

    def __init__(self, hub: Hub) -> None:
        from monitorkit.rules.service import routes

        self._routes = routes(hub.engine)

    def _call(self, path: str, payload: dict[str, Any], doing: str) -> Mapping[str, Any]:
        try:
            return self._routes[path](payload)
        except MonitorkitError as exc:
            raise AlertActionError(f"could not {doing}: {exc}") from exc

    def acknowledge(self, alert: AlertRow, *, by: str, comment: str) -> None:
        """Acknowledge ``alert`` as ``by``."""
        self._call("/ack", {"id": alert.id, "by": by, "comment": comment}, f"acknowledge alert {alert.id}")

    def silence(self, alert: AlertRow, *, duration: timedelta, by: str, comment: str) -> int:
        """Silence ``alert``'s label set for ``duration``; return the silence id."""
        payload = {"matchers": silence_matchers(alert), "seconds": duration.total_seconds(), "by": by,
                   "comment": comment}
        return int(self._call("/silence", payload, f"silence alert {alert.id}").get("id", 0))


def install_fleet_layout(hub: Hub) -> bool:
    """Save the fleet layout as the default in a hub file that has no saved layout yet; return whether it did."""
    cur = hub.store.cursor()
    try:
        if list_layouts(cur):
            return False
    finally:
        cur.close()
    hub.store.submit(lambda con: save_layout(con, FLEET_LAYOUT, default=True)).result(30)
    return True


class HubDashboard:
    """The hub's dashboard server: ``start()``, ``login_url``, ``stop()``; ``[hub] address/port/token``."""

    def __init__(self, hub: Hub, settings: Settings, *, address: str | None = None, port: int | None = None,
                 new_token: bool = False) -> None:
        self.hub = hub
        self.settings = settings
        self.address = address if address is not None else hub.config.address
        self.port = port if port is not None else hub.config.port
        self.new_token = new_token
        self.token: str | None = None
        self.reader = StoreReader(hub.store)
        self.fleet = FleetOverview(self.reader, hub.cfg)
        self.feed: HubFeed | None = None
        self.server: DashboardServer | None = None

    def start(self) -> None:
        """Prime the feed, make sure a login token exists, serve, then poll the lake every ``[hub] tick``."""
        settings, hub = self.settings, self.hub
        hub.start()  # acknowledgements go through the rule engine
        tick = hub.config.tick.total_seconds()
        window = parse_duration(settings.get("serve.cache_window", "15m")).total_seconds()
        feed = HubFeed(self.reader, lake_alias=hub.store.lake_alias, fleet=self.fleet, tick=tick, window=window,
                       cached=cached_metrics())
        feed.prime()
        credential, self.token = ensure_token(hub.store, token=hub.config.token or None, rotate=self.new_token)
        install_fleet_layout(hub)
        backend = LayoutBackend(self.reader, write=lambda fn: hub.store.submit(fn).result(30))
        rows = self.fleet.rows()
        app = AppContext(feed, self.reader, backend, HubActions(hub), None, tick,
                         default_host=rows[0].host if rows else HOST)  # the worst host first
        server = DashboardServer(
            app, TokenAuth(credential), address=self.address, port=self.port,
            public_metrics=bool(settings.get("serve.public_metrics", False)),
            session_lifetime=parse_duration(settings.get("serve.session_lifetime", "15s")).total_seconds(),
            origins=tuple(settings.get("serve.allow_origin", ()) or ()),
        )
        server.start()
        self.feed, self.server = feed, server
        feed.start(triggered=False)

    @property
    def url(self) -> str:
        """Return the base URL (``http://127.0.0.1:PORT``)."""
        if self.server is None:
            raise DashboardError("the hub's dashboard is not started")
        return self.server.url

    @property
    def login_url(self) -> str:
        """Return the URL to open: with ``?token=`` when a token was issued at this start."""
        return login_url(self.url, self.token)

    def stop(self) -> None:
        """Stop polling and serving."""
        if self.feed is not None:
            self.feed.stop()
        if self.server is not None:
            self.server.stop()
        self.feed = self.server = None
