-- name: collectors
-- type: health
-- every: 1m
-- summary: Each collector: ok when its last run succeeded and it reports on time.
WITH up AS (
    SELECT host, labels['collector'] AS collector, last, last_time,
           greatest(1, epoch(last_time - first_time) / greatest(samples - 1, 1)) AS spacing
    FROM gauge_window('monitorkit_collector_up', eval_time() - INTERVAL 1 HOUR, eval_time())
), errors AS (
    SELECT host, labels['collector'] AS collector, increase
    FROM counter_window('monitorkit_collector_errors_total', eval_time() - INTERVAL 10 MINUTE, eval_time())
)
SELECT 'collector:' || collector AS component,
       CASE WHEN last = 0 THEN 'failing'
            WHEN epoch(eval_time() - last_time) > 3 * spacing THEN 'failing'
            WHEN coalesce(increase, 0) > 0 THEN 'degraded'
            ELSE 'ok' END AS status,
       CASE WHEN last = 0 THEN 'its last run raised an error'
            WHEN epoch(eval_time() - last_time) > 3 * spacing
                THEN 'no report since ' || strftime(last_time, '%Y-%m-%d %H:%M:%S UTC')
            WHEN coalesce(increase, 0) > 0 THEN 'recovered from errors in the last 10 minutes'
            ELSE 'reporting' END AS reason
FROM up LEFT JOIN errors USING (host, collector)
