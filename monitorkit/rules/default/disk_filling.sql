-- name: disk_filling
-- kind: resource
-- severity: warning
-- for: 5m
-- every: 1m
-- summary: Disk {{ mount }} on {{ host }} is {{ value }}% full
-- description: The filesystem has been more than 90% full (space usable by unprivileged
--   users) for 5 minutes.
SELECT host, labels['mount'] AS mount, labels['device'] AS device, round(last, 1) AS value
FROM gauge_window('disk_used_percent', eval_time() - INTERVAL 5 MINUTE, eval_time())
WHERE last > 90
