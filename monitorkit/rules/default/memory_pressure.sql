-- name: memory_pressure
-- kind: resource
-- severity: warning
-- for: 5m
-- keep_firing_for: 1m
-- every: 1m
-- summary: Memory on {{ host }} {{ value }}% used (2-minute average)
-- description: Less than 10% of memory has been available for 5 minutes; the machine may
--   start swapping or killing processes. See `process_group_memory_bytes` (kind resident) for the largest process groups.
SELECT host, round(avg, 1) AS value
FROM gauge_window('memory_percent', eval_time() - INTERVAL 2 MINUTE, eval_time())
WHERE avg > 90
