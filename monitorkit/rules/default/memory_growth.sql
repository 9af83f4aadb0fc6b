-- name: memory_growth
-- kind: resource
-- severity: warning
-- for: 30m
-- keep_firing_for: 30m
-- every: 1m
-- summary: Memory on {{ host }} at {{ value }}%, {{ _growth }} points above the same hour yesterday
-- description: memory_percent averaged over the last hour is at least 70% and at least 5 points
--   above its average of the same hour a day before: memory grows day over day (a leak), which a
--   daily cycle does not. See `process_group_memory_bytes` (kind resident) for the process groups that grow.
WITH now_ AS (
    SELECT host, avg FROM gauge_window('memory_percent', eval_time() - INTERVAL 1 HOUR, eval_time())
), yesterday AS (
    SELECT host, avg FROM gauge_window('memory_percent', eval_time() - INTERVAL 25 HOUR, eval_time() - INTERVAL 24 HOUR)
)
SELECT host, round(n.avg, 1) AS value, round(n.avg - y.avg, 1) AS _growth
FROM now_ n JOIN yesterday y USING (host)
WHERE n.avg >= 70 AND n.avg - y.avg >= 5
