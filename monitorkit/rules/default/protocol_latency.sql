-- name: protocol_latency
-- kind: performance
-- severity: warning
-- for: 5m
-- keep_firing_for: 2m
-- every: 1m
-- summary: {{ protocol }} {{ method }} on {{ host }}: p95 latency {{ value }} s over 5 min
-- description: The 95th percentile of protocol_request_duration_seconds, interpolated within
--   its histogram buckets like PromQL's histogram_quantile, is above 1 s (20 requests or more).
WITH inc AS (
    SELECT host, labels['protocol'] AS protocol, labels['method'] AS method,
           CASE WHEN labels['le'] = '+Inf' THEN 'inf'::DOUBLE ELSE labels['le']::DOUBLE END AS le,
           sum(increase) AS n  -- summed over the processes (pid label) of the application
    FROM counter_window('protocol_request_duration_seconds_bucket', eval_time() - INTERVAL 5 MINUTE, eval_time())
    GROUP BY ALL
), b AS (
    SELECT *, max(n) OVER g AS total,
           lag(le, 1, 0) OVER (g ORDER BY le) AS lo, lag(n, 1, 0) OVER (g ORDER BY le) AS n_lo
    FROM inc
    WINDOW g AS (PARTITION BY host, protocol, method)
), q AS (
    -- the first bucket holding the 95th percentile; interpolate linearly inside it
    SELECT host, protocol, method, total,
           arg_min(CASE WHEN isinf(le) THEN lo
                        ELSE lo + (le - lo) * (0.95 * total - n_lo) / nullif(n - n_lo, 0) END, le) AS p95
    FROM b
    WHERE n >= 0.95 * total
    GROUP BY host, protocol, method, total
)
SELECT host, protocol, method, round(p95, 3) AS value
FROM q
WHERE total >= 20 AND p95 > 1
