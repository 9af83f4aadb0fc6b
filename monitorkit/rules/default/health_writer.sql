-- name: writer
-- type: health
-- every: 1m
-- summary: The writer: failing when nothing was written for a minute, degraded when samples were dropped.
WITH dropped AS (
    SELECT coalesce(sum(increase), 0) AS n
    FROM counter_window('monitorkit_samples_dropped_total', eval_time() - INTERVAL 5 MINUTE, eval_time())
), last AS (
    SELECT max(time) AS t FROM samples_raw
    WHERE time > eval_time() - INTERVAL 10 MINUTE AND time <= eval_time()
)
SELECT 'writer' AS component,
       CASE WHEN last.t IS NULL OR epoch(eval_time() - last.t) > 60 THEN 'failing'
            WHEN dropped.n > 0 THEN 'degraded'
            ELSE 'ok' END AS status,
       CASE WHEN last.t IS NULL THEN 'no sample written in the last 10 minutes'
            WHEN epoch(eval_time() - last.t) > 60
                THEN 'last sample written at ' || strftime(last.t, '%Y-%m-%d %H:%M:%S UTC')
            WHEN dropped.n > 0 THEN 'samples dropped in the last 5 minutes'
            ELSE 'writing' END AS reason
FROM dropped, last
