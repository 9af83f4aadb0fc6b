-- name: swap_activity
-- kind: resource
-- severity: warning
-- for: 5m
-- keep_firing_for: 2m
-- every: 1m
-- summary: {{ host }} swaps {{ value }} MiB/s (in + out, 5-minute rate)
-- description: Pages have moved to or from swap at more than 1 MiB/s for 5 minutes:
--   memory is short and the machine slows down.
SELECT host, round(sum(rate) / 1048576, 2) AS value
FROM counter_window('swap_%_bytes_total', eval_time() - INTERVAL 5 MINUTE, eval_time())
GROUP BY host
HAVING sum(rate) > 1048576
