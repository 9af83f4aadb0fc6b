-- name: disk_full_predicted
-- kind: resource
-- severity: warning
-- for: 10m
-- keep_firing_for: 10m
-- every: 1m
-- summary: Disk {{ mount }} on {{ host }} ({{ _used }}% used) full in {{ value }} h at the last hour's rate
-- description: The filesystem is at least 60% full (space usable by unprivileged users), a
--   straight line fitted (regr_slope) through the last hour of disk_used_bytes reaches the free
--   space within 24 hours, and the growth is steady: the median of the hour's 5-minute steps is
--   at least half the fitted rate. A short burst of writes (a build, a download, a copy deleted
--   again) steepens the line but not the median, so it is not extrapolated. Needs 15 minutes
--   of history.
WITH raw AS MATERIALIZED (
    SELECT r.series_id, r.time, r.value
    FROM samples_raw r
    WHERE r.time > eval_time() - INTERVAL 1 HOUR AND r.time <= eval_time()
      AND r.series_id IN (SELECT series_id FROM series WHERE name = 'disk_used_bytes')
), fit AS (
    SELECT series_id, regr_slope(value, epoch(time)) AS slope, count(*) AS samples,
           epoch(max(time) - min(time)) AS span
    FROM raw
    GROUP BY series_id
), steps AS (
    -- the last disk_used_bytes of each 5-minute step of the hour
    SELECT series_id, time_bucket(INTERVAL 5 MINUTE, time) AS step, arg_max(value, time) AS bytes, max(time) AS last_at
    FROM raw
    GROUP BY ALL
), rates AS (
    SELECT series_id, (bytes - lag(bytes) OVER w) / epoch(last_at - lag(last_at) OVER w) AS rate
    FROM steps
    WINDOW w AS (PARTITION BY series_id ORDER BY last_at)
), used AS (
    -- the lower median step: a burst within fewer than half of the steps leaves it at the usual rate
    SELECT s.host, s.labels['mount'] AS mount, s.labels['device'] AS device, f.slope, f.samples, f.span,
           quantile_disc(r.rate, 0.5) AS steady
    FROM fit f JOIN rates r USING (series_id) JOIN series s USING (series_id)
    GROUP BY ALL
), level AS (
    SELECT host, labels['mount'] AS mount, last AS used_percent
    FROM gauge_window('disk_used_percent', eval_time() - INTERVAL 5 MINUTE, eval_time())
), free AS (
    SELECT host, labels['mount'] AS mount, last AS free
    FROM gauge_window('disk_free_bytes', eval_time() - INTERVAL 5 MINUTE, eval_time())
)
SELECT u.host, u.mount, u.device, round(f.free / u.slope / 3600, 1) AS value, round(l.used_percent, 1) AS _used
FROM used u JOIN free f USING (host, mount) JOIN level l USING (host, mount)
WHERE u.slope > 0 AND u.samples >= 10 AND u.span >= 900
  AND f.free / u.slope < 24 * 3600
  AND l.used_percent >= 60
  AND u.steady >= u.slope / 2
