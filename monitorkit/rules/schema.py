"""Migrations of monitorkit.rules (20-39): rules, alert state, silences, notifications, health."""

from __future__ import annotations

import duckdb

from monitorkit.store.migrations import SchemaSet

SCHEMA = SchemaSet("rules", range(20, 40))

# No DEFAULT calls a function (now(), nextval()): Quack clients could not ATTACH the file
# (seen on 1.5.5); the engine sets every id and time explicitly.


@SCHEMA.migration(20, "rules, alerts and alert events")
def _alerts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE rules (
            name VARCHAR PRIMARY KEY, type VARCHAR NOT NULL, kind VARCHAR NOT NULL,
            severity VARCHAR NOT NULL, file VARCHAR NOT NULL, state VARCHAR NOT NULL,
            error VARCHAR, last_eval TIMESTAMPTZ, eval_ms DOUBLE, rows INTEGER,
            for_seconds DOUBLE NOT NULL, keep_firing_for_seconds DOUBLE NOT NULL,
            summary VARCHAR, description VARCHAR, labels MAP(VARCHAR, VARCHAR), sql VARCHAR NOT NULL,
            loaded_at TIMESTAMPTZ NOT NULL
        )"""
    )
    con.execute(
        """
        CREATE TABLE alerts (
            id BIGINT PRIMARY KEY, rule VARCHAR NOT NULL, fingerprint VARCHAR NOT NULL,
            labels MAP(VARCHAR, VARCHAR) NOT NULL, kind VARCHAR NOT NULL, severity VARCHAR NOT NULL,
            state VARCHAR NOT NULL, value DOUBLE, summary VARCHAR, description VARCHAR,
            since TIMESTAMPTZ, fired_at TIMESTAMPTZ, last_active TIMESTAMPTZ, resolved_at TIMESTAMPTZ,
            updated_at TIMESTAMPTZ NOT NULL,
            acked_by VARCHAR, acked_at TIMESTAMPTZ, ack_comment VARCHAR,
            silenced_by BIGINT, inhibited BOOLEAN NOT NULL
        )"""
    )
    # Append-only: every state transition, ack, silence change and notification of an alert.
    con.execute(
        """
        CREATE TABLE alert_events (
            time TIMESTAMPTZ NOT NULL, alert_id BIGINT NOT NULL, rule VARCHAR NOT NULL,
            fingerprint VARCHAR NOT NULL, labels MAP(VARCHAR, VARCHAR) NOT NULL,
            event VARCHAR NOT NULL, state VARCHAR, value DOUBLE, actor VARCHAR, comment VARCHAR
        )"""
    )


@SCHEMA.migration(21, "silences, notifications and notification groups")
def _notify(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE silences (
            id BIGINT PRIMARY KEY, matchers VARCHAR NOT NULL, starts_at TIMESTAMPTZ NOT NULL,
            ends_at TIMESTAMPTZ NOT NULL, created_by VARCHAR NOT NULL, comment VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL
        )"""
    )
    con.execute(
        """
        CREATE TABLE notifications (
            time TIMESTAMPTZ NOT NULL, receiver VARCHAR NOT NULL, channel VARCHAR NOT NULL,
            group_key VARCHAR NOT NULL, status VARCHAR NOT NULL, alerts BIGINT[] NOT NULL,
            attempt INTEGER NOT NULL, ok BOOLEAN NOT NULL, error VARCHAR, status_code INTEGER,
            seconds DOUBLE
        )"""
    )
    # What each aggregation group last delivered, so a restart does not notify twice.
    con.execute(
        """
        CREATE TABLE notify_groups (
            group_key VARCHAR PRIMARY KEY, receiver VARCHAR NOT NULL, last_flush TIMESTAMPTZ,
            sent VARCHAR NOT NULL, updated_at TIMESTAMPTZ NOT NULL
        )"""
    )


@SCHEMA.migration(22, "heartbeats, health status and health history")
def _health(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE heartbeats (
            component VARCHAR PRIMARY KEY, status VARCHAR NOT NULL, reason VARCHAR NOT NULL,
            ttl_seconds DOUBLE NOT NULL, updated_at TIMESTAMPTZ NOT NULL, host VARCHAR, pid INTEGER
        )"""
    )
    con.execute(
        """
        CREATE TABLE health_status (
            component VARCHAR PRIMARY KEY, check_name VARCHAR NOT NULL, status VARCHAR NOT NULL,
            reason VARCHAR NOT NULL, since TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL
        )"""
    )
    con.execute(
        """
        CREATE TABLE health_history (
            time TIMESTAMPTZ NOT NULL, component VARCHAR NOT NULL, check_name VARCHAR NOT NULL,
            status VARCHAR NOT NULL, previous VARCHAR, reason VARCHAR NOT NULL
        )"""
    )


# The two window macros' bodies: migration 23 wrote them as they are, migration 30 adds stale
# markers (an ``ended`` CTE and a filter) around the same bodies.
_COUNTER_WITH = """
    WITH d AS (
        SELECT r.series_id, r.time, r.value,
               r.value - lag(r.value) OVER (PARTITION BY r.series_id ORDER BY r.time) AS delta
        FROM samples_raw r
        WHERE r.time > t0::TIMESTAMPTZ AND r.time <= t1::TIMESTAMPTZ
          AND r.series_id IN (SELECT series_id FROM series WHERE name LIKE metric)
    ), w AS (
        SELECT series_id,
               sum(CASE WHEN delta < 0 THEN value ELSE coalesce(delta, 0) END) AS increase,
               epoch(max(time) - min(time)) AS seconds, count(*) AS samples,
               arg_max(value, time) AS last, max(time) AS last_time
        FROM d GROUP BY series_id
    )"""
_COUNTER_SELECT = """
    SELECT s.host, s.name, s.labels, w.increase, w.seconds,
           w.increase / nullif(w.seconds, 0) AS rate, w.samples, w.last, w.last_time, w.series_id
    FROM w JOIN series s USING (series_id)"""
_GAUGE_WITH = """
    WITH w AS (
        SELECT r.series_id, avg(r.value) AS avg, min(r.value) AS min, max(r.value) AS max,
               arg_max(r.value, r.time) AS last, max(r.time) AS last_time, min(r.time) AS first_time,
               count(*) AS samples, regr_slope(r.value, epoch(r.time)) AS slope
        FROM samples_raw r
        WHERE r.time > t0::TIMESTAMPTZ AND r.time <= t1::TIMESTAMPTZ
          AND r.series_id IN (SELECT series_id FROM series WHERE name LIKE metric)
        GROUP BY r.series_id
    )"""
_GAUGE_SELECT = """
    SELECT s.host, s.name, s.labels, w.avg, w.min, w.max, w.last, w.last_time, w.first_time,
           w.samples, w.slope, w.series_id
    FROM w JOIN series s USING (series_id)"""

# eval_time() is the time a rule is evaluated at: now() live; backtests and rule tests
# substitute a fixed timestamp for it in the rule's SQL text (see loader.at_time).
MACROS = [
    "CREATE OR REPLACE MACRO eval_time() AS now()",
    # Increase and per-second rate of every counter whose name is LIKE ``metric`` in (t0, t1],
    # resets handled; bounded by time first so it stays fast on a long history.
    "\n    CREATE OR REPLACE MACRO counter_window(metric, t0, t1) AS TABLE" + _COUNTER_WITH + _COUNTER_SELECT,
    # Summary of every gauge whose name is LIKE ``metric`` in (t0, t1]: avg, min, max, last,
    # and the least-squares slope per second (regr_slope) for trend predictions.
    "\n    CREATE OR REPLACE MACRO gauge_window(metric, t0, t1) AS TABLE" + _GAUGE_WITH + _GAUGE_SELECT,
]

EMPTY_HEALTH = (
    "CREATE OR REPLACE VIEW health_components AS SELECT NULL::VARCHAR AS check_name, "
    "NULL::VARCHAR AS component, NULL::VARCHAR AS status, NULL::VARCHAR AS reason WHERE false"
)


@SCHEMA.migration(23, "rule macros and health roll-up views")
def _views(con: duckdb.DuckDBPyConnection) -> None:
    for macro in MACROS:
        con.execute(macro)
    # health_components is re-created by the engine as the union of every health_<name> view.
    con.execute(EMPTY_HEALTH)
    con.execute(
        """
        CREATE VIEW health_overall AS
        SELECT CASE max(CASE status WHEN 'failing' THEN 2 WHEN 'degraded' THEN 1 ELSE 0 END)
                    WHEN 2 THEN 'failing' WHEN 1 THEN 'degraded' ELSE 'ok' END AS status,
               count(*) AS components,
               count(*) FILTER (WHERE status = 'degraded') AS degraded,
               count(*) FILTER (WHERE status = 'failing') AS failing
        FROM health_components"""
    )
    con.execute(
        """
        CREATE VIEW alerts_active AS
        SELECT * FROM alerts WHERE state IN ('pending', 'firing') ORDER BY since"""
    )


@SCHEMA.migration(24, "rule backoff and lane in the rules table")
def _backoff(con: duckdb.DuckDBPyConnection) -> None:
    # failures in a row, when an errored rule runs again, and whether it runs in the slow lane.
    con.execute("ALTER TABLE rules ADD COLUMN failures INTEGER")
    con.execute("ALTER TABLE rules ADD COLUMN retry_at TIMESTAMPTZ")
    con.execute("ALTER TABLE rules ADD COLUMN lane VARCHAR")


# Staleness (Prometheus's stale markers): a series whose latest entry in a window is a marker has
# ended, so it drops out of every window at once instead of lingering as long as the window.
_ENDED = """
    ended AS (
        SELECT m.series_id, max(m.time) AS ended_at
        FROM stale_markers m
        WHERE m.time {lower} AND m.time <= {upper}
          AND m.series_id IN (SELECT series_id FROM series WHERE name LIKE metric)
        GROUP BY m.series_id
    )"""
_WINDOW_ENDED = _ENDED.format(lower="> t0::TIMESTAMPTZ", upper="t1::TIMESTAMPTZ").strip()
_UNLESS_ENDED = """ LEFT JOIN ended e USING (series_id)
    WHERE e.ended_at IS NULL OR e.ended_at < w.last_time"""
STALE_MACROS = [
    "\n    CREATE OR REPLACE MACRO counter_window(metric, t0, t1) AS TABLE"
    + _COUNTER_WITH + ", " + _WINDOW_ENDED + _COUNTER_SELECT + _UNLESS_ENDED,
    "\n    CREATE OR REPLACE MACRO gauge_window(metric, t0, t1) AS TABLE"
    + _GAUGE_WITH + ", " + _WINDOW_ENDED + _GAUGE_SELECT + _UNLESS_ENDED,
    # PromQL's instant vector selector: each series' latest sample at or before t within the
    # 5-minute lookback ([t - 5m, t], as in Prometheus 2.x), unless a stale marker came after it.
    f"""
    CREATE OR REPLACE MACRO instant(metric, t) AS TABLE
    WITH l AS (
        SELECT r.series_id, arg_max(r.value, r.time) AS value, max(r.time) AS time
        FROM samples_raw r
        WHERE r.time >= t::TIMESTAMPTZ - INTERVAL 5 MINUTE AND r.time <= t::TIMESTAMPTZ
          AND r.series_id IN (SELECT series_id FROM series WHERE name LIKE metric)
        GROUP BY r.series_id
    ), {_ENDED.format(lower=">= t::TIMESTAMPTZ - INTERVAL 5 MINUTE", upper="t::TIMESTAMPTZ").strip()}
    SELECT s.host, s.name, s.labels, l.value, l.time, l.series_id
    FROM l JOIN series s USING (series_id) LEFT JOIN ended e USING (series_id)
    WHERE e.ended_at IS NULL OR e.ended_at < l.time""",
]


@SCHEMA.migration(30, "annotations of rules and alerts, stale markers, instant()")
def _parity(con: duckdb.DuckDBPyConnection) -> None:
    # Annotations besides summary and description (runbook_url, dashboard, ...): templates on
    # the rule, rendered per alert.
    con.execute("ALTER TABLE rules ADD COLUMN annotations MAP(VARCHAR, VARCHAR)")
    con.execute("ALTER TABLE alerts ADD COLUMN annotations MAP(VARCHAR, VARCHAR)")
    con.execute("CREATE TABLE stale_markers (time TIMESTAMPTZ NOT NULL, series_id INTEGER NOT NULL)")
    for macro in STALE_MACROS:
        con.execute(macro)


@SCHEMA.migration(31, "latest leaves out series ended by a stale marker")
def _latest_honours_markers(con: duckdb.DuckDBPyConnection) -> None:
    # The store's `latest` (store/schema.py) knows no markers; the rules set owns them, so it
    # redefines the view here, same columns: a process group, NIC or target that vanished is
    # no longer shown as current, until a new sample of it comes after its marker.
    con.execute("""
        CREATE OR REPLACE VIEW latest AS
        SELECT s.host, s.name, s.labels, l.time, l.value, s.series_id
        FROM (SELECT series_id, max(time) AS time, arg_max(value, time) AS value
              FROM samples_raw GROUP BY series_id) l
        JOIN series s USING (series_id)
        LEFT JOIN (SELECT series_id, max(time) AS ended_at FROM stale_markers GROUP BY series_id) e
          USING (series_id)
        WHERE e.ended_at IS NULL OR e.ended_at < l.time""")
