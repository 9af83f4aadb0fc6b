-- name: cpu_saturation
-- kind: resource
-- severity: warning
-- for: 2m
-- keep_firing_for: 1m
-- every: 1m
-- summary: CPU on {{ host }} at {{ value }}% (1-minute average)
-- description: The all-CPU busy percent averaged over the last minute is above 90%;
--   look at `process_group_cpu_percent` for the process groups responsible.
SELECT host, round(avg, 1) AS value
FROM gauge_window('cpu_percent', eval_time() - INTERVAL 1 MINUTE, eval_time())
WHERE labels['cpu'] IS NULL  -- the all-CPU series has no cpu label
  AND avg > 90
