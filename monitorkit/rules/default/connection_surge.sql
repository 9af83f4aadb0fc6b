-- name: connection_surge
-- kind: performance
-- severity: warning
-- for: 2m
-- keep_firing_for: 2m
-- every: 1m
-- summary: {{ host }} holds {{ value }} established connections, {{ _ratio }}x its hourly baseline
-- description: Established TCP connections (net_connections, all kinds) over the last minute
--   are more than 3 times their average of the hour before and above 100.
WITH per_time AS (
    SELECT host, time, sum(value) AS n
    FROM samples
    WHERE name = 'net_connections' AND labels['state'] = 'ESTABLISHED'
      AND time > eval_time() - INTERVAL 1 HOUR AND time <= eval_time()
    GROUP BY host, time
), w AS (
    SELECT host,
           avg(n) FILTER (WHERE time > eval_time() - INTERVAL 1 MINUTE) AS recent,
           avg(n) FILTER (WHERE time <= eval_time() - INTERVAL 5 MINUTE) AS baseline,
           count(*) FILTER (WHERE time <= eval_time() - INTERVAL 5 MINUTE) AS baseline_samples
    FROM per_time
    GROUP BY host
)
SELECT host, round(recent) AS value, round(recent / greatest(baseline, 1), 1) AS _ratio
FROM w
WHERE baseline_samples >= 10 AND recent > 100 AND recent > 3 * baseline
