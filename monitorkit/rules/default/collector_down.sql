-- name: collector_down
-- kind: health
-- severity: critical
-- for: 1m
-- every: 30s
-- summary: Collector {{ collector }} on {{ host }} {{ _problem }}
-- description: monitorkit_collector_up is 0 (its last run raised), or the collector has not
--   reported for more than 3 times its usual spacing (estimated over the last hour).
--   The value is the age of its last report in seconds.
WITH w AS (
    SELECT host, labels['collector'] AS collector, last, last_time,
           greatest(1, epoch(last_time - first_time) / greatest(samples - 1, 1)) AS spacing
    FROM gauge_window('monitorkit_collector_up', eval_time() - INTERVAL 1 HOUR, eval_time())
)
SELECT host, collector, round(epoch(eval_time() - last_time), 1) AS value,
       CASE WHEN last = 0 THEN 'failed its last run' ELSE 'stopped reporting' END AS _problem
FROM w
WHERE last = 0 OR epoch(eval_time() - last_time) > 3 * spacing
