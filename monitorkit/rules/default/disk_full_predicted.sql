-- name: disk_full_predicted
-- kind: resource
-- severity: warning
-- for: 10m
-- keep_firing_for: 10m
-- every: 1m
-- summary: Disk {{ mount }} on {{ host }} full in {{ value }} h at the last hour's rate
-- description: A straight line fitted (regr_slope) through the last hour of disk_used_bytes
--   reaches the free space within 24 hours. Needs 15 minutes of history.
WITH used AS (
    SELECT host, labels['mount'] AS mount, labels['device'] AS device, slope, samples,
           epoch(last_time - first_time) AS span
    FROM gauge_window('disk_used_bytes', eval_time() - INTERVAL 1 HOUR, eval_time())
), free AS (
    SELECT host, labels['mount'] AS mount, last AS free
    FROM gauge_window('disk_free_bytes', eval_time() - INTERVAL 5 MINUTE, eval_time())
)
SELECT u.host, u.mount, u.device, round(f.free / u.slope / 3600, 1) AS value
FROM used u JOIN free f USING (host, mount)
WHERE u.slope > 0 AND u.samples >= 10 AND u.span >= 900
  AND f.free / u.slope < 24 * 3600
