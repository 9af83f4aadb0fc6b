-- name: target_down
-- kind: health
-- severity: critical
-- for: 1m
-- every: 15s
-- summary: Scrape target {{ instance }} of job {{ job }} on {{ host }} is down
-- description: The last scrape of a [[scrape]] target failed (up = 0): connection refused,
--   timed out, an HTTP status other than 200, a page that does not parse, or more samples
--   than sample_limit. The error is in scrape_targets.last_error. Also fires for an `up`
--   series a Prometheus remote-writes. The value is the last `up` (0).
SELECT host, labels['job'] AS job, labels['instance'] AS instance, last AS value
FROM gauge_window('up', eval_time() - INTERVAL 5 MINUTE, eval_time())
WHERE last = 0 AND labels['job'] IS NOT NULL
