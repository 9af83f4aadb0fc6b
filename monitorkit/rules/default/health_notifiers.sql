-- name: notifiers
-- type: health
-- every: 1m
-- summary: Each receiver channel that delivered in the last hour: failing while its last attempt failed.
WITH n AS (
    SELECT receiver, channel, arg_max(ok, time) AS last_ok, arg_max(error, time) AS last_error,
           count(*) FILTER (WHERE NOT ok) AS failures
    FROM notifications
    WHERE time > eval_time() - INTERVAL 1 HOUR AND time <= eval_time()
    GROUP BY receiver, channel
)
SELECT 'notifier:' || receiver || '/' || channel AS component,
       CASE WHEN NOT last_ok THEN 'failing' WHEN failures > 0 THEN 'degraded' ELSE 'ok' END AS status,
       CASE WHEN NOT last_ok THEN 'last attempt failed: ' || coalesce(last_error, 'unknown error')
            WHEN failures > 0 THEN 'delivered after failed attempts in the last hour'
            ELSE 'delivering' END AS reason
FROM n
