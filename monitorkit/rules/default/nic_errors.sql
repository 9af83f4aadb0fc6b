-- name: nic_errors
-- kind: error
-- severity: warning
-- for: 2m
-- keep_firing_for: 5m
-- every: 1m
-- summary: {{ nic }} on {{ host }}: {{ value }} {{ direction }} errors/s
-- description: The interface counted at least 10 receive or transmit errors in the last
--   5 minutes (net_errors_in_total / net_errors_out_total): check cabling, duplex, driver.
SELECT host, labels['nic'] AS nic, replace(replace(name, 'net_errors_', ''), '_total', '') AS direction,
       round(rate, 3) AS value
FROM counter_window('net_errors_%_total', eval_time() - INTERVAL 5 MINUTE, eval_time())
WHERE increase >= 10
